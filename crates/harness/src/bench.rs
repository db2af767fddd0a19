//! `harness bench`: throughput measured side by side in one process, printed as ratios and
//! written to `results/bench/timing.csv`. Never used as a pass/fail threshold.

use crate::config::Backend;
use anyhow::Result;
use burn::module::Module;
use mpq_data::{Split, SplitSizes, shipped};
use mpq_lowbit::engine::Engine;
use mpq_lowbit::gemm::Kernel;
use mpq_models::{ModelConfig, TrainConfig, metrics, train};
use mpq_quant::calib::{Calibration, input_ranges};
use mpq_quant::eval::{EvalSet, Evaluator};
use mpq_quant::search::exhaustive;
use serde::Serialize;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// A row of `timing.csv`.
#[derive(Debug, Serialize, Default)]
struct TimingRow {
    what: String,
    model: String,
    backend: String,
    batch: usize,
    samples: usize,
    seconds: f64,
    per_second: f64,
    unit: String,
}

fn row(what: &str, model: &str, backend: &str, batch: usize, n: usize, secs: f64, unit: &str) -> TimingRow {
    TimingRow {
        what: what.into(),
        model: model.into(),
        backend: backend.into(),
        batch,
        samples: n,
        seconds: secs,
        per_second: n as f64 / secs.max(1e-12),
        unit: unit.into(),
    }
}

/// Times `f` over repeated calls until about 0.3 s have passed; returns seconds per call.
fn time_per_call(mut f: impl FnMut()) -> f64 {
    f();
    let (t0, mut calls) = (Instant::now(), 0u32);
    while calls < 3 || t0.elapsed().as_secs_f64() < 0.3 {
        f();
        calls += 1;
    }
    t0.elapsed().as_secs_f64() / calls as f64
}

/// FP32 burn forward on each backend against the int8 and int4 engines, batch 1, 64, 256.
fn engine_rows(backends: &[Backend], data: &mpq_data::Images, split: &Split, rows: &mut Vec<TimingRow>) -> Result<()> {
    let models = [ModelConfig::Mlp { hidden: vec![256, 128] }, ModelConfig::Cnn { channels: [8, 16], hidden: 64 }];
    let cpu = crate::backend::device(Backend::Flex)?;
    for m in &models {
        let tc = TrainConfig { epochs: 1, ..TrainConfig::default() };
        let (net, _) = train::train(m, &tc, &cpu, data, split, 2, &mut |_, _| {})?;
        let set = EvalSet::new(data, &split.calib);
        let ranges = input_ranges(&net, &set, Calibration::MinMax);
        for batch in [1usize, 64, 256] {
            let idx = &split.test[..batch];
            let x = data.gather_f32(idx);
            for &b in backends {
                let dev = crate::backend::device(b)?;
                let net_b = net.clone().to_device(&dev);
                let xt =
                    burn::tensor::Tensor::<2>::from_data(burn::tensor::TensorData::new(x.clone(), [batch, 784]), &dev);
                let secs = time_per_call(|| {
                    let _ = net_b.forward(xt.clone()).into_data();
                });
                rows.push(row("infer-fp32", &m.name(), b.name(), batch, batch, secs, "samples/s"));
            }
            for bits in [8u32, 4] {
                let plan = mpq_quant::Plan::uniform(net.n_layers(), bits, mpq_quant::Rounding::Nearest);
                let q = mpq_quant::export::pack_plan(
                    &m.name(),
                    &net,
                    &plan,
                    &ranges,
                    mpq_quant::tensor::Granularity::PerTensor,
                )?;
                // The kernel chosen at run time, then the slower ones this CPU also has.
                let best = Kernel::detect();
                let others = [Kernel::Vnni512, Kernel::Avx2, Kernel::Portable].into_iter().filter(|k| *k != best);
                for kernel in std::iter::once(best).chain(others.filter(|k| k.supported())) {
                    let engine = Engine::with_kernel(&q, kernel)?;
                    let secs = time_per_call(|| {
                        let _ = engine.forward(&x, batch);
                    });
                    let name = format!("engine-{}", kernel.name());
                    rows.push(row(&format!("infer-int{bits}"), &m.name(), &name, batch, batch, secs, "samples/s"));
                }
            }
        }
    }
    Ok(())
}

/// Runs the benchmark on `backends` with `samples` training examples and writes `out/timing.csv`.
pub fn bench(backends: &[Backend], samples: usize, out: &Path) -> Result<ExitCode> {
    let data = shipped::load()?;
    let split = Split::draw(&data, SplitSizes { train: samples, calib: 1000, test: 1000 }, None, 1)?;
    let models = [ModelConfig::Mlp { hidden: vec![256, 128] }, ModelConfig::Cnn { channels: [8, 16], hidden: 64 }];
    let mut rows = Vec::new();
    let cpu = crate::backend::cpu_name();
    let mut adapters: Vec<String> = backends.iter().map(|&b| crate::backend::adapter(b, &cpu)).collect();
    adapters.dedup();
    eprintln!("devices: {}", adapters.join("; "));
    eprintln!("integer engine kernel: {}", Kernel::detect().name());
    for &b in backends {
        let dev = crate::backend::device(b)?;
        for m in &models {
            let tc = TrainConfig { epochs: 1, batch_size: 64, ..TrainConfig::default() };
            let t0 = Instant::now();
            let (net, _) = train::train(m, &tc, &dev, &data, &split, 1, &mut |_, _| {})?;
            rows.push(row("train", &m.name(), b.name(), 64, samples, t0.elapsed().as_secs_f64(), "samples/s"));
            let t0 = Instant::now();
            let _ = metrics::logits(&net, &data, &split.calib, &dev);
            rows.push(row("infer", &m.name(), b.name(), 1000, 1000, t0.elapsed().as_secs_f64(), "samples/s"));
            let set = EvalSet::new(&data, &split.calib);
            let ev = Evaluator::new(&net, input_ranges(&net, &set, Calibration::MinMax), 1);
            for (name, reuse) in [("exhaustive-naive", false), ("exhaustive-prefix", true)] {
                let t0 = Instant::now();
                let e = exhaustive(&ev, 8, &set, reuse, &mut |_, _| {})?;
                rows.push(row(
                    name,
                    &m.name(),
                    b.name(),
                    1000,
                    e.configs.len(),
                    t0.elapsed().as_secs_f64(),
                    "configs/s",
                ));
            }
        }
    }
    engine_rows(backends, &data, &split, &mut rows)?;
    std::fs::create_dir_all(out)?;
    mpq_report::csvio::write(&out.join("timing.csv"), &rows)?;
    println!("what               model        backend              throughput unit          ratio  against");
    for r in &rows {
        let (base, against) = if r.what.starts_with("infer-") {
            let fp = rows
                .iter()
                .filter(|o| o.what == "infer-fp32" && o.model == r.model && o.batch == r.batch)
                .filter(|o| o.backend == Backend::Flex.name() || o.backend == Backend::Ndarray.name())
                .max_by(|a, b| a.per_second.total_cmp(&b.per_second));
            (fp, "fastest FP32 CPU backend, same batch")
        } else if r.what == "exhaustive-prefix" {
            (
                rows.iter().find(|o| o.what == "exhaustive-naive" && o.model == r.model && o.backend == r.backend),
                "naive, same backend",
            )
        } else {
            let fastest = rows
                .iter()
                .filter(|o| o.what == r.what && o.model == r.model)
                .max_by(|a, b| a.per_second.total_cmp(&b.per_second));
            (fastest, "fastest backend")
        };
        let ratio = base.map(|o| r.per_second / o.per_second).unwrap_or(1.0);
        println!(
            "{:<18} {:<12} {:<20} {:>12.1} {:<10} {:>7.2}x  {}",
            r.what,
            r.model,
            if r.what.starts_with("infer-") { format!("{}/b{}", r.backend, r.batch) } else { r.backend.clone() },
            r.per_second,
            r.unit,
            ratio,
            against
        );
    }
    eprintln!("wrote {}", out.join("timing.csv").display());
    Ok(ExitCode::SUCCESS)
}
