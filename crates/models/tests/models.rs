//! Model behaviour written once and run on each CPU backend.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(deprecated)] // Device::ndarray() is deprecated in favour of flex; both are offered.

use burn::prelude::*;
use mpq_data::{Split, SplitSizes, shipped};
use mpq_models::{ModelConfig, Schedule, TrainConfig, checkpoint, metrics, train::train};
use std::collections::HashMap;

/// flex, and ndarray where the build has it (`--features harness/ndarray`, as the README's
/// test command has).
fn devices() -> Vec<(&'static str, Device)> {
    let flex = ("flex", Device::flex());
    #[cfg(feature = "ndarray")]
    return vec![flex, ("ndarray", Device::ndarray())];
    #[cfg(not(feature = "ndarray"))]
    vec![flex]
}

fn all_models() -> Vec<ModelConfig> {
    vec![
        ModelConfig::Mlp { hidden: vec![32, 16] },
        ModelConfig::Cnn { channels: [4, 8], hidden: 16 },
        ModelConfig::ResMlp { width: 16, depth: 3 },
        ModelConfig::PlainMlp { width: 16, depth: 3 },
        ModelConfig::ResCnn { channels: 4, depth: 2 },
        ModelConfig::PlainCnn { channels: 4, depth: 2 },
    ]
}

#[test]
fn output_shapes_and_layer_listing() {
    for (name, dev) in devices() {
        for cfg in all_models() {
            let net = cfg.init(&dev, 1);
            let x = Tensor::<2>::zeros([3, 784], &dev);
            assert_eq!(net.forward(x).dims(), [3, 10], "{name} {}", cfg.name());
        }
    }
    let names = |c: ModelConfig| c.init(&Device::flex(), 0).layers().iter().map(|l| l.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(ModelConfig::Mlp { hidden: vec![256, 128] }), ["fc1", "fc2", "fc3"]);
    assert_eq!(names(ModelConfig::Cnn { channels: [8, 16], hidden: 64 }), ["conv1", "conv2", "fc1", "fc2"]);
    assert_eq!(names(ModelConfig::ResMlp { width: 8, depth: 2 }), ["stem", "block1", "block2", "head"]);
    let cnn = ModelConfig::Cnn { channels: [8, 16], hidden: 64 }.init(&Device::flex(), 0).layers();
    let counts: Vec<(usize, usize)> = cnn.iter().map(|l| (l.weight_count, l.input_count)).collect();
    assert_eq!(counts, [(72, 784), (1152, 8 * 13 * 13), (400 * 64, 400), (640, 64)]);
    let res = ModelConfig::ResMlp { width: 8, depth: 2 }.init(&Device::flex(), 0).layers();
    assert_eq!(res.iter().map(|l| l.residual).collect::<Vec<_>>(), [false, true, true, false]);
    let rescnn = ModelConfig::ResCnn { channels: 16, depth: 3 }.init(&Device::flex(), 0).layers();
    let got: Vec<(&str, usize, usize, bool)> =
        rescnn.iter().map(|l| (l.name.as_str(), l.weight_count, l.input_count, l.residual)).collect();
    let block = (16 * 16 * 9, 16 * 13 * 13, true);
    assert_eq!(
        got,
        [
            ("stem", 144, 784, false),
            ("block1", block.0, block.1, block.2),
            ("block2", block.0, block.1, block.2),
            ("block3", block.0, block.1, block.2),
            ("head", 160, 16, false)
        ]
    );
    let plain = ModelConfig::PlainCnn { channels: 16, depth: 3 }.init(&Device::flex(), 0).layers();
    assert!(plain.iter().all(|l| !l.residual), "the plain twin has no skips");
}

#[test]
fn same_seed_same_weights_on_every_backend() {
    let cfg = ModelConfig::Mlp { hidden: vec![8] };
    let a = cfg.init(&Device::flex(), 5).named_tensors();
    for (name, dev) in devices() {
        assert_eq!(a, cfg.init(&dev, 5).named_tensors(), "{name}");
    }
    assert_ne!(a, cfg.init(&Device::flex(), 6).named_tensors());
}

#[test]
fn tiny_training_lowers_loss_and_checkpoint_round_trips() {
    let data = shipped::load().unwrap();
    let split = Split::draw(&data, SplitSizes { train: 600, calib: 200, test: 100 }, None, 3).unwrap();
    for (name, dev) in devices() {
        for cfg in [ModelConfig::Mlp { hidden: vec![32] }, ModelConfig::Cnn { channels: [4, 8], hidden: 16 }] {
            let tc = TrainConfig {
                epochs: 2,
                batch_size: 32,
                lr: 5e-3,
                schedule: Schedule::Constant,
                ..TrainConfig::default()
            };
            let before = metrics::score(
                &metrics::logits(&cfg.init(&dev, 9), &data, &split.calib, &dev),
                &data.gather_labels(&split.calib),
                1.0,
            );
            let (net, logs) = train(&cfg, &tc, &dev, &data, &split, 9, &mut |_, _| {}).unwrap();
            assert_eq!(logs.len(), 2);
            assert!(logs[1].heldout_loss < before.loss * 0.8, "{name} {}: {} -> {:?}", cfg.name(), before.loss, logs);
            assert!(logs[1].train_loss < logs[0].train_loss + 0.05, "{name}: {logs:?}");

            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("m.safetensors");
            checkpoint::save(&net, &HashMap::new(), &path).unwrap();
            let back = checkpoint::load(cfg.init(&dev, 0), &path, &dev).unwrap();
            let x = Tensor::<2>::from_data(TensorData::new(data.gather_f32(&split.test[..5]), [5, 784]), &dev);
            let (l1, l2) = (net.forward(x.clone()), back.forward(x));
            assert!(l1.sub(l2).abs().max().into_scalar::<f32>() < 1e-6);
        }
    }
}

#[test]
fn bad_checkpoints_are_rejected_with_the_reason() {
    let dev = Device::flex();
    let small = ModelConfig::Mlp { hidden: vec![8] };
    let bytes = checkpoint::to_bytes(&small.init(&dev, 0), &HashMap::new()).unwrap();
    let e =
        checkpoint::from_bytes(small.init(&dev, 0), &bytes[..bytes.len() / 2], "t.st", &dev).unwrap_err().to_string();
    assert!(e.contains("t.st") && e.contains("not a readable safetensors"), "{e}");
    let other = ModelConfig::Mlp { hidden: vec![16] };
    let e = checkpoint::from_bytes(other.init(&dev, 0), &bytes, "o.st", &dev).unwrap_err().to_string();
    assert!(e.contains("o.st") && e.contains("does not fit"), "{e}");
    let cnn = ModelConfig::Cnn { channels: [2, 2], hidden: 4 };
    let e = checkpoint::from_bytes(cnn.init(&dev, 0), &bytes, "c.st", &dev).unwrap_err().to_string();
    assert!(e.contains("missing"), "{e}");
}

#[test]
fn divergence_is_an_error_not_a_model() {
    let data = shipped::load().unwrap();
    let split = Split::draw(&data, SplitSizes { train: 256, calib: 64, test: 64 }, None, 3).unwrap();
    let cfg = ModelConfig::Mlp { hidden: vec![16] };
    let tc =
        TrainConfig { epochs: 3, batch_size: 32, lr: 1e30, schedule: Schedule::Constant, ..TrainConfig::default() };
    let e = train(&cfg, &tc, &Device::flex(), &data, &split, 1, &mut |_, _| {}).unwrap_err().to_string();
    assert!(e.contains("training diverged"), "{e}");
}

#[test]
fn two_writers_of_one_checkpoint_leave_a_whole_file() {
    let dev = Device::flex();
    let cfg = ModelConfig::Mlp { hidden: vec![64, 32] };
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("k.safetensors");
    let nets = [cfg.init(&dev, 1), cfg.init(&dev, 2)];
    std::thread::scope(|s| {
        for net in &nets {
            let (path, cfg) = (&path, &cfg);
            s.spawn(move || {
                for _ in 0..20 {
                    checkpoint::save(net, &HashMap::new(), path).unwrap();
                    // A reader at any moment sees one writer's whole file.
                    checkpoint::load(cfg.init(&Device::flex(), 0), path, &Device::flex()).unwrap();
                }
            });
        }
    });
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(left.len(), 1, "temporary files left behind: {left:?}");
}
