//! `harness bench`: throughput measured side by side in one process, printed as ratios and
//! written to `results/bench/timing.csv`. Never used as a pass/fail threshold.

use crate::config::Backend;
use anyhow::Result;
use mpq_data::{Split, SplitSizes, shipped};
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

/// Runs the benchmark on `backends` with `samples` training examples and writes `out/timing.csv`.
pub fn bench(backends: &[Backend], samples: usize, out: &Path) -> Result<ExitCode> {
    let data = shipped::load()?;
    let split = Split::draw(&data, SplitSizes { train: samples, calib: 1000, test: 1000 }, None, 1)?;
    let models = [ModelConfig::Mlp { hidden: vec![256, 128] }, ModelConfig::Cnn { channels: [8, 16], hidden: 64 }];
    let mut rows = Vec::new();
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
            let set = EvalSet::new(&data, &split.calib, &dev);
            let ev = Evaluator::new(&net, input_ranges(&net, &set.batches, Calibration::MinMax), 1);
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
    std::fs::create_dir_all(out)?;
    mpq_report::csvio::write(&out.join("timing.csv"), &rows)?;
    println!("what               model        backend    throughput unit          ratio  against");
    for r in &rows {
        let (base, against) = if r.what == "exhaustive-prefix" {
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
            "{:<18} {:<12} {:<8} {:>12.1} {:<10} {:>7.2}x  {}",
            r.what, r.model, r.backend, r.per_second, r.unit, ratio, against
        );
    }
    eprintln!("wrote {}", out.join("timing.csv").display());
    Ok(ExitCode::SUCCESS)
}
