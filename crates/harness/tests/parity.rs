//! Backend parity: the same weights and plan give the same logits and losses on flex and
//! wgpu (Mesa's software Vulkan driver where there is no GPU). Built only with `--features wgpu`.
#![cfg(feature = "wgpu")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::module::Module;
use mpq_data::{Split, SplitSizes, shipped};
use mpq_models::{ModelConfig, metrics};
use mpq_quant::calib::{Calibration, input_ranges};
use mpq_quant::eval::{EvalSet, Evaluator};
use mpq_quant::{Plan, Rounding};

#[test]
fn flex_and_wgpu_agree_on_logits_and_losses() {
    let data = shipped::load().unwrap();
    let split = Split::draw(&data, SplitSizes { train: 100, calib: 128, test: 128 }, None, 4).unwrap();
    let (cpu, gpu) = (
        harness::backend::device(harness::config::Backend::Flex).unwrap(),
        harness::backend::device(harness::config::Backend::Wgpu).unwrap(),
    );
    // The manifest names the adapter the runs used (lavapipe reports `llvmpipe (...)`).
    let adapter = harness::backend::adapter(harness::config::Backend::Wgpu, "cpu");
    assert!(adapter.starts_with("wgpu: ") && !adapter.contains("no adapter"), "{adapter}");
    eprintln!("{adapter}");
    for cfg in [ModelConfig::Mlp { hidden: vec![32, 16] }, ModelConfig::Cnn { channels: [4, 8], hidden: 16 }] {
        let net_c = cfg.init(&cpu, 3);
        let net_g = net_c.clone().to_device(&gpu);
        let set_c = EvalSet::new(&data, &split.calib, &cpu);
        let ranges = input_ranges(&net_c, &set_c.batches, Calibration::MinMax);
        let ev_c = Evaluator::new(&net_c, ranges.clone(), 0);
        let ev_g = Evaluator::new(&net_g, ranges, 0);
        let (tc, tg) = (EvalSet::new(&data, &split.test, &cpu), EvalSet::new(&data, &split.test, &gpu));
        for plan in [Plan::full_precision(net_c.n_layers()), Plan::uniform(net_c.n_layers(), 8, Rounding::Nearest)] {
            let (a, b) = (ev_c.logits(&plan, &tc).unwrap(), ev_g.logits(&plan, &tg).unwrap());
            let scale = a.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-6);
            let worst = a.iter().zip(&b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(
                worst / scale < 1e-4,
                "{} {}: relative logit difference {}",
                cfg.name(),
                plan.code(),
                worst / scale
            );
            let (la, lb) = (metrics::score(&a, &tc.labels, 1.0), metrics::score(&b, &tg.labels, 1.0));
            assert!(
                (la.loss - lb.loss).abs() < 1e-4,
                "{} {}: losses {} vs {}",
                cfg.name(),
                plan.code(),
                la.loss,
                lb.loss
            );
        }
    }
}
