//! The host training engine: it follows burn's training of the same model (same init,
//! shuffles, optimizer and schedule, other float kernels), and its config key leaves
//! burn-trained checkpoints' cache keys as they were.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::prelude::*;
use mpq_data::{Split, SplitSizes, shipped};
use mpq_models::{ModelConfig, Optimizer, TrainConfig, TrainEngine, train::train};

#[test]
fn host_training_follows_burn_training() {
    let data = shipped::load().unwrap();
    let split = Split::draw(&data, SplitSizes { train: 512, calib: 200, test: 10 }, None, 4).unwrap();
    let cfgs = [
        ModelConfig::Mlp { hidden: vec![32] },
        ModelConfig::Cnn { channels: [4, 8], hidden: 16 },
        ModelConfig::ResCnn { channels: 4, depth: 2 },
    ];
    for cfg in cfgs {
        for optimizer in [Optimizer::Adam, Optimizer::Sgd] {
            let lr = if optimizer == Optimizer::Adam { 3e-3 } else { 0.1 };
            let tc = TrainConfig { epochs: 2, batch_size: 32, lr, optimizer, ..TrainConfig::default() };
            let host = TrainConfig { engine: TrainEngine::Host, ..tc.clone() };
            let (nb, lb) = train(&cfg, &tc, &Device::flex(), &data, &split, 5, &mut |_, _| {}).unwrap();
            let mut calls = 0;
            let (nh, lh) = train(&cfg, &host, &Device::flex(), &data, &split, 5, &mut |_, _| calls += 1).unwrap();
            assert_eq!(calls, 2 * 512 / 32, "progress once per batch");
            for (b, h) in lb.iter().zip(&lh) {
                let msg = format!("{} {optimizer:?}: burn {b:?}, host {h:?}", cfg.name());
                assert!((b.train_loss - h.train_loss).abs() <= 1e-3 * b.train_loss, "{msg}");
                assert!((b.heldout_loss - h.heldout_loss).abs() <= 1e-3 * b.heldout_loss, "{msg}");
                assert!((b.heldout_acc - h.heldout_acc).abs() <= 0.011, "{msg}");
            }
            assert!(lh[1].heldout_loss < lh[0].heldout_loss || lh[1].heldout_acc > 0.8, "{cfg:?} learns: {lh:?}");
            for ((name, _, wb), (_, _, wh)) in nb.named_tensors().iter().zip(nh.named_tensors()) {
                let scale = wb.iter().fold(0f32, |m, v| m.max(v.abs()));
                let worst = wb.iter().zip(&wh).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
                assert!(worst <= 0.02 * scale, "{} {optimizer:?} {name}: max |Δw| {worst} of {scale}", cfg.name());
            }
        }
    }
}

#[test]
fn the_default_engine_is_left_out_of_the_serialized_config() {
    let burn = serde_json::to_string(&TrainConfig::default()).unwrap();
    assert!(!burn.contains("engine"), "{burn}");
    let host = serde_json::to_string(&TrainConfig { engine: TrainEngine::Host, ..TrainConfig::default() }).unwrap();
    assert!(host.contains(r#""engine":"host""#), "{host}");
    let back: TrainConfig = serde_json::from_str(&host).unwrap();
    assert_eq!(back.engine, TrainEngine::Host);
}
