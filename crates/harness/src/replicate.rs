//! `harness replicate`: an experiment's frozen design run twice, either on a disjoint pool of
//! digits (seed and data vary) or under two experiment seeds on the same digits (seed noise
//! only), then how often the verdicts agree and whether the estimates differ more than their
//! intervals allow. `harness halves` writes the shipped digits' two disjoint halves.

use anyhow::{Context, Result, bail};
use mpq_experiment::config::{Dataset, Experiment};
use mpq_models::TrainEngine;
use mpq_report::Tables;
use mpq_report::replication::{
    Pair, agreement, consistency, differences, render, render_consistency, render_differences, render_settings,
};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

/// What the replication varies.
pub enum Mode {
    /// The experiment under two experiment seeds, on its own data.
    Seeds(Vec<u64>),
    /// The experiment as it is, and its design on a disjoint pool under a new seed.
    Pool {
        /// IDX image file of the pool.
        images: PathBuf,
        /// IDX label file of the pool.
        labels: PathBuf,
        /// Experiment seed on the pool (default: the experiment's + 1).
        seed: Option<u64>,
    },
}

/// Most of a pool that may repeat the experiment's own images (MNIST holds a few exact
/// duplicates); beyond it the pool is not disjoint and the replication is refused.
const MAX_SHARED: f64 = 0.01;

/// The two experiments to run and how the report names them.
fn plan(file: &Path, base: &Experiment, mode: &Mode) -> Result<(Vec<Experiment>, Pair)> {
    match mode {
        Mode::Seeds(seeds) => {
            if seeds.len() != 2 || seeds[0] == seeds[1] {
                bail!("--seeds takes two different experiment seeds, e.g. --seeds 1,2");
            }
            let exps = seeds
                .iter()
                .map(|&seed| {
                    let mut exp = base.clone();
                    exp.seed = seed;
                    exp.name = format!("{}-seed{seed}", base.name);
                    exp
                })
                .collect();
            let design = format!(
                "The design of `{}` under experiment seeds {} and {} (independent splits, folds, initializations and shuffles) on the same digits.",
                file.display(),
                seeds[0],
                seeds[1]
            );
            let labels = [format!("seed {}", seeds[0]), format!("seed {}", seeds[1])];
            Ok((exps, Pair { labels, design, new_data: false }))
        }
        Mode::Pool { images, labels, seed } => {
            let mut pool = base.clone();
            pool.seed = seed.unwrap_or(base.seed.wrapping_add(1));
            pool.name = format!("{}-pool", base.name);
            pool.checkpoints = None;
            pool.data.dataset = Dataset::Idx;
            (pool.data.images, pool.data.labels) = (Some(images.clone()), Some(labels.clone()));
            (pool.data.test_images, pool.data.test_labels) = (None, None);
            let own =
                mpq_pipeline::dataset::load_data(base).with_context(|| format!("the data of {}", file.display()))?;
            let new = mpq_pipeline::dataset::load_data(&pool)
                .with_context(|| format!("the pool {} / {}", images.display(), labels.display()))?;
            let shared = own.images.shared_images(&new.images);
            if shared as f64 > MAX_SHARED * new.images.len() as f64 {
                bail!(
                    "{shared} of the pool's {} images also occur in the data of {}: a replication pool must be disjoint from it",
                    new.images.len(),
                    file.display()
                );
            }
            let design = format!(
                "The frozen design of `{}` (same file, same overrides) on its own data ({} digits, experiment seed {}) and on a disjoint pool `{}` ({} digits, {shared} of them pixel-identical to one of the first; experiment seed {}; models trained on the pool).",
                file.display(),
                own.images.len(),
                base.seed,
                images.display(),
                new.images.len(),
                pool.seed
            );
            let labels = ["original".to_string(), "pool".to_string()];
            Ok((vec![base.clone(), pool], Pair { labels, design, new_data: true }))
        }
    }
}

/// The machine sentence of a finished experiment, from its manifest.
fn machine(exp: &Experiment) -> String {
    let Some(m) = mpq_pipeline::output::Manifest::read(&exp.out_dir()) else { return String::new() };
    let why = match exp.train.engine {
        TrainEngine::Burn => "trained weights depend on the CPU's float kernels, so another CPU gives other numbers",
        TrainEngine::Host => {
            "the models trained on the host engine, whose sums run in a fixed order, so every CPU gives these numbers"
        }
    };
    format!(
        "\nModels trained and evaluated on {} ({} cores; SIMD {}); {why}.\n",
        m.cpu,
        m.cores,
        m.cpu_features.join(", ")
    )
}

/// Runs both replications (results in `<output>/<name>/`, resumed where present), then
/// writes and prints the comparison into `out`.
pub fn replicate(file: &Path, mode: &Mode, out: &Path, force: bool) -> Result<ExitCode> {
    let base = Experiment::load(file)?;
    let (exps, pair) = plan(file, &base, mode)?;
    let mut tables = Vec::new();
    let mut times = Vec::new();
    for (exp, label) in exps.iter().zip(&pair.labels) {
        eprintln!("replication {label}: results in {}", exp.out_dir().display());
        let start = Instant::now();
        let code = crate::sweep::run_experiment(exp, file, &crate::schedule::Options { force, ..Default::default() })?;
        if code != ExitCode::SUCCESS {
            bail!("the replication {label} had failed runs; see {}", exp.out_dir().join("failures.csv").display());
        }
        // Recomputed from the run tables rather than read from claims.csv: the comparison
        // needs each estimate's seed count.
        let t = Tables::read(&exp.out_dir()).with_context(|| format!("reading {}", exp.out_dir().display()))?;
        let compute: f64 =
            t.train.iter().map(|r| r.seconds).sum::<f64>() + t.runs.iter().map(|r| r.seconds).sum::<f64>();
        times.push(format!("{label} {compute:.0} s ({:.0} s in this command)", start.elapsed().as_secs_f64()));
        tables.push(mpq_report::analysis::claims(&t.runs, &t.configs, &t.sensitivity, &crate::publish::design(exp)));
    }
    let rows = agreement(&tables[0], &tables[1]);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    mpq_report::csvio::write(&out.join("agreement.csv"), &rows)?;
    let consistent = consistency(&tables[0], &tables[1]);
    mpq_report::csvio::write(&out.join("consistency.csv"), &consistent)?;
    let mut text = render(&pair, &rows, &tables[0], &tables[1]);
    text.push_str(&exps.last().map(machine).unwrap_or_default());
    text.push_str(&format!(
        "\nTime of each replication's runs (training epochs and every method, summed from train.csv and runs.csv): {}; runs whose results already existed were read, not rerun.\n",
        times.join(", ")
    ));
    text.push_str(&render_consistency(&pair, &consistent));
    let diffs = differences(&tables[0], &tables[1]);
    if !diffs.is_empty() {
        text.push_str(&render_differences(&pair, &diffs));
    }
    text.push_str(&render_settings(&pair, &tables[0], &tables[1]));
    mpq_pipeline::output::write_atomic(&out.join("REPLICATION.md"), text.as_bytes())?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
}

/// `harness halves`: the shipped digits' even and odd halves as IDX files in `out`.
pub fn halves(out: &Path) -> Result<ExitCode> {
    let all = mpq_data::shipped::load()?;
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, half) in ["even", "odd"].into_iter().zip(all.halves()) {
        let images = out.join(format!("{name}-images-idx3-ubyte"));
        let labels = out.join(format!("{name}-labels-idx1-ubyte"));
        mpq_pipeline::output::write_atomic(&images, &mpq_data::idx::encode_images(&half.pixels))?;
        mpq_pipeline::output::write_atomic(&labels, &mpq_data::idx::encode_labels(&half.labels))?;
        println!("{} digits: {} and {}", half.len(), images.display(), labels.display());
    }
    Ok(ExitCode::SUCCESS)
}
