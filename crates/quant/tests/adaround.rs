//! AdaRound on a small trained network: the learned rounding reconstructs a layer's output
//! better than rounding to nearest on the data it learned from, and every weight it gives is
//! its floor or its ceil on the grid.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::prelude::*;
use mpq_data::{Split, SplitSizes, shipped};
use mpq_models::{ModelConfig, TrainConfig, train::train};
use mpq_quant::adaround::{AdaRoundConfig, adaround, learn_layer};
use mpq_quant::calib::{Calibration, input_ranges};
use mpq_quant::eval::{EvalSet, Evaluator};
use mpq_quant::{Choice, Plan, Rounding, Target};

/// A supported bit width, for the tests' literal widths.
fn bw(bits: u32) -> mpq_quant::BitWidth {
    mpq_quant::BitWidth::new(bits).unwrap()
}

fn trained(cfg: ModelConfig) -> (mpq_models::Net, EvalSet) {
    let dev = Device::flex();
    let data = shipped::load().unwrap();
    let split = Split::draw(&data, SplitSizes { train: 800, calib: 256, test: 100 }, None, 6).unwrap();
    let tc = TrainConfig { epochs: 2, batch_size: 32, lr: 3e-3, ..TrainConfig::default() };
    let (net, _) = train(&cfg, &tc, &dev, &data, &split, 2, &mut |_, _| {}).unwrap();
    (net, EvalSet::new(&data, &split.calib))
}

#[test]
fn learned_rounding_beats_nearest_and_stays_on_floor_or_ceil() {
    for cfg in [ModelConfig::Mlp { hidden: vec![24] }, ModelConfig::ResCnn { channels: 4, depth: 1 }] {
        let (net, calib) = trained(cfg.clone());
        let ev = Evaluator::new(&net, input_ranges(&net, &calib, Calibration::MinMax), 0);
        let bits = bw(3);
        let choice = |rounding| Choice { bits, rounding, target: Target::Both };
        let x = ev.input(0, &calib.x, choice(Rounding::Nearest)).unwrap();
        let target = ev.host.stage(0, &calib.x, None);
        let ada = AdaRoundConfig { iters: 300, batch: 64, lambda: 0.01 };
        let l = learn_layer(&ev, 0, bits, &x, &target, &ada, 1).unwrap();
        assert!(l.error < l.error_nearest, "{}: learned {} vs nearest {}", cfg.name(), l.error, l.error_nearest);
        let lo = ev.weight(0, choice(Rounding::Floor)).unwrap();
        let hi = ev.weight(0, choice(Rounding::Ceil)).unwrap();
        let w = &ev.host.weights[0];
        let step = hi.iter().zip(lo.iter()).fold(0f32, |m, (a, b)| m.max(a - b));
        for (j, q) in l.weight.iter().enumerate() {
            assert!(*q == lo[j] || *q == hi[j], "{}: element {j} is neither floor nor ceil", cfg.name());
            assert!((q - w[j]).abs() <= step * 1.0001, "{}: element {j} more than one step away", cfg.name());
        }
        let near = ev.weight(0, choice(Rounding::Nearest)).unwrap();
        let flips = l.weight.iter().zip(near.iter()).filter(|(a, b)| a != b).count();
        assert!(flips > 0, "{}: the learned rounding is nearest everywhere: nothing was learned", cfg.name());
    }
}

#[test]
fn whole_network_rounding_scores_like_a_plan() {
    let (net, calib) = trained(ModelConfig::Mlp { hidden: vec![16] });
    let ev = Evaluator::new(&net, input_ranges(&net, &calib, Calibration::MinMax), 0);
    let ada = AdaRoundConfig { iters: 100, batch: 32, lambda: 0.01 };
    let (weights, learned) = adaround(&ev, &calib, bw(4), &ada, 3).unwrap();
    assert_eq!((weights.len(), learned.len()), (2, 2));
    let plan = Plan::uniform(2, bw(4), Rounding::Nearest);
    let nearest_w: Vec<Vec<f32>> = (0..2)
        .map(|k| {
            ev.weight(k, Choice { bits: bw(4), rounding: Rounding::Nearest, target: Target::Both }).unwrap().to_vec()
        })
        .collect();
    // With nearest weights, logits_with is the plan's own evaluation.
    assert_eq!(ev.logits_with(&plan, &nearest_w, &calib).unwrap(), ev.logits(&plan, &calib).unwrap());
    let l = ev.logits_with(&plan, &weights, &calib).unwrap();
    assert!(l.iter().all(|v| v.is_finite()));
}
