//! Guards [`QUANT_VERSION`]: a fixed (untrained, seeded) network evaluated on the first
//! shipped digits must give the losses recorded for the current version. Host evaluation is
//! exact and CPU-independent, so the tolerance is tiny: any change to quantizers,
//! calibration, evaluation, Taylor gradients or the Hessian traces fails here until the
//! version is bumped and these values are updated together.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::prelude::*;
use mpq_data::shipped;
use mpq_models::ModelConfig;
use mpq_quant::calib::{Calibration, input_ranges};
use mpq_quant::eval::{EvalSet, Evaluator};
use mpq_quant::search::{hawq, taylor::taylor_table};
use mpq_quant::{Plan, QUANT_VERSION, Rounding};

/// A supported bit width, for the tests' literal widths.
fn bw(bits: u32) -> mpq_quant::BitWidth {
    mpq_quant::BitWidth::new(bits).unwrap()
}

/// (version, [FP, 4-bit nearest, floor, ceil, 3-bit mixed plan losses, Taylor fc1 floor,
/// Hessian trace of fc2]) at that version.
const GOLDEN: (u32, [f64; 7]) = (
    2,
    [
        2.068789002647014,
        2.0655496615161026,
        2.0862586345965504,
        2.1171942317236514,
        2.054346625572445,
        -0.0028361630461822447,
        -6.149883486330509,
    ],
);

#[test]
fn fixed_network_gives_the_numbers_of_this_version() {
    let data = shipped::load().unwrap();
    let idx: Vec<usize> = (0..200).collect();
    let set = EvalSet::new(&data, &idx);
    let net = ModelConfig::Cnn { channels: [3, 4], hidden: 12 }.init(&Device::flex(), 3);
    let ev = Evaluator::new(&net, input_ranges(&net, &set, Calibration::MinMax), 5);
    let n = ev.n_layers();
    let loss = |p: &Plan| ev.score(p, &set).unwrap().loss;
    let mut mixed = Plan::uniform(n, bw(3), Rounding::Floor);
    mixed.layers[1].rounding = Rounding::Ceil;
    mixed.layers[2].bits = bw(8);
    let got = [
        loss(&Plan::full_precision(n)),
        loss(&Plan::uniform(n, bw(4), Rounding::Nearest)),
        loss(&Plan::uniform(n, bw(4), Rounding::Floor)),
        loss(&Plan::uniform(n, bw(4), Rounding::Ceil)),
        loss(&mixed),
        taylor_table(&ev, &set.x, &set.labels, bw(4)).weight[0][1],
        hawq::hessian_traces(&ev.host, &set.x, &set.labels, 2, 5e-3, 1)[1],
    ];
    let msg = format!(
        "evaluation now gives {got:?}; recorded for version {}: {:?}. If quantization or evaluation changed on \
         purpose, bump QUANT_VERSION (now {QUANT_VERSION}) and record these values",
        GOLDEN.0, GOLDEN.1
    );
    assert_eq!(GOLDEN.0, QUANT_VERSION, "{msg}");
    for (g, w) in got.iter().zip(GOLDEN.1) {
        assert!((g - w).abs() <= 1e-9 * w.abs().max(1.0), "{msg}");
    }
}
