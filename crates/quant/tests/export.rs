//! Plans packed for the integer engine give the logits of simulated quantization, on the
//! residual CNN (same-padded convolutions, identity skips, global average pooling) and its
//! plain twin as on the other models.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::prelude::*;
use mpq_data::{Split, SplitSizes, shipped};
use mpq_lowbit::engine::Engine;
use mpq_models::{ModelConfig, TrainConfig, train::train};
use mpq_quant::calib::{Calibration, input_ranges};
use mpq_quant::eval::{EvalSet, Evaluator};
use mpq_quant::export::pack_plan;
use mpq_quant::tensor::Granularity;
use mpq_quant::{Plan, Rounding};

/// A supported bit width, for the tests' literal widths.
fn bw(bits: u32) -> mpq_quant::BitWidth {
    mpq_quant::BitWidth::new(bits).unwrap()
}

fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold(0, |m, (i, &v)| if v > row[m] { i } else { m })
}

#[test]
fn engine_agrees_with_simulation_on_residual_and_plain_cnns() {
    let dev = Device::flex();
    let data = shipped::load().unwrap();
    let split = Split::draw(&data, SplitSizes { train: 600, calib: 200, test: 200 }, None, 4).unwrap();
    let tc = TrainConfig { epochs: 1, batch_size: 32, lr: 3e-3, ..TrainConfig::default() };
    for cfg in [ModelConfig::ResCnn { channels: 6, depth: 2 }, ModelConfig::PlainCnn { channels: 6, depth: 2 }] {
        let (net, _) = train(&cfg, &tc, &dev, &data, &split, 3, &mut |_, _| {}).unwrap();
        let calib = EvalSet::new(&data, &split.calib);
        let test = EvalSet::new(&data, &split.test);
        let ranges = input_ranges(&net, &calib, Calibration::MinMax);
        let ev = Evaluator::new(&net, ranges.clone(), 0);
        let r = [Rounding::Nearest, Rounding::Floor, Rounding::Ceil, Rounding::Nearest];
        for plan in [Plan::uniform(4, bw(8), Rounding::Nearest), Plan::from_roundings(bw(6), &r)] {
            let sim = ev.logits(&plan, &test).unwrap();
            let q = pack_plan(&cfg.name(), &net, &plan, &ranges, Granularity::PerTensor).unwrap();
            let got = Engine::new(&q).unwrap().forward(&test.x, test.len());
            assert_eq!(got.len(), sim.len());
            let agree = got.chunks(10).zip(sim.chunks(10)).filter(|(a, b)| argmax(a) == argmax(b)).count();
            let diff = got.iter().zip(&sim).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            let what = format!("{} {}: agreement {agree}/{}, max diff {diff}", cfg.name(), plan.code(), test.len());
            // As in `harness export`: an input lying within float error of a rounding
            // boundary may land one code apart; everything else is the same arithmetic.
            assert!(agree * 100 >= test.len() * 99 && diff < 0.5, "{what}");
            assert!(diff < 1e-3, "{what}");
        }
    }
}

/// The same on a LeNet-5-style network with 2x2 average pools (as an imported model has),
/// its weights as initialised (the pooling's arithmetic is what is checked, not accuracy).
#[test]
fn engine_agrees_with_simulation_on_average_pools() {
    use mpq_net::{LayerKind, Pool};
    let conv = |c_in, c_out, side_in| LayerKind::conv3(c_in, c_out, side_in, false, false, Pool::Avg2);
    let lin = |d_in, d_out, relu| LayerKind::Linear { d_in, d_out, relu, residual: false };
    let kinds = [conv(1, 6, 28), conv(6, 12, 13), lin(300, 32, true), lin(32, 10, false)];
    engine_agrees_on("lenet-avg", &kinds, Granularity::PerTensor);
}

/// The same on pointwise (1x1) and strided convolutions, same-padded and valid, with an
/// identity skip between them (a ResNet's downsampling pieces), per tensor and per channel.
#[test]
fn engine_agrees_with_simulation_on_pointwise_and_strided_convolutions() {
    use mpq_net::{LayerKind, Pool};
    let conv = LayerKind::conv;
    let kinds = [
        conv(1, 8, 28, true, 3, 2, Pool::None),
        conv(8, 12, 14, false, 1, 1, Pool::None),
        conv(12, 12, 14, false, 3, 2, Pool::None),
        LayerKind::conv3(12, 12, 6, true, true, Pool::None),
        conv(12, 16, 6, false, 1, 2, Pool::Max2),
        LayerKind::Linear { d_in: 16, d_out: 10, relu: false, residual: false },
    ];
    for g in [Granularity::PerTensor, Granularity::PerChannel] {
        engine_agrees_on("strided", &kinds, g);
    }
}

/// The same on basic blocks with two-layer skips (ReLU after the add; the second block
/// strided, with option A's subsampled, zero-padded shortcut), per tensor and per channel.
#[test]
fn engine_agrees_with_simulation_on_two_layer_skips() {
    use mpq_net::{Carry, LayerKind, Pool};
    let conv = LayerKind::block;
    let kinds = [
        conv(1, 6, 28, 2, Pool::None, Carry::None),
        conv(6, 6, 14, 1, Pool::None, Carry::Open),
        conv(6, 6, 14, 1, Pool::None, Carry::Close { c: 6, side: 14 }),
        conv(6, 12, 14, 2, Pool::None, Carry::Open),
        conv(12, 12, 7, 1, Pool::GlobalAvg, Carry::Close { c: 6, side: 14 }),
        LayerKind::Linear { d_in: 12, d_out: 10, relu: false, residual: false },
    ];
    for g in [Granularity::PerTensor, Granularity::PerChannel] {
        engine_agrees_on("blocks", &kinds, g);
    }
}

/// The same on the deepest network of the depth study: a ResNet-20 (19 convolutions in three
/// stages, nine two-layer skips, two of them strided) and its plain twin, per tensor and per
/// channel.
#[test]
fn engine_agrees_with_simulation_on_a_resnet20_and_its_plain_twin() {
    use mpq_models::ModelConfig;
    for cfg in [ModelConfig::ResNet { depth: 20, width: 4 }, ModelConfig::PlainResNet { depth: 20, width: 4 }] {
        let kinds: Vec<mpq_net::LayerKind> = cfg.arch().layers.into_iter().map(|l| l.kind).collect();
        assert_eq!(kinds.len(), 20);
        for g in [Granularity::PerTensor, Granularity::PerChannel] {
            engine_agrees_on(&cfg.name(), &kinds, g);
        }
    }
}

/// Engine logits against simulated ones for a network of `kinds` with initial weights, at
/// 8 bits nearest and at 5 bits with mixed roundings.
fn engine_agrees_on(name: &str, kinds: &[mpq_net::LayerKind], granularity: Granularity) {
    use mpq_net::{Arch, LayerSpec};
    let dev = Device::flex();
    let data = shipped::load().unwrap();
    let split = Split::draw(&data, SplitSizes { train: 10, calib: 200, test: 200 }, None, 5).unwrap();
    let layers =
        kinds.iter().enumerate().map(|(i, kind)| LayerSpec { name: format!("l{i}"), kind: kind.clone() }).collect();
    let net = mpq_models::Net::new(Arch { layers }, &dev, 9);
    let (calib, test) = (EvalSet::new(&data, &split.calib), EvalSet::new(&data, &split.test));
    let ranges = input_ranges(&net, &calib, Calibration::MinMax);
    let ev = Evaluator::with_granularity(&net, ranges.clone(), granularity, 0);
    let modes = [Rounding::Floor, Rounding::Ceil, Rounding::Nearest];
    let r: Vec<Rounding> = (0..kinds.len()).map(|i| modes[i % 3]).collect();
    for plan in [Plan::uniform(kinds.len(), bw(8), Rounding::Nearest), Plan::from_roundings(bw(5), &r)] {
        let sim = ev.logits(&plan, &test).unwrap();
        let q = pack_plan(name, &net, &plan, &ranges, granularity).unwrap();
        let got = Engine::new(&q).unwrap().forward(&test.x, test.len());
        assert_eq!(got.len(), sim.len());
        let diff = got.iter().zip(&sim).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        let spread = sim.iter().fold(0f32, |m, v| m.max(v.abs()));
        assert!(spread > 1e-2, "logits near zero: the test would prove nothing");
        assert!(diff < 1e-3 * (1.0 + spread), "{name} {}: max diff {diff} (logits up to {spread})", plan.code());
    }
}
