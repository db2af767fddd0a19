//! Times the integer engine's CNN (cnn-8-16-64, 8 bits, all nearest; the MLP 784-256-128-10
//! with `MODEL=mlp`) layer by layer (one layer with `LAYER=k`) and whole at batch 1, 64 and
//! 256 on the shipped digits, each the fastest of ten windows: for profiling the engine
//! (`perf record` on it) and for quick comparisons of two builds.
//! `cargo run --release --example engine_cnn -- [seconds]`

use mpq_data::{Split, SplitSizes, shipped};
use mpq_lowbit::engine::Engine;
use mpq_models::{ModelConfig, TrainConfig, train};
use mpq_quant::calib::{Calibration, input_ranges};
use mpq_quant::eval::EvalSet;
use std::time::Instant;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let secs: f64 = std::env::args().nth(1).and_then(|s| s.parse().ok()).unwrap_or(2.0);
    let data = shipped::load()?;
    let split = Split::draw(&data, SplitSizes { train: 4000, calib: 1000, test: 1000 }, None, 1)?;
    let m = match std::env::var("MODEL").as_deref() {
        Ok("mlp") => ModelConfig::Mlp { hidden: vec![256, 128] },
        _ => ModelConfig::Cnn { channels: [8, 16], hidden: 64 },
    };
    let cpu = mpq_pipeline::backend::device(mpq_experiment::config::Backend::Flex)?;
    let tc = TrainConfig { epochs: 1, ..TrainConfig::default() };
    let (net, _) = train::train(&m, &tc, &cpu, &data, &split, 2, &mut |_, _| {})?;
    let ranges = input_ranges(&net, &EvalSet::new(&data, &split.calib), Calibration::MinMax);
    let bits = mpq_quant::BitWidth::of::<8>();
    let plan = mpq_quant::Plan::uniform(net.n_layers(), bits, mpq_quant::Rounding::Nearest);
    let q = mpq_quant::export::pack_plan(&m.name(), &net, &plan, &ranges, mpq_quant::tensor::Granularity::PerTensor)?;
    let engine = Engine::new(&q)?;
    let x = data.gather_f32(&split.test[..256]);
    let only: Option<usize> = std::env::var("LAYER").ok().and_then(|v| v.parse().ok());
    for k in (0..q.layers.len()).filter(|k| only.is_none_or(|o| o == *k)) {
        let sub = |r: std::ops::Range<usize>| mpq_lowbit::format::QModel { layers: q.layers[r].to_vec(), ..q.clone() };
        let h = if k == 0 { x.clone() } else { Engine::new(&sub(0..k))?.forward(&x, 256) };
        let e = Engine::new(&sub(k..k + 1))?;
        let rate = fastest(secs, || std::hint::black_box(e.forward(&h, 256)).len() / q.layers[k].kind.output_width());
        println!("layer {k} ({:?}): {rate:>9.0} samples/s", q.layers[k].kind);
    }
    for batch in [1usize, 64, 256].into_iter().filter(|_| only.is_none_or(|o| o >= q.layers.len())) {
        let x = data.gather_f32(&split.test[..batch]);
        println!(
            "batch {batch:>3}: {:>9.0} samples/s",
            fastest(secs, || std::hint::black_box(engine.forward(&x, batch)).len() / 10)
        );
    }
    Ok(())
}

/// The fastest of ten windows of `secs / 10` seconds, in samples per second (`f` returns
/// how many it ran): a shared machine's slow spells fall in some windows, not all.
fn fastest(secs: f64, mut f: impl FnMut() -> usize) -> f64 {
    (0..10)
        .map(|_| {
            let (start, mut n) = (Instant::now(), 0usize);
            while start.elapsed().as_secs_f64() < secs / 10.0 {
                n += f();
            }
            n as f64 / start.elapsed().as_secs_f64()
        })
        .fold(0.0, f64::max)
}
