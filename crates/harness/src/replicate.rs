//! `harness replicate`: the same experiment under independent experiment seeds (new splits,
//! initializations, shuffles and folds), then how often the verdicts agree.

use anyhow::{Context, Result, bail};
use mpq_experiment::config::Experiment;
use mpq_models::TrainEngine;
use mpq_report::Tables;
use mpq_report::replication::{agreement, consistency, differences, render, render_consistency, render_differences};
use std::path::Path;
use std::process::ExitCode;

/// Runs `file` once per seed (results in `<output>/<name>-seed<S>/`), then writes and prints
/// the verdict agreement into `out`.
pub fn replicate(file: &Path, seeds: &[u64], out: &Path, force: bool) -> Result<ExitCode> {
    if seeds.len() != 2 || seeds[0] == seeds[1] {
        bail!("--seeds takes two different experiment seeds, e.g. --seeds 1,2");
    }
    let base = Experiment::load(file)?;
    let mut tables = Vec::new();
    let mut machine = String::new();
    for &seed in seeds {
        let mut exp = base.clone();
        exp.seed = seed;
        exp.name = format!("{}-seed{seed}", base.name);
        eprintln!("replication with experiment seed {seed}: results in {}", exp.out_dir().display());
        let code = crate::sweep::run_experiment(&exp, file, &crate::schedule::Options { force, ..Default::default() })?;
        if code != ExitCode::SUCCESS {
            bail!(
                "the replication with seed {seed} had failed runs; see {}",
                exp.out_dir().join("failures.csv").display()
            );
        }
        // Recomputed from the run tables rather than read from claims.csv: the comparison
        // needs each estimate's seed count.
        if let Some(m) = mpq_pipeline::output::Manifest::read(&exp.out_dir()) {
            let why = match exp.train.engine {
                TrainEngine::Burn => {
                    "trained weights depend on the CPU's float kernels, so another CPU gives other numbers"
                }
                TrainEngine::Host => {
                    "the models trained on the host engine, whose sums run in a fixed order, so every CPU gives these numbers"
                }
            };
            machine = format!(
                "\nModels trained and evaluated on {} ({} cores; SIMD {}); {why}.\n",
                m.cpu,
                m.cores,
                m.cpu_features.join(", ")
            );
        }
        let t = Tables::read(&exp.out_dir()).with_context(|| format!("reading {}", exp.out_dir().display()))?;
        tables.push(mpq_report::analysis::claims(&t.runs, &t.configs, &t.sensitivity, &exp.identity_pairs()));
    }
    let rows = agreement(&tables[0], &tables[1]);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    mpq_report::csvio::write(&out.join("agreement.csv"), &rows)?;
    let consistent = consistency(&tables[0], &tables[1]);
    mpq_report::csvio::write(&out.join("consistency.csv"), &consistent)?;
    let mut text = render(seeds, &rows);
    text.push_str(&machine);
    text.push_str(&render_consistency(&consistent));
    let diffs = differences(&tables[0], &tables[1]);
    if !diffs.is_empty() {
        text.push_str(&render_differences(seeds, &diffs));
    }
    mpq_pipeline::output::write_atomic(&out.join("REPLICATION.md"), text.as_bytes())?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}
