//! Backend parity: the same weights, quantized the same way with burn's tensor quantizer,
//! give the same logits and losses on flex and wgpu (Mesa's software Vulkan driver where
//! there is no GPU), and both agree with the host evaluation every run uses. Built only with
//! `--features wgpu`.
#![cfg(feature = "wgpu")]
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::module::Module;
use mpq_data::{Split, SplitSizes, shipped};
use mpq_models::{ModelConfig, metrics};
use mpq_quant::calib::{Calibration, input_ranges};
use mpq_quant::eval::{EvalSet, Evaluator};
use mpq_quant::tensor::{quant_tensor_weight, weight_max_abs};
use mpq_quant::{Plan, Rounding};

#[test]
fn flex_and_wgpu_agree_on_logits_and_losses() {
    let data = shipped::load().unwrap();
    let split = Split::draw(&data, SplitSizes { train: 100, calib: 128, test: 128 }, None, 4).unwrap();
    let (cpu, gpu) = (
        mpq_pipeline::backend::device(mpq_experiment::config::Backend::Flex).unwrap(),
        mpq_pipeline::backend::device(mpq_experiment::config::Backend::Wgpu).unwrap(),
    );
    // The manifest names the adapter the runs used (lavapipe reports `llvmpipe (...)`).
    let adapter = mpq_pipeline::backend::adapter(mpq_experiment::config::Backend::Wgpu, "cpu");
    assert!(adapter.starts_with("wgpu: ") && !adapter.contains("no adapter"), "{adapter}");
    eprintln!("{adapter}");
    for cfg in [ModelConfig::Mlp { hidden: vec![32, 16] }, ModelConfig::Cnn { channels: [4, 8], hidden: 16 }] {
        let fp = cfg.init(&cpu, 3);
        let set_c = EvalSet::new(&data, &split.calib);
        let ranges = input_ranges(&fp, &set_c, Calibration::MinMax);
        let (tc, tg) = (EvalSet::new(&data, &split.test), EvalSet::new(&data, &split.test));
        // Weight-only 8-bit plans: burn quantizes the weights on each device.
        let n = fp.n_layers();
        let mut w8 = Plan::uniform(n, mpq_quant::BitWidth::of::<8>(), Rounding::Nearest);
        w8.layers.iter_mut().for_each(|c| c.target = mpq_quant::Target::WeightOnly);
        for plan in [Plan::full_precision(n), w8] {
            let on = |dev: &burn::prelude::Device| {
                let mut net = fp.clone().to_device(dev);
                if plan.layers[0].bits < 32 {
                    for k in 0..n {
                        let w = net.weight(k);
                        net.set_weight(k, quant_tensor_weight(&w, weight_max_abs(&w), 8, Rounding::Nearest, 0));
                    }
                }
                metrics::logits(&net, &data, &split.test, dev)
            };
            let (a, b) = (on(&cpu), on(&gpu));
            let host = Evaluator::new(&fp, ranges.clone(), 0).logits(&plan, &tc).unwrap();
            let hs = host.iter().zip(&a).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
            assert!(hs < 1e-3, "{} {}: host vs flex logits differ by {hs}", cfg.name(), plan.code());
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
