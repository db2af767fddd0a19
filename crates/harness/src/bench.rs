//! `harness bench`: throughput measured side by side in one process, printed as ratios and
//! written to `results/bench/timing.csv` with the machine in `results/bench/machine.json`;
//! a second table compares each number with the previous run's in the same folder, so a
//! change that slows something shows. Never used as a pass/fail threshold.

use anyhow::Result;
use burn::module::Module;
use mpq_data::{Split, SplitSizes, shipped};
use mpq_experiment::config::Backend;
use mpq_lowbit::engine::Engine;
use mpq_lowbit::gemm::Kernel;
use mpq_models::{ModelConfig, TrainConfig, TrainEngine, metrics, train};
use mpq_quant::calib::{Calibration, input_ranges};
use mpq_quant::eval::{EvalSet, Evaluation, Evaluator};
use mpq_quant::search::{exhaustive, greedy};
use serde::{Deserialize, Serialize};
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

/// A row of `timing.csv`.
#[derive(Debug, Serialize, Deserialize, Default)]
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

/// Makes the calling thread one of the threads of rayon's global pool, as ONNX Runtime's and
/// PyTorch's callers are of theirs: a parallel call from outside the pool hands its work to
/// the pool's threads and sleeps until they finish, which at batch 64 cost the MLP half its
/// speed (337-461k against 734-789k examples/s, 2 threads). Only with 2 threads or more: a
/// pool whose one thread is the caller would leave work sent to it from another thread
/// waiting. Returns whether it did (not where the global pool was already built).
fn pool_on_this_thread() -> bool {
    let env = std::env::var("RAYON_NUM_THREADS").ok().and_then(|v| v.parse::<usize>().ok()).filter(|&n| n > 0);
    let threads = env.unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
    threads >= 2 && rayon::ThreadPoolBuilder::new().num_threads(threads).use_current_thread().build_global().is_ok()
}

/// Times `f` after one untimed call: five rounds of repeated calls, each lasting at least
/// 60 ms, and returns the fastest round's seconds per call. A round that another process
/// slowed down (this is measured on shared machines) does not count; `reference.py` times
/// the PyTorch and ONNX Runtime side the same way.
fn time_per_call(mut f: impl FnMut()) -> f64 {
    f();
    (0..5)
        .map(|_| {
            let (t0, mut calls) = (Instant::now(), 0u32);
            while calls < 1 || t0.elapsed().as_secs_f64() < 0.06 {
                f();
                calls += 1;
            }
            t0.elapsed().as_secs_f64() / calls as f64
        })
        .fold(f64::INFINITY, f64::min)
}

/// FP32 burn forward on each backend and on the host network, against the int8 and int4
/// engines, batch 1, 64, 256.
fn engine_rows(backends: &[Backend], data: &mpq_data::Images, split: &Split, rows: &mut Vec<TimingRow>) -> Result<()> {
    let models = [ModelConfig::Mlp { hidden: vec![256, 128] }, ModelConfig::Cnn { channels: [8, 16], hidden: 64 }];
    let cpu = mpq_pipeline::backend::device(Backend::Flex)?;
    for m in &models {
        let tc = TrainConfig { epochs: 1, ..TrainConfig::default() };
        let (net, _) = train::train(m, &tc, &cpu, data, split, 2, &mut |_, _| {})?;
        let set = EvalSet::new(data, &split.calib);
        let ranges = input_ranges(&net, &set, Calibration::MinMax);
        // The host network every evaluation and search runs on: f32 with its sums in a fixed
        // order, on the host SIMD path in use.
        let host = mpq_models::HostNet::from_net(&net);
        for batch in [1usize, 64, 256] {
            let idx = &split.test[..batch];
            let x = data.gather_f32(idx);
            for &b in backends {
                let dev = mpq_pipeline::backend::device(b)?;
                let net_b = net.clone().to_device(&dev);
                let xt =
                    burn::tensor::Tensor::<2>::from_data(burn::tensor::TensorData::new(x.clone(), [batch, 784]), &dev);
                let secs = time_per_call(|| {
                    let _ = net_b.forward(xt.clone()).into_data();
                });
                rows.push(row("infer-fp32", &m.name(), b.name(), batch, batch, secs, "samples/s"));
            }
            let secs = time_per_call(|| {
                let _ = host.forward(&x);
            });
            let name = format!("host-{}", mpq_models::host::simd::path().name());
            rows.push(row("infer-fp32", &m.name(), &name, batch, batch, secs, "samples/s"));
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
                let others = Kernel::ALL.into_iter().filter(|k| *k != best);
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

/// What a bench ran on (`machine.json`): enough to tell whether two runs can be compared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Machine {
    cpu: String,
    simd: Vec<String>,
    engine_kernel: String,
    host_simd: String,
    rayon_threads: usize,
    cores: usize,
    git_commit: String,
}

impl Machine {
    fn now() -> Machine {
        Machine {
            cpu: mpq_pipeline::backend::cpu_name(),
            simd: mpq_pipeline::backend::cpu_features().into_iter().map(str::to_string).collect(),
            engine_kernel: Kernel::detect().name().to_string(),
            host_simd: mpq_models::host::simd::path().name().to_string(),
            rayon_threads: rayon::current_num_threads(),
            cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
            git_commit: mpq_pipeline::backend::git_commit(true).unwrap_or_else(|| "unknown".into()),
        }
    }
}

/// Most passes of the timed greedy search (it stops earlier after a pass with no change).
const GREEDY_PASSES: usize = 10;

/// Training with the host engine (`[train] engine = "host"`: fixed-order passes, the same
/// weights on every CPU), timed like the backends' `train` rows.
fn host_train_rows(data: &mpq_data::Images, split: &Split, samples: usize) -> Result<Vec<TimingRow>> {
    let models = [ModelConfig::Mlp { hidden: vec![256, 128] }, ModelConfig::Cnn { channels: [8, 16], hidden: 64 }];
    let dev = mpq_pipeline::backend::device(Backend::Flex)?;
    let name = format!("host-{}", mpq_models::host::simd::path().name());
    let tc = TrainConfig { epochs: 1, batch_size: 64, engine: TrainEngine::Host, ..TrainConfig::default() };
    let warm = Split { train: split.train[..split.train.len().min(256)].to_vec(), ..split.clone() };
    let mut rows = Vec::new();
    for m in &models {
        train::train(m, &tc, &dev, data, &warm, 1, &mut |_, _| {})?;
        let t0 = Instant::now();
        train::train(m, &tc, &dev, data, split, 1, &mut |_, _| {})?;
        rows.push(row("train", &m.name(), &name, 64, samples, t0.elapsed().as_secs_f64(), "samples/s"));
    }
    Ok(rows)
}

/// Training, FP32 inference, the exhaustive search (without and with prefix reuse) and the
/// greedy search of each model on each backend, each timed after an untimed warm-up of the
/// same work.
fn train_and_search_rows(
    backends: &[Backend],
    data: &mpq_data::Images,
    split: &Split,
    samples: usize,
) -> Result<Vec<TimingRow>> {
    let models = [ModelConfig::Mlp { hidden: vec![256, 128] }, ModelConfig::Cnn { channels: [8, 16], hidden: 64 }];
    let mut rows = Vec::new();
    for &b in backends {
        let dev = mpq_pipeline::backend::device(b)?;
        for m in &models {
            let tc = TrainConfig { epochs: 1, batch_size: 64, ..TrainConfig::default() };
            // Untimed first: a GPU backend compiles (and tunes) its kernels on first use, which
            // would otherwise count as training time; on a CPU this only warms caches.
            let warm = Split { train: split.train[..split.train.len().min(256)].to_vec(), ..split.clone() };
            let (net, _) = train::train(m, &tc, &dev, data, &warm, 1, &mut |_, _| {})?;
            let _ = metrics::logits(&net, data, &split.calib, &dev);
            let t0 = Instant::now();
            let (net, _) = train::train(m, &tc, &dev, data, split, 1, &mut |_, _| {})?;
            rows.push(row("train", &m.name(), b.name(), 64, samples, t0.elapsed().as_secs_f64(), "samples/s"));
            // Repeated like the batch rows: one pass over 1000 digits lasts milliseconds.
            let secs = time_per_call(|| {
                let _ = metrics::logits(&net, data, &split.calib, &dev);
            });
            rows.push(row("infer", &m.name(), b.name(), 1000, 1000, secs, "samples/s"));
            let set = EvalSet::new(data, &split.calib);
            let ev = Evaluator::new(&net, input_ranges(&net, &set, Calibration::MinMax), 1);
            // Prefix reuse on the integer engine: the kernel chosen at run time, then the others.
            let kernels = std::iter::once(Kernel::detect()).chain(Kernel::ALL.into_iter().filter(|k| k.supported()));
            let mut kernels: Vec<Kernel> = kernels.collect();
            kernels.dedup();
            let ints: Vec<(String, Evaluator)> = kernels
                .iter()
                .map(|&k| {
                    let e = Evaluator::new(&net, ev.ranges.clone(), 1).evaluated_by(Evaluation::Integer).on_kernel(k);
                    (format!("{}+{}", b.name(), k.name()), e)
                })
                .collect();
            let mut searches = vec![("exhaustive-naive", false, b.name().to_string(), &ev)];
            searches.push(("exhaustive-prefix", true, b.name().to_string(), &ev));
            searches.extend(ints.iter().map(|(name, e)| ("exhaustive-integer", true, name.clone(), e)));
            for (name, reuse, backend, ev) in searches {
                let configs = exhaustive(ev, 8, &set, reuse, &mut |_, _| {})?.configs.len();
                // One search lasts tens of milliseconds: repeated, as the forward passes are.
                let secs = time_per_call(|| {
                    let _ = exhaustive(ev, 8, &set, reuse, &mut |_, _| {});
                });
                rows.push(row(name, &m.name(), &backend, 1000, configs, secs, "configs/s"));
            }
            // Greedy coordinate descent (at most `GREEDY_PASSES` passes), which keeps the current plan's
            // activations and reruns only the layers from the one it changes.
            let greedies = std::iter::once(("greedy", b.name().to_string(), &ev));
            for (name, backend, ev) in greedies.chain(ints.iter().map(|(n, e)| ("greedy-integer", n.clone(), e))) {
                let plans = greedy(ev, 8, &set, GREEDY_PASSES)?.evaluations;
                let secs = time_per_call(|| {
                    let _ = greedy(ev, 8, &set, GREEDY_PASSES);
                });
                rows.push(row(name, &m.name(), &backend, 1000, plans, secs, "plans/s"));
            }
        }
    }
    Ok(rows)
}

/// Merges one pass's rows into `rows`, keeping each measurement's fastest pass (rows match
/// by what, model, backend and batch; a row new to `rows` is added).
fn keep_fastest(rows: &mut Vec<TimingRow>, pass: Vec<TimingRow>) {
    for r in pass {
        let key =
            |o: &TimingRow| o.what == r.what && o.model == r.model && o.backend == r.backend && o.batch == r.batch;
        match rows.iter_mut().find(|o| key(o)) {
            Some(o) if r.per_second > o.per_second => *o = r,
            Some(_) => {}
            None => rows.push(r),
        }
    }
}

/// The reference a row is compared with in this run, and what it is.
fn reference<'a>(r: &TimingRow, rows: &'a [TimingRow]) -> (Option<&'a TimingRow>, &'static str) {
    if r.what.starts_with("infer-") {
        let fp = rows
            .iter()
            .filter(|o| o.what == "infer-fp32" && o.model == r.model && o.batch == r.batch)
            .filter(|o| o.backend == Backend::Flex.name() || o.backend == Backend::Ndarray.name())
            .max_by(|a, b| a.per_second.total_cmp(&b.per_second));
        (fp, "fastest FP32 CPU backend, same batch")
    } else if r.what == "exhaustive-prefix" {
        let naive = rows.iter().find(|o| o.what == "exhaustive-naive" && o.model == r.model && o.backend == r.backend);
        (naive, "naive, same backend")
    } else if r.what == "exhaustive-integer" || r.what == "greedy-integer" {
        let backend = r.backend.split('+').next().unwrap_or_default();
        let what = if r.what == "greedy-integer" { "greedy" } else { "exhaustive-prefix" };
        let sim = rows.iter().find(|o| o.what == what && o.model == r.model && o.backend == backend);
        (sim, "simulated, same search")
    } else {
        let fastest = rows
            .iter()
            .filter(|o| o.what == r.what && o.model == r.model)
            .max_by(|a, b| a.per_second.total_cmp(&b.per_second));
        (fastest, "fastest backend")
    }
}

fn label(r: &TimingRow) -> String {
    if r.what.starts_with("infer-") { format!("{}/b{}", r.backend, r.batch) } else { r.backend.clone() }
}

/// Each row against the previous run's same measurement (same what, model, backend, batch).
fn print_against_previous(rows: &[TimingRow], previous: &[TimingRow], same_machine: bool) {
    if previous.is_empty() {
        println!("\n(no previous run in this folder to compare with)");
        return;
    }
    let note =
        if same_machine { "same machine and thread count" } else { "ANOTHER machine or thread count: not comparable" };
    println!("\nagainst the previous run ({note}): new / old throughput");
    for r in rows {
        let old = previous
            .iter()
            .find(|o| o.what == r.what && o.model == r.model && o.backend == r.backend && o.batch == r.batch);
        if let Some(o) = old {
            println!(
                "{:<18} {:<12} {:<20} {:>12.1} {:>12.1} {:>7.2}x",
                r.what,
                r.model,
                label(r),
                r.per_second,
                o.per_second,
                r.per_second / o.per_second.max(1e-12)
            );
        }
    }
}

/// Runs the benchmark `passes` times on `backends` with `samples` training examples, keeps
/// each row's fastest pass, writes `out/timing.csv` and `out/machine.json`, and compares
/// with the previous run there.
pub fn bench(backends: &[Backend], samples: usize, out: &Path, passes: usize) -> Result<ExitCode> {
    let caller_in_pool = pool_on_this_thread();
    let data = shipped::load()?;
    let split = Split::draw(&data, SplitSizes { train: samples, calib: 1000, test: 1000 }, None, 1)?;
    let machine = Machine::now();
    let cpu = &machine.cpu;
    let mut adapters: Vec<String> = backends.iter().map(|&b| mpq_pipeline::backend::adapter(b, cpu)).collect();
    adapters.dedup();
    eprintln!("devices: {}", adapters.join("; "));
    eprintln!(
        "SIMD: {}; integer engine kernel: {}; host evaluation: {}",
        machine.simd.join(" "),
        machine.engine_kernel,
        machine.host_simd
    );
    let caller = if caller_in_pool { ", this thread one of them" } else { "" };
    eprintln!(
        "threads: {} (rayon{caller}; RAYON_NUM_THREADS sets it) on {} cores",
        machine.rayon_threads, machine.cores
    );
    // A previous run's table from an older layout is not comparable: it is reported, not fatal.
    let previous: Vec<TimingRow> = match mpq_report::csvio::read(&out.join("timing.csv")) {
        Ok(rows) => rows,
        Err(e) if out.join("timing.csv").exists() => {
            eprintln!("previous run not compared: {e}");
            Vec::new()
        }
        Err(_) => Vec::new(),
    };
    let previous_machine: Option<Machine> =
        std::fs::read_to_string(out.join("machine.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
    let mut rows: Vec<TimingRow> = Vec::new();
    for pass in 1..=passes.max(1) {
        eprintln!("pass {pass} of {passes}");
        let mut this = train_and_search_rows(backends, &data, &split, samples)?;
        this.extend(host_train_rows(&data, &split, samples)?);
        engine_rows(backends, &data, &split, &mut this)?;
        keep_fastest(&mut rows, this);
    }
    std::fs::create_dir_all(out)?;
    mpq_report::csvio::write(&out.join("timing.csv"), &rows)?;
    mpq_pipeline::output::write_atomic(&out.join("machine.json"), serde_json::to_string_pretty(&machine)?.as_bytes())?;
    println!("what               model        backend              throughput unit          ratio  against");
    for r in &rows {
        let (base, against) = reference(r, &rows);
        let ratio = base.map(|o| r.per_second / o.per_second).unwrap_or(1.0);
        println!(
            "{:<18} {:<12} {:<20} {:>12.1} {:<10} {:>7.2}x  {}",
            r.what,
            r.model,
            label(r),
            r.per_second,
            r.unit,
            ratio,
            against
        );
    }
    let same = previous_machine
        .as_ref()
        .is_some_and(|p| p.cpu == machine.cpu && p.simd == machine.simd && p.rayon_threads == machine.rayon_threads);
    print_against_previous(&rows, &previous, same);
    eprintln!("wrote {} and machine.json", out.join("timing.csv").display());
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each measurement keeps its fastest pass, in the first pass's order; a row only a later
    /// pass has is added.
    #[test]
    fn passes_keep_each_rows_fastest() {
        let r = |what: &str, batch, secs| row(what, "mlp", "flex", batch, 100, secs, "samples/s");
        let mut rows = Vec::new();
        keep_fastest(&mut rows, vec![r("infer", 1, 2.0), r("infer", 64, 1.0)]);
        keep_fastest(&mut rows, vec![r("infer", 1, 1.0), r("infer", 64, 4.0), r("train", 64, 3.0)]);
        let got: Vec<(&str, usize, f64)> = rows.iter().map(|o| (o.what.as_str(), o.batch, o.seconds)).collect();
        assert_eq!(got, [("infer", 1, 1.0), ("infer", 64, 1.0), ("train", 64, 3.0)]);
    }
}
