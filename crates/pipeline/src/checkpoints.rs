//! Trained models: the checkpoint cache, whose key covers everything that determines trained
//! weights, and shipped checkpoints, committed with an experiment so that its results do not
//! depend on the CPU that trains them (float kernels differ between CPUs; evaluation after
//! training does not). A folder holds `<key>.safetensors` and `<key>.train.json` per run; a
//! shipped folder also a `SHA256SUMS` file that every read checks.

use crate::dataset::Data;
use crate::{PipelineError, Result};
use burn::prelude::Device;
use mpq_data::Split;
use mpq_experiment::config::{Experiment, RunSpec};
use mpq_models::{Net, checkpoint, train};
use mpq_report::TrainRow;
use std::collections::HashMap;
use std::path::Path;

/// The checkpoint cache key: a hash of everything that determines trained weights (the
/// data's bytes, split, model, training config, seed, backend, burn release and training
/// code version).
pub fn cache_key(exp: &Experiment, spec: &RunSpec, data: &Data) -> String {
    let key = serde_json::json!({
        "data": data.digest, "test_from": data.test_from, "sizes": exp.sizes_for(&spec.model), "split_seed": spec.split_seed,
        "cross_fit": exp.data.cross_fit.then(|| (mpq_experiment::config::derive_seed(exp.seed, "folds"), spec.repeat)),
        "model": spec.model, "train": exp.train, "seed": spec.seed, "backend": spec.backend.name(),
        "burn": mpq_models::BURN_VERSION, "train_version": mpq_models::TRAIN_VERSION, "format": 2,
    });
    mpq_data::sha256_hex(key.to_string().as_bytes())[..16].to_string()
}

/// File names of a cached or shipped checkpoint and its training log.
pub fn checkpoint_files(dir: &Path, key: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    (dir.join(format!("{key}.safetensors")), dir.join(format!("{key}.train.json")))
}

/// Loads a checkpoint and its log from `dir` if both are there; a shipped folder's files
/// must match its `SHA256SUMS`.
fn load_from(
    dir: &Path,
    key: &str,
    spec: &RunSpec,
    dev: &Device,
    shipped: bool,
) -> Result<Option<(Net, Vec<TrainRow>)>> {
    let (ckpt, log) = checkpoint_files(dir, key);
    if !(ckpt.exists() && log.exists()) {
        return Ok(None);
    }
    if shipped {
        verify(dir, &[&ckpt, &log])?;
    }
    let net = checkpoint::load(spec.model.init(dev, 0), &ckpt, dev)?;
    let text = std::fs::read_to_string(&log).map_err(PipelineError::io("reading", &log))?;
    let rows: Vec<TrainRow> =
        serde_json::from_str(&text).map_err(|source| PipelineError::Json { path: log.clone(), source })?;
    Ok(Some((net, rows)))
}

/// The trained network of a run and its training log: loaded from the cache, else from the
/// experiment's shipped checkpoints, else trained (reporting `progress(done, total)`) and
/// cached.
pub fn trained(
    exp: &Experiment,
    spec: &RunSpec,
    data: &Data,
    split: &Split,
    dev: &Device,
    cache: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Net, Vec<TrainRow>)> {
    let key = cache_key(exp, spec, data);
    if let Some(found) = load_from(cache, &key, spec, dev, false)? {
        return Ok(found);
    }
    if let Some(dir) = &exp.checkpoints
        && let Some(found) = load_from(dir, &key, spec, dev, true)?
    {
        return Ok(found);
    }
    let (ckpt, log) = checkpoint_files(cache, &key);
    let (net, logs) = train::train(&spec.model, &exp.train, dev, &data.images, split, spec.seed, progress)?;
    let rows: Vec<TrainRow> = logs.into_iter().map(|l| TrainRow { run_id: spec.id.clone(), ..l }).collect();
    let meta = HashMap::from([("model".to_string(), spec.model.name()), ("run".to_string(), spec.id.clone())]);
    checkpoint::save(&net, &meta, &ckpt)?;
    let text = serde_json::to_string(&rows).map_err(|source| PipelineError::Json { path: log.clone(), source })?;
    crate::output::write_atomic(&log, text.as_bytes())?;
    Ok((net, rows))
}

const SUMS: &str = "SHA256SUMS";

fn sums(dir: &Path) -> Result<Vec<(String, String)>> {
    let file = dir.join(SUMS);
    let text = std::fs::read_to_string(&file).map_err(PipelineError::io("reading", &file))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let (sum, name) = l.split_once("  ").ok_or_else(|| {
                PipelineError::Other(format!("{}:{}: expected `<sha256>  <file>`", file.display(), i + 1))
            })?;
            Ok((name.trim().to_string(), sum.trim().to_string()))
        })
        .collect()
}

/// Checks `files` (inside `dir`) against the folder's `SHA256SUMS`.
pub fn verify(dir: &Path, files: &[&Path]) -> Result<()> {
    let sums = sums(dir)?;
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let want = sums.iter().find(|(n, _)| *n == name).map(|(_, s)| s.as_str()).ok_or_else(|| {
            PipelineError::Other(format!("{}: not listed in {}", f.display(), dir.join(SUMS).display()))
        })?;
        let bytes = std::fs::read(f).map_err(PipelineError::io("reading", f))?;
        mpq_data::verify_sha256(&f.display().to_string(), &bytes, want)?;
    }
    Ok(())
}

/// Copies the cached checkpoints of every run of `exp` into its `checkpoints` folder,
/// rewrites `SHA256SUMS` for them and removes checkpoints no run uses any more.
pub fn ship(exp: &Experiment, data: &Data, cache: &Path) -> Result<usize> {
    let Some(dir) = &exp.checkpoints else {
        return Err(PipelineError::Other("the experiment names no `checkpoints` folder to ship to".into()));
    };
    std::fs::create_dir_all(dir).map_err(PipelineError::io("creating", dir))?;
    let (mut lines, mut names) = (Vec::new(), std::collections::HashSet::new());
    for spec in exp.expand() {
        let key = cache_key(exp, &spec, data);
        let (from, to) = (checkpoint_files(cache, &key), checkpoint_files(dir, &key));
        for (src, dst) in [(&from.0, &to.0), (&from.1, &to.1)] {
            // A run loaded from the shipped folder itself has no cache copy: keep the shipped one.
            let src = if src.exists() { src } else { dst };
            let bytes = std::fs::read(src).map_err(PipelineError::io("reading (train it first)", src))?;
            crate::output::write_atomic(dst, &bytes)?;
            let name = dst.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            lines.push(format!("{}  {name}", mpq_data::sha256_hex(&bytes)));
            names.insert(name);
        }
    }
    lines.sort();
    crate::output::write_atomic(&dir.join(SUMS), (lines.join("\n") + "\n").as_bytes())?;
    remove_stale(dir, &names)?;
    Ok(lines.len() / 2)
}

/// Deletes the checkpoints in a shipped folder that no run of the experiment uses any more
/// (`keep`: the file names just shipped), so the folder holds exactly what the experiment loads.
fn remove_stale(dir: &Path, keep: &std::collections::HashSet<String>) -> Result<()> {
    for e in std::fs::read_dir(dir).map_err(PipelineError::io("reading", dir))? {
        let path = e.map_err(PipelineError::io("reading", dir))?.path();
        let name = path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let ours = name.ends_with(".safetensors") || name.ends_with(".train.json");
        if ours && !keep.contains(&name) {
            std::fs::remove_file(&path).map_err(PipelineError::io("removing", &path))?;
        }
    }
    Ok(())
}
