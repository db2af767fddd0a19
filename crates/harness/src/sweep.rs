//! Commands: load and check an experiment, run its sweep with progress and resume, and
//! regenerate tables, figures and the report.

use crate::config::{Dataset, Experiment};
use crate::output::{self, Tables};
use crate::run::{self, Data};
use anyhow::{Context, Result, anyhow};
use indicatif::{MultiProgress, ProgressBar, ProgressStyle};
use mpq_report::claims::{ReportInput, render};
use mpq_report::csvio;
use std::path::Path;
use std::process::ExitCode;

/// Loads the experiment's dataset and checks the split sizes fit it.
pub fn load_data(exp: &Experiment) -> Result<Data> {
    let d = &exp.data;
    let (images, test_from, name) = match d.dataset {
        Dataset::Mnist10k => (mpq_data::shipped::load()?, None, "mnist-10k".to_string()),
        Dataset::Mnist | Dataset::FashionMnist => {
            let name = if d.dataset == Dataset::Mnist { "mnist" } else { "fashion-mnist" };
            let (images, k) = mpq_data::fetch::load_fetched(name, &d.dir.join(name))?;
            (images, Some(k), name.to_string())
        }
        Dataset::Idx => {
            let (Some(i), Some(l)) = (&d.images, &d.labels) else {
                return Err(anyhow!("dataset = \"idx\" needs images and labels"));
            };
            let train = mpq_data::idx::read_pair(i, l)?;
            match (&d.test_images, &d.test_labels) {
                (Some(ti), Some(tl)) => {
                    let k = train.len();
                    (train.concat(mpq_data::idx::read_pair(ti, tl)?), Some(k), i.display().to_string())
                }
                _ => (train, None, i.display().to_string()),
            }
        }
    };
    // Split sizes are checked against the data here, before any run starts.
    mpq_data::Split::draw(&images, exp.sizes(), test_from, 0)?;
    let digest = images.digest();
    Ok(Data { images, test_from, name, digest })
}

fn manifest(exp: &Experiment) -> serde_json::Value {
    let git =
        std::process::Command::new("git").args(["rev-parse", "HEAD"]).output().ok().filter(|o| o.status.success());
    let commit = git.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_else(|| "unknown".into());
    let cpu = crate::backend::cpu_name();
    let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    serde_json::json!({
        "experiment": exp.name, "git_commit": commit, "burn_version": mpq_models::BURN_VERSION,
        "cpu_features": crate::backend::cpu_features(),
        "host_simd": mpq_models::host::simd::path().name(),
        "backends": exp.backends.iter().map(|b| b.name()).collect::<Vec<_>>(),
        "adapters": exp.backends.iter().map(|&b| crate::backend::adapter(b, &cpu)).collect::<Vec<_>>(),
        "cpu": cpu, "cores": cores, "unix_time": now, "os": std::env::consts::OS, "arch": std::env::consts::ARCH,
    })
}

/// `harness check`: validate and print the expanded runs.
pub fn check(file: &Path) -> Result<ExitCode> {
    let exp = Experiment::load(file)?;
    load_data(&exp).with_context(|| format!("{}: [data]", file.display()))?;
    println!("{}: {} runs, results in {}", file.display(), exp.expand().len(), exp.out_dir().display());
    for s in exp.expand() {
        println!(
            "{:<40} model={} backend={} repeat={} seed={} split_seed={}",
            s.id,
            s.model.name(),
            s.backend.name(),
            s.repeat,
            s.seed,
            s.split_seed
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn bars() -> (MultiProgress, ProgressBar, ProgressBar) {
    let mp = MultiProgress::new();
    let style = ProgressStyle::with_template("{prefix:>8} [{bar:30}] {pos}/{len} {msg}")
        .unwrap_or_else(|_| ProgressStyle::default_bar());
    let runs = mp.add(ProgressBar::new(0).with_style(style.clone()).with_prefix("runs"));
    let phase = mp.add(ProgressBar::new(0).with_style(style).with_prefix("phase"));
    (mp, runs, phase)
}

/// `harness run`: the sweep. Exit 1 if any run failed, after writing everything else.
pub fn run(file: &Path, force: bool, retrain: bool) -> Result<ExitCode> {
    let mut exp = Experiment::load(file)?;
    if retrain {
        exp.checkpoints = None;
    }
    run_experiment(&exp, file, force)
}

/// The sweep of an already loaded experiment (`file` names it in messages).
pub fn run_experiment(exp: &Experiment, file: &Path, force: bool) -> Result<ExitCode> {
    let exp = exp.clone();
    let data = load_data(&exp).with_context(|| format!("{}: [data]", file.display()))?;
    for b in &exp.backends {
        crate::backend::device(*b)?;
    }
    let out = exp.out_dir();
    let cache = exp.output.join("cache");
    output::write_atomic(&out.join("config.resolved.toml"), toml::to_string(&exp)?.as_bytes())
        .with_context(|| format!("output folder {} is not writable; nothing was run", out.display()))?;
    output::write_atomic(&out.join("manifest.json"), serde_json::to_string_pretty(&manifest(&exp))?.as_bytes())?;
    let specs = exp.expand();
    let (_mp, runs_bar, phase) = bars();
    runs_bar.set_length(specs.len() as u64);
    let mut failures = Vec::new();
    let (mut skipped, t0) = (0, std::time::Instant::now());
    let mut phases = run::Clock::start();
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    if !tty {
        runs_bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
        phase.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    for spec in &specs {
        runs_bar.set_message(spec.id.clone());
        if !force && output::load_run(&out, &spec.id).is_some() {
            skipped += 1;
            runs_bar.inc(1);
            continue;
        }
        let mut progress = |what: &str, d: usize, t: usize| {
            phase.set_length(t as u64);
            phase.set_position(d as u64);
            phase.set_message(what.to_string());
        };
        let started = std::time::Instant::now();
        let outcome = match run::execute(&exp, spec, &data, &cache, &mut progress) {
            Ok(r) => {
                output::save_run(&out, &spec.id, &r)?;
                for (p, s) in &r.phases {
                    phases.add(p, *s);
                }
                "ok".to_string()
            }
            Err(e) => {
                failures.push((spec.id.clone(), format!("{e:#}")));
                format!("failed: {e:#}")
            }
        };
        if !tty {
            eprintln!(
                "run {} ({}/{}) {:.1}s {outcome}",
                spec.id,
                runs_bar.position() + 1,
                specs.len(),
                started.elapsed().as_secs_f64()
            );
        }
        runs_bar.inc(1);
    }
    phase.finish_and_clear();
    runs_bar.finish_and_clear();
    let mut tables = Tables::default();
    for spec in &specs {
        if let Some(r) = output::load_run(&out, &spec.id) {
            tables.add(r);
        }
    }
    tables.write(&out)?;
    write_plans(&out, &tables)?;
    let rows: Vec<FailureRow> =
        failures.iter().map(|(id, reason)| FailureRow { run_id: id.clone(), reason: reason.clone() }).collect();
    csvio::write(&out.join("failures.csv"), &rows)?;
    phases.lap("(runs)");
    report(&exp, &tables, &out, &out.join("figures"), "figures")?;
    phases.lap("tables, figures, report");
    print_summary(&exp, &tables);
    print_phases(&phases.phases);
    eprintln!(
        "{} runs ({} reused, {} failed) in {:.1}s; results in {}",
        specs.len(),
        skipped,
        failures.len(),
        t0.elapsed().as_secs_f64(),
        out.display()
    );
    for (id, reason) in &failures {
        eprintln!("run {id} failed: {reason}");
    }
    Ok(if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Where the time went: each run phase summed over the runs done now, then the report.
fn print_phases(phases: &[(String, f64)]) {
    let runs: f64 = phases.iter().find(|(p, _)| p == "(runs)").map_or(0.0, |p| p.1);
    let total: f64 = runs + phases.iter().filter(|(p, _)| p == "tables, figures, report").map(|p| p.1).sum::<f64>();
    eprintln!("time by phase (runs done now; seconds, share of the sweep):");
    for (p, s) in phases.iter().filter(|(p, _)| p != "(runs)") {
        eprintln!("  {p:<26} {s:>8.1}  {:>5.1}%", 100.0 * s / total.max(1e-9));
    }
    eprintln!("  {:<26} {total:>8.1}", "total");
}

/// Writes every evaluated plan as JSON (`plans.json`): run, method, bits and the per-layer choices.
fn write_plans(out: &Path, t: &Tables) -> Result<()> {
    let plans: Vec<serde_json::Value> = t
        .runs
        .iter()
        .filter_map(|r| {
            let plan = mpq_quant::Plan::from_code(&r.plan).ok()?;
            Some(serde_json::json!({ "run_id": r.run_id, "method": r.method, "bits": r.bits, "plan": plan }))
        })
        .collect();
    output::write_atomic(&out.join("plans.json"), serde_json::to_string_pretty(&plans)?.as_bytes())
}

/// A row of `failures.csv`.
#[derive(serde::Serialize, Default)]
struct FailureRow {
    run_id: String,
    reason: String,
}

fn setup_text(exp: &Experiment, out: &Path) -> String {
    let m = std::fs::read_to_string(out.join("manifest.json"))
        .ok()
        .and_then(|s| serde_json::from_str::<serde_json::Value>(&s).ok());
    let machine = m
        .as_ref()
        .map(|m| {
            format!(
                "{} ({} cores), git commit {}",
                m["cpu"].as_str().unwrap_or("?"),
                m["cores"],
                m["git_commit"].as_str().unwrap_or("?")
            )
        })
        .unwrap_or_else(|| "unknown".into());
    // Backend names and adapters, paired as the manifest lists them.
    let devices = m
        .as_ref()
        .and_then(|m| Some((m["backends"].as_array()?.clone(), m["adapters"].as_array()?.clone())))
        .map(|(b, a)| {
            let pairs = b
                .iter()
                .zip(&a)
                .map(|(b, a)| format!("{} on {}", b.as_str().unwrap_or("?"), a.as_str().unwrap_or("?")));
            pairs.collect::<Vec<_>>().join("; ")
        })
        .unwrap_or_else(|| "unknown".into());
    let models: Vec<String> = exp.models.iter().map(|m| m.name()).collect();
    format!(
        "- Data: {:?}, splits train {} / calibration {} / test {} ({}).\n- Models: {}; training: {} epochs, batch {}, lr {}, {:?}.\n- Bits: {:?}; strategies: {:?}; best-of-N null with N ≥ {}.\n- Repeats: {} per model and backend ({}); experiment seed {}.\n- Machine: {machine}.\n- Devices: {devices}.",
        exp.data.dataset,
        exp.data.train,
        exp.data.calib,
        exp.data.test,
        if exp.data.cross_fit {
            "seeded, stratified, disjoint; cross-fitted: repeat r tests on fold r of a fixed partition into n / test folds and draws the other two splits from the remaining folds"
        } else {
            "seeded, stratified, disjoint; a new split per repeat"
        },
        models.join(", "),
        exp.train.epochs,
        exp.train.batch_size,
        exp.train.lr,
        exp.train.optimizer,
        exp.quant.bits,
        exp.quant.strategies,
        exp.quant.random_n,
        exp.repeats,
        exp.backends.iter().map(|b| b.name()).collect::<Vec<_>>().join(", "),
        exp.seed
    )
}

/// What produced a report: the versions of the code that determines results and a hash of
/// the resolved experiment. Written beside every report; a test compares the committed
/// `paper/` one with the current code.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Provenance {
    /// Experiment name.
    pub experiment: String,
    /// SHA-256 of the resolved experiment (as `config.resolved.toml` holds it).
    pub experiment_sha256: String,
    /// [`mpq_models::TRAIN_VERSION`].
    pub train_version: u32,
    /// [`mpq_models::BURN_VERSION`].
    pub burn_version: String,
    /// [`mpq_quant::QUANT_VERSION`].
    pub quant_version: u32,
    /// [`mpq_report::REPORT_VERSION`].
    pub report_version: u32,
}

impl Provenance {
    /// The provenance the current code gives `exp`.
    pub fn current(exp: &Experiment) -> Result<Provenance> {
        Ok(Provenance {
            experiment: exp.name.clone(),
            experiment_sha256: mpq_data::sha256_hex(toml::to_string(exp)?.as_bytes()),
            train_version: mpq_models::TRAIN_VERSION,
            burn_version: mpq_models::BURN_VERSION.into(),
            quant_version: mpq_quant::QUANT_VERSION,
            report_version: mpq_report::REPORT_VERSION,
        })
    }
}

fn report(exp: &Experiment, t: &Tables, out: &Path, fig_dir: &Path, fig_rel: &str) -> Result<()> {
    let provenance = serde_json::to_string_pretty(&Provenance::current(exp)?)? + "\n";
    output::write_atomic(&out.join("provenance.json"), provenance.as_bytes())?;
    let summary = crate::summary::summarize(&t.runs, exp.seed);
    let claims = crate::summary::claims(&t.runs, &t.configs, &t.sensitivity, exp.seed);
    csvio::write(&out.join("summary.csv"), &summary)?;
    csvio::write(&out.join("claims.csv"), &claims)?;
    let mut figures = crate::figures::draw_all(t, fig_dir, exp.seed)?;
    let forest = mpq_report::findings::forest_rows(&claims, &summary);
    if !forest.is_empty() {
        let title = "Primary claims: mean effect with 95% interval, coloured by the adjusted verdict".to_string();
        mpq_report::forest::forest(
            &fig_dir.join("forest_primary"),
            &title,
            "effect (ΔL in nats; input-vs-weight: |ΔL| difference)",
            &forest,
        )?;
        figures.insert(0, ("forest_primary".to_string(), title));
    }
    let features = if exp.backends.contains(&crate::config::Backend::Wgpu) { " --features wgpu" } else { "" };
    let out_arg = if out == Path::new("paper") { String::new() } else { format!(" --out {}", out.display()) };
    let commands = vec![
        format!("cargo run --release -p harness{features} -- experiments/{}.toml", exp.name),
        format!("cargo run --release -p harness -- paper experiments/{}.toml{out_arg}", exp.name),
    ];
    let setup = setup_text(exp, &exp.out_dir());
    let mut sections = crate::summary::backend_section(exp, t, &summary);
    // `harness replicate ... --out <out>/replication` leaves its agreement table here.
    if let Ok(rep) = std::fs::read_to_string(out.join("replication").join("REPLICATION.md")) {
        let body = rep.lines().skip_while(|l| l.starts_with("# ") || l.is_empty()).collect::<Vec<_>>().join("\n");
        sections.push_str(&format!(
            "## Stability across independent replications\n\nFrom `replication/REPLICATION.md`. {body}\n"
        ));
    }
    let input = ReportInput {
        name: &exp.name,
        setup: &setup,
        sections: &sections,
        commands: &commands,
        figures: &figures,
        figure_dir: fig_rel,
    };
    output::write_atomic(&out.join("REPORT.md"), render(&input, &claims, &summary).as_bytes())
}

fn print_summary(exp: &Experiment, t: &Tables) {
    let summary = crate::summary::summarize(&t.runs, exp.seed);
    println!(
        "{:<22} {:>4} {:<16} {:>9} {:>8} {:>28}",
        "model", "bits", "method", "test loss", "test acc", "ΔL vs FP32 [95% CI]"
    );
    for r in summary.iter().filter(|r| {
        ["fp", "fp-temp", "nearest", "exhaustive", "greedy", "taylor", "random-best"].contains(&r.method.as_str())
    }) {
        println!(
            "{:<22} {:>4} {:<16} {:>9.4} {:>8.4} {:>+9.4} [{:+.4}, {:+.4}]",
            format!("{}/{}", r.model, r.backend),
            r.bits,
            r.method,
            r.test_loss,
            r.test_acc,
            r.delta_mean,
            r.delta_lo,
            r.delta_hi
        );
    }
}

/// `harness paper`: regenerate the report and figures into `out` from existing results.
pub fn paper(file: &Path, out: &Path) -> Result<ExitCode> {
    let exp = Experiment::load(file)?;
    let tables = Tables::read(&exp.out_dir())
        .with_context(|| format!("no results for {}: run `harness {}` first", exp.name, file.display()))?;
    std::fs::create_dir_all(out)?;
    report(&exp, &tables, out, &out.join("figures"), "figures")?;
    eprintln!("wrote {}/REPORT.md and {}/figures/", out.display(), out.display());
    Ok(ExitCode::SUCCESS)
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
        let dev = crate::backend::device(spec.backend)?;
        let split = run::split(&exp, &spec, &data)?;
        let t0 = std::time::Instant::now();
        let net = run::trained(&exp, &spec, &data, &split, &dev, &cache, &mut |_, _| {})?.0;
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
        let n = crate::ship::ship(&exp, &data, &cache)?;
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
