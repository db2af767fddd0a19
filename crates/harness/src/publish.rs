//! Publishing results: the CSV tables, plans, figures and report built from run files,
//! what produced them (provenance), and the console summary.

use crate::schedule::Outcome;
use anyhow::{Context, Result};
use mpq_experiment::config::Experiment;
use mpq_models::TrainEngine;
use mpq_pipeline::output;
use mpq_report::Tables;
use mpq_report::claims::{ReportInput, render};
use mpq_report::csvio;
use std::path::Path;
use std::process::ExitCode;

/// Builds tables, plans, failures, figures and the report from the run files of `specs`,
/// prints the summary and where the time went. Exit 1 if `outcome` holds failures.
pub fn finish(
    exp: &Experiment,
    specs: &[mpq_experiment::config::RunSpec],
    outcome: &Outcome,
    runs_secs: f64,
) -> Result<ExitCode> {
    let out = exp.out_dir();
    let t0 = std::time::Instant::now();
    let tables = output::tables(&out, specs.iter().map(|s| s.id.as_str()));
    tables.write(&out)?;
    write_plans(&out, &tables)?;
    let rows: Vec<FailureRow> =
        outcome.failures.iter().map(|(id, reason)| FailureRow { run_id: id.clone(), reason: reason.clone() }).collect();
    csvio::write(&out.join("failures.csv"), &rows)?;
    report(exp, &tables, &out, &out.join("figures"), "figures")?;
    let mut phases = outcome.phases.phases.clone();
    phases.push(("(runs)".into(), runs_secs));
    phases.push(("tables, figures, report".into(), t0.elapsed().as_secs_f64()));
    print_summary(&tables);
    print_phases(&phases);
    let elsewhere = match outcome.done_elsewhere {
        0 => String::new(),
        n => format!(", {n} done by other processes"),
    };
    eprintln!(
        "{} runs ({} reused, {} failed{elsewhere}) in {:.1}s; results in {}",
        specs.len(),
        outcome.reused,
        outcome.failures.len(),
        runs_secs + t0.elapsed().as_secs_f64(),
        out.display()
    );
    for (id, reason) in &outcome.failures {
        eprintln!("run {id} failed: {reason}");
    }
    Ok(if outcome.failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::from(1) })
}

/// Where the time went: each run phase summed over the runs done now, then the report.
fn print_phases(phases: &[(String, f64)]) {
    let wall: f64 = phases.iter().filter(|(p, _)| p == "(runs)" || p == "tables, figures, report").map(|p| p.1).sum();
    let work: f64 = phases.iter().filter(|(p, _)| p != "(runs)").map(|p| p.1).sum();
    eprintln!("time by phase (summed over the runs done now; seconds, share):");
    for (p, s) in phases.iter().filter(|(p, _)| p != "(runs)") {
        eprintln!("  {p:<26} {s:>8.1}  {:>5.1}%", 100.0 * s / work.max(1e-9));
    }
    eprintln!("  {:<26} {work:>8.1}", "total");
    if (work - wall).abs() > 0.05 * wall.max(1.0) {
        eprintln!("  {:<26} {wall:>8.1}  (runs overlapped: --jobs)", "wall clock");
    }
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
    Ok(output::write_atomic(&out.join("plans.json"), serde_json::to_string_pretty(&plans)?.as_bytes())?)
}

/// A row of `failures.csv`.
#[derive(serde::Serialize, Default)]
struct FailureRow {
    run_id: String,
    reason: String,
}

fn setup_text(exp: &Experiment, out: &Path) -> String {
    let m = output::Manifest::read(out);
    let machine = m
        .as_ref()
        .map(|m| format!("{} ({} cores), git commit {}", m.cpu, m.cores, m.git_commit))
        .unwrap_or_else(|| "unknown".into());
    // Backend names and adapters, paired as the manifest lists them.
    let devices = m
        .as_ref()
        .map(|m| m.backends.iter().zip(&m.adapters).map(|(b, a)| format!("{b} on {a}")).collect::<Vec<_>>().join("; "))
        .unwrap_or_else(|| "unknown".into());
    let models: Vec<String> = exp.models.iter().map(|m| m.name()).collect();
    let all_imported = exp.models.iter().all(|m| m.is_imported());
    let training = if all_imported {
        "imported, not trained here".to_string()
    } else {
        format!(
            "training: {} epochs, batch {}, lr {}, {:?}{}",
            exp.train.epochs,
            exp.train.batch_size,
            exp.train.lr,
            exp.train.optimizer,
            if exp.train.engine == TrainEngine::Host { " on the host engine" } else { "" }
        )
    };
    format!(
        "- Data: {:?}{}, splits train {} / calibration {} / test {} ({}).\n- Models: {}; {training}.{}\n- Bits: {:?}; strategies: {:?}; best-of-N null with N ≥ {}{}.\n- Repeats: {} per model and backend ({}){}; experiment seed {}.\n- Machine: {machine}.\n- Devices: {devices}.",
        exp.data.dataset,
        match exp.data.half {
            Some(h) => format!(" ({h:?} half: the examples at {h:?} positions)").to_lowercase(),
            None => String::new(),
        },
        if all_imported { 0 } else { exp.data.train },
        exp.data.calib,
        exp.data.test,
        if exp.data.cross_fit {
            "seeded, stratified, disjoint; cross-fitted: repeat r tests on fold r of a fixed partition into n / test folds and draws the other two splits from the remaining folds"
        } else {
            "seeded, stratified, disjoint; a new split per repeat"
        },
        models.join(", "),
        imported_text(exp),
        exp.quant.bits,
        exp.quant.strategies,
        exp.quant.random_n,
        granularity_text(exp),
        exp.repeats,
        exp.backends.iter().map(|b| b.name()).collect::<Vec<_>>().join(", "),
        overrides_text(exp),
        exp.seed
    )
}

/// How the method paragraph says weights are quantized: symmetric, at the experiment's
/// granularities.
fn weights_text(exp: &Experiment) -> String {
    let list = exp.quant.granularity.list();
    let names: Vec<_> = list.iter().map(|g| mpq_experiment::granularity::long(*g)).collect();
    match names.len() {
        1 => format!("symmetric, {}", names[0]),
        _ => format!("symmetric, {}, each in its own rows", names.join(" and ")),
    }
}

/// The weights' granularity in words where it is not the default one scale per tensor
/// (empty then, so reports of such experiments read as before).
fn granularity_text(exp: &Experiment) -> String {
    use mpq_experiment::granularity::{Granularities, long};
    let scored = match exp.quant.evaluation {
        mpq_quant::eval::Evaluation::Simulated => "",
        mpq_quant::eval::Evaluation::Integer => {
            "; plans scored on the integer engine (u8 input codes, i8 weight codes, exact i32 sums, one rescale per output: the exported model's numbers)"
        }
    };
    scored.to_string()
        + &match &exp.quant.granularity {
            Granularities::One(mpq_quant::tensor::Granularity::PerTensor) => String::new(),
            Granularities::One(g) => format!("; weights {} (inputs per tensor)", long(*g)),
            Granularities::Many(v) => format!(
                "; weights {}, each run quantized under each (rows labelled `<model>-tensor` / `<model>-channel`; inputs per tensor)",
                v.iter().map(|g| long(*g)).collect::<Vec<_>>().join(" and ")
            ),
        }
}

/// The imported models in words: file, hash, normalisation and where each layer came from,
/// and what their repeats vary (empty when every model trains here).
fn imported_text(exp: &Experiment) -> String {
    let mut s = String::new();
    for m in &exp.models {
        let mpq_models::ModelConfig::Onnx { path, mean, scale, sha256, imported } = m else { continue };
        let layers: Vec<String> =
            imported.arch.layers.iter().zip(&imported.sources).map(|(l, src)| format!("{} ← {src}", l.name)).collect();
        s.push_str(&format!(
            "\n- Imported: {} from `{}` (SHA-256 {}…), input (pixel / 255 − {}) × {}; layers {}. Its weights come from the file and are not trained here, so its repeats vary the calibration and test folds only (the Nadeau–Bengio factor is 1 for it: no training data is shared).",
            m.name(),
            path.display(),
            &sha256[..sha256.len().min(12)],
            mean.0,
            scale.0,
            layers.join("; ")
        ));
    }
    s
}

/// The `[[overrides]]` in words, e.g. "; mlp-256-128: 30 repeats, test 333".
fn overrides_text(exp: &Experiment) -> String {
    exp.overrides
        .iter()
        .map(|o| {
            let mut what = Vec::new();
            if let Some(r) = o.repeats {
                what.push(format!("{r} repeats"));
            }
            if let Some(t) = o.test {
                what.push(format!("test {t}"));
            }
            if let Some(s) = &o.strategies {
                what.push(format!("strategies {s:?}"));
            }
            format!("; {}: {}", o.models.join(", "), what.join(", "))
        })
        .collect()
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

/// What the claims read of `exp`'s design: the residual/plain pairs and each model's split
/// sizes.
pub fn design(exp: &Experiment) -> mpq_report::analysis::Design {
    // An imported model's repeats share no training data: no Nadeau–Bengio inflation.
    let g = &exp.quant.granularity;
    let sizes = exp
        .models
        .iter()
        .filter(|m| !m.is_imported())
        .flat_map(|m| {
            let s = exp.sizes_for(m);
            let fold = mpq_report::analysis::FoldSizes { train: s.train, test: s.test };
            g.list().into_iter().map(move |k| (g.label(&m.name(), k), fold))
        })
        .collect();
    mpq_report::analysis::Design { identity_pairs: exp.label_pairs(), sizes }
}

/// The experiment's ResNets and plain twins as the depth section labels them (once per
/// granularity the runs quantize under).
fn depth_models(exp: &Experiment) -> Vec<mpq_report::depth::DepthModel> {
    let g = &exp.quant.granularity;
    let mut out = Vec::new();
    for m in &exp.models {
        let (depth, residual) = match *m {
            mpq_models::ModelConfig::ResNet { depth, .. } => (depth, true),
            mpq_models::ModelConfig::PlainResNet { depth, .. } => (depth, false),
            _ => continue,
        };
        for k in g.list() {
            let granularity = mpq_experiment::granularity::long(k).to_string();
            out.push(mpq_report::depth::DepthModel { label: g.label(&m.name(), k), residual, granularity, depth });
        }
    }
    out
}

fn report(exp: &Experiment, t: &Tables, out: &Path, fig_dir: &Path, fig_rel: &str) -> Result<()> {
    let provenance = serde_json::to_string_pretty(&Provenance::current(exp)?)? + "\n";
    output::write_atomic(&out.join("provenance.json"), provenance.as_bytes())?;
    let pairs = exp.label_pairs();
    let summary = mpq_report::analysis::summarize(&t.runs);
    let claims = mpq_report::analysis::claims(&t.runs, &t.configs, &t.sensitivity, &design(exp));
    csvio::write(&out.join("summary.csv"), &summary)?;
    csvio::write(&out.join("claims.csv"), &claims)?;
    let mut figures = mpq_report::figures::draw_all(t, fig_dir, &pairs)?;
    let forest = mpq_report::findings::forest_rows(&claims, &summary);
    if !forest.is_empty() {
        let title = "Primary claims: mean, 95% interval, adjusted verdict ([fragile]: see Summary)".to_string();
        mpq_report::forest::forest(
            &fig_dir.join("forest_primary"),
            &title,
            "effect (ΔL in nats; input-vs-weight: |ΔL| difference)",
            &forest,
        )?;
        figures.insert(0, ("forest_primary".to_string(), title));
    }
    let has = |b| exp.backends.contains(&b);
    let features = if has(mpq_experiment::config::Backend::Wgpu) {
        " --features wgpu"
    } else if has(mpq_experiment::config::Backend::Ndarray) {
        " --features ndarray"
    } else {
        ""
    };
    let out_arg = if out == Path::new("paper") { String::new() } else { format!(" --out {}", out.display()) };
    let commands = vec![
        format!("cargo run --release -p harness{features} -- experiments/{}.toml", exp.name),
        format!("cargo run --release -p harness -- paper experiments/{}.toml{out_arg}", exp.name),
    ];
    let setup = setup_text(exp, &exp.out_dir());
    let backends = mpq_report::backends::Setup {
        models: exp.models.iter().map(|m| m.name()).collect(),
        backends: exp.backends.iter().map(|b| b.name().to_string()).collect(),
        bits: exp.quant.bits.iter().map(|b| b.get()).collect(),
        train_examples: exp.data.train,
    };
    let mut sections = mpq_report::backends::section(&backends, t, &summary);
    sections.push_str(&mpq_report::adaround::section(&t.runs, &claims));
    sections.push_str(&mpq_report::cost::section(&t.runs));
    let (depth, depth_figures) = mpq_report::depth::section(&depth_models(exp), &t.runs, &claims, fig_dir)?;
    sections.push_str(&depth);
    figures.extend(depth_figures);
    // `harness replicate ... --out <out>/replication` leaves its agreement table here.
    if let Ok(rep) = std::fs::read_to_string(out.join("replication").join("REPLICATION.md")) {
        let body = rep
            .lines()
            .skip_while(|l| l.starts_with("# ") || l.is_empty())
            .take_while(|l| !l.starts_with("## Every setting"))
            .map(|l| if l.starts_with("## ") { format!("#{l}") } else { l.to_string() })
            .collect::<Vec<_>>()
            .join("\n");
        sections
            .push_str(&format!("## Replication\n\nFrom `replication/REPLICATION.md` (`harness replicate`; every setting's estimates and z are there). {}\n", body.trim_end()));
    }
    let input = ReportInput {
        name: &exp.name,
        setup: &setup,
        sections: &sections,
        commands: &commands,
        figures: &figures,
        figure_dir: fig_rel,
        trainer: match exp.train.engine {
            _ if exp.models.iter().all(|m| m.is_imported()) => {
                "the models are imported from files, not trained here, and evaluated on the host"
            }
            TrainEngine::Burn => "burn trains the models",
            TrainEngine::Host => {
                "the models train on the host too, in the same fixed order, so every CPU trains the same weights"
            }
        },
        scoring: match exp.quant.evaluation {
            mpq_quant::eval::Evaluation::Simulated => mpq_report::claims::SIMULATED,
            mpq_quant::eval::Evaluation::Integer => mpq_report::claims::INTEGER,
        },
        weights: &weights_text(exp),
    };
    Ok(output::write_atomic(&out.join("REPORT.md"), render(&input, &claims, &summary).as_bytes())?)
}

fn print_summary(t: &Tables) {
    let summary = mpq_report::analysis::summarize(&t.runs);
    println!(
        "{:<22} {:>4} {:<16} {:>9} {:>8} {:>28}",
        "model", "bits", "method", "test loss", "test acc", "ΔL vs FP32 [95% CI]"
    );
    for r in summary.iter().filter(|r| {
        use mpq_report::Method::*;
        [Fp, FpTemp, Nearest, Exhaustive, Greedy, Beam, Taylor, RandomBest, Adaround].contains(&r.method)
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
