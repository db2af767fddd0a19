//! Commands: load and check an experiment, run its sweep (or one shard of it) with progress
//! and resume, gather the shards' results, train, and fetch data.

use crate::publish;
use crate::schedule::{self, Options};
use anyhow::{Context, Result};
use mpq_experiment::config::Experiment;
use mpq_pipeline::checkpoints;
use mpq_pipeline::dataset::{self, load_data};
use mpq_pipeline::output;
use std::path::Path;
use std::process::ExitCode;

fn manifest(exp: &Experiment) -> output::Manifest {
    let commit = mpq_pipeline::backend::git_commit(false).unwrap_or_else(|| "unknown".into());
    let cpu = mpq_pipeline::backend::cpu_name();
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    output::Manifest {
        experiment: exp.name.clone(),
        git_commit: commit,
        burn_version: mpq_models::BURN_VERSION.into(),
        cpu_features: mpq_pipeline::backend::cpu_features().into_iter().map(str::to_string).collect(),
        host_simd: mpq_host::simd::path().name().into(),
        backends: exp.backends.iter().map(|b| b.name().to_string()).collect(),
        adapters: exp.backends.iter().map(|&b| mpq_pipeline::backend::adapter(b, &cpu)).collect(),
        cores: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        cpu,
        unix_time: now,
        os: std::env::consts::OS.into(),
        arch: std::env::consts::ARCH.into(),
    }
}

/// `harness check`: validate and print the expanded runs.
pub fn check(file: &Path) -> Result<ExitCode> {
    use std::fmt::Write as _;
    let exp = Experiment::load(file)?;
    load_data(&exp).with_context(|| format!("{}: [data]", file.display()))?;
    let mut out = String::new();
    writeln!(out, "{}: {} runs, results in {}", file.display(), exp.expand().len(), exp.out_dir().display())?;
    let kinds = exp.quant.granularity.list();
    if kinds.len() > 1 {
        let names: Vec<&str> = kinds.iter().map(|&g| mpq_experiment::granularity::long(g)).collect();
        writeln!(out, "every run quantizes its weights {} in turn", names.join(", then "))?;
    }
    for m in &exp.models {
        if exp.strategies_for(m) != exp.quant.strategies.as_slice() {
            writeln!(out, "{}: strategies {:?}", m.name(), exp.strategies_for(m))?;
        }
        if let mpq_models::ModelConfig::Onnx { path, imported, .. } = m {
            writeln!(out, "{} imported from {}: {} layers", m.name(), path.display(), imported.arch.layers.len())?;
            for (l, src) in imported.arch.layers.iter().zip(&imported.sources) {
                writeln!(out, "  {:<8} {:<60} ← {src}", l.name, describe(&l.kind))?;
            }
        }
    }
    for s in exp.expand() {
        writeln!(
            out,
            "{:<40} model={} backend={} repeat={} seed={} split_seed={}",
            s.id,
            s.model.name(),
            s.backend.name(),
            s.repeat,
            s.seed,
            s.split_seed
        )?;
    }
    // A closed pipe (`harness check FILE | head`) is not an error of the experiment.
    match std::io::Write::write_all(&mut std::io::stdout().lock(), out.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e.into()),
        _ => Ok(ExitCode::SUCCESS),
    }
}

/// A layer in words, e.g. `conv 3x3 1→8 on 28x28, relu, max-pool 2x2`.
fn describe(kind: &mpq_models::LayerKind) -> String {
    match *kind {
        mpq_models::LayerKind::Linear { d_in, d_out, relu, residual } => format!(
            "linear {d_in}→{d_out}{}{}",
            if relu { ", relu" } else { "" },
            if residual { ", + identity" } else { "" }
        ),
        mpq_models::LayerKind::Conv { c_in, c_out, side_in, same, kernel, stride, residual, pool, carry } => format!(
            "conv {kernel}x{kernel}{}{} {c_in}→{c_out} on {side_in}x{side_in}{}, relu{}{}",
            if stride == 1 { String::new() } else { format!(" stride {stride}") },
            if same { " same" } else { "" },
            match carry {
                mpq_models::Carry::None => String::new(),
                mpq_models::Carry::Open => ", input carried on".into(),
                mpq_models::Carry::Close { c, side } => format!(", + carried {c}x{side}x{side} (before relu)"),
            },
            if residual { ", + identity" } else { "" },
            match pool {
                mpq_models::Pool::Max2 => ", max-pool 2x2",
                mpq_models::Pool::None => "",
                mpq_models::Pool::GlobalAvg => ", global average pool",
                mpq_models::Pool::Avg2 => ", average pool 2x2",
            }
        ),
    }
}

/// `harness run`: the sweep, or this process's shard of it. Exit 1 if any run failed, after
/// writing everything else.
pub fn run(file: &Path, retrain: bool, opts: &Options) -> Result<ExitCode> {
    let mut exp = Experiment::load(file)?;
    if retrain {
        exp.checkpoints = None;
    }
    run_experiment(&exp, file, opts)
}

/// The sweep of an already loaded experiment (`file` names it in messages). A shard only
/// writes its own run files; the whole sweep then writes tables, figures and the report.
pub fn run_experiment(exp: &Experiment, file: &Path, opts: &Options) -> Result<ExitCode> {
    let data = load_data(exp).with_context(|| format!("{}: [data]", file.display()))?;
    for b in &exp.backends {
        mpq_pipeline::backend::device(*b)?;
    }
    let out = exp.out_dir();
    let all = exp.expand();
    let specs = match opts.shard {
        Some(s) => mpq_cluster::shard::select(&all, s),
        None => all.clone(),
    };
    let unwritable = || format!("output folder {} is not writable; nothing was run", out.display());
    match opts.shard {
        None => write_setup(exp).with_context(unwritable)?,
        Some(_) => {
            let runs = out.join("runs");
            std::fs::create_dir_all(&runs).and_then(|()| tempfile::tempfile_in(&runs)).with_context(unwritable)?;
        }
    }
    let t0 = std::time::Instant::now();
    let outcome = schedule::execute_all(exp, &data, &specs, opts)?;
    let runs_secs = t0.elapsed().as_secs_f64();
    let Some(shard) = opts.shard else {
        return publish::finish(exp, &all, &outcome, runs_secs);
    };
    eprintln!(
        "shard {shard}: {} runs ({} done here, {} reused, {} done by other processes, {} failed) in {runs_secs:.1}s; \
         when every shard is done: harness gather {}",
        specs.len(),
        outcome.done,
        outcome.reused,
        outcome.done_elsewhere,
        outcome.failures.len(),
        file.display()
    );
    for (id, reason) in &outcome.failures {
        eprintln!("run {id} failed: {reason}");
    }
    Ok(if outcome.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Writes the resolved experiment and the machine manifest into the results folder.
fn write_setup(exp: &Experiment) -> Result<()> {
    let out = exp.out_dir();
    output::write_atomic(&out.join("config.resolved.toml"), toml::to_string(exp)?.as_bytes())?;
    Ok(output::write_atomic(&out.join("manifest.json"), serde_json::to_string_pretty(&manifest(exp))?.as_bytes())?)
}

/// `harness gather`: tables, figures and report from the run files of every shard; exit 1,
/// listing the missing runs and their shards (of `shards`, if given), while any are missing.
pub fn gather(file: &Path, shards: Option<usize>) -> Result<ExitCode> {
    let exp = Experiment::load(file)?;
    let out = exp.out_dir();
    let all = exp.expand();
    let missing: Vec<usize> = (0..all.len()).filter(|&i| output::load_run(&out, &all[i].id).is_none()).collect();
    if missing.is_empty() {
        write_setup(&exp).with_context(|| format!("output folder {} is not writable", out.display()))?;
        let outcome = schedule::Outcome { reused: all.len(), ..Default::default() };
        return publish::finish(&exp, &all, &outcome, 0.0);
    }
    let owner = shards.map(|n| mpq_cluster::shard::assign(&all, n));
    eprintln!("{} of {} runs have no results in {}:", missing.len(), all.len(), out.display());
    for &i in &missing {
        let shard = match (&owner, shards) {
            (Some(o), Some(n)) => format!("  (shard {}/{n})", o[i]),
            _ => String::new(),
        };
        let claimed = out.join("claims").join(format!("{}.claim", all[i].id));
        let note = if claimed.exists() { "  claimed: running, or its process died" } else { "" };
        eprintln!("  {}{shard}{note}", all[i].id);
    }
    eprintln!(
        "rerun the shards that own them (`harness run {} --shard I/N`; finished runs are skipped), then gather again",
        file.display()
    );
    Ok(ExitCode::from(1))
}

/// `harness train`: train (or load) every model of the experiment and print test accuracy;
/// with `ship`, then copy the checkpoints into the experiment's `checkpoints` folder.
pub fn train_only(file: &Path, retrain: bool, ship: bool) -> Result<ExitCode> {
    let mut exp = Experiment::load(file)?;
    let shipped = exp.checkpoints.clone();
    if retrain {
        exp.checkpoints = None;
    }
    let data = load_data(&exp).with_context(|| format!("{}: [data]", file.display()))?;
    let cache = exp.output.join("cache");
    for spec in exp.expand() {
        let dev = mpq_pipeline::backend::device(spec.backend)?;
        let split = dataset::split(&exp, &spec, &data)?;
        let t0 = std::time::Instant::now();
        let net = checkpoints::trained(&exp, &spec, &data, &split, &dev, &cache, &mut |_, _| {})?.0;
        let logits = mpq_models::metrics::logits(&net, &data.images, &split.test, &dev);
        let m = mpq_models::metrics::score(&logits, &data.images.gather_labels(&split.test), 1.0);
        println!(
            "{:<40} test loss {:.4}  test acc {:.4}  ({:.1}s incl. cache)",
            spec.id,
            m.loss,
            m.acc,
            t0.elapsed().as_secs_f64()
        );
    }
    if ship {
        exp.checkpoints = shipped;
        let n = checkpoints::ship(&exp, &data, &cache)?;
        eprintln!("shipped {n} checkpoints to {}", exp.checkpoints.unwrap_or_default().display());
    }
    Ok(ExitCode::SUCCESS)
}

/// `harness fetch`.
pub fn fetch(dataset: &str, dir: &Path, mirror: Option<String>) -> Result<ExitCode> {
    mpq_data::fetch::catalog(dataset)?;
    let mirrors = mirror.map(|m| vec![if m.ends_with('/') { m } else { format!("{m}/") }]);
    let files = mpq_data::fetch::fetch(dataset, &dir.join(dataset), mirrors.as_deref())?;
    for f in files {
        println!("ok {}", f.display());
    }
    Ok(ExitCode::SUCCESS)
}
