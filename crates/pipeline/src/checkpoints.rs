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
    hash_key(&key_fields(exp, spec, data))
}

/// What [`cache_key`] hashes.
fn key_fields(exp: &Experiment, spec: &RunSpec, data: &Data) -> serde_json::Value {
    serde_json::json!({
        "data": data.digest, "test_from": data.test_from, "sizes": exp.sizes_for(&spec.model), "split_seed": spec.split_seed,
        "cross_fit": exp.data.cross_fit.then(|| (mpq_experiment::config::derive_seed(exp.seed, "folds"), spec.repeat)),
        "model": spec.model, "train": exp.train, "seed": spec.seed, "backend": spec.backend.name(),
        "burn": mpq_models::BURN_VERSION, "train_version": mpq_models::TRAIN_VERSION, "format": 2,
    })
}

/// The first 16 hex digits of the SHA-256 of the fields' JSON text.
fn hash_key(fields: &serde_json::Value) -> String {
    mpq_data::sha256_hex(fields.to_string().as_bytes())[..16].to_string()
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
    // An imported model's weights were read with the experiment: nothing to train or cache.
    if let mpq_models::ModelConfig::Onnx { imported, .. } = &spec.model {
        return Ok((spec.model.init(dev, 0).with_host(imported.net.clone(), dev)?, Vec::new()));
    }
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
    let rows: Vec<TrainRow> = logs
        .into_iter()
        .map(|l| TrainRow {
            run_id: spec.id.clone(),
            epoch: l.epoch,
            train_loss: l.train_loss,
            heldout_loss: l.heldout_loss,
            heldout_acc: l.heldout_acc,
            seconds: l.seconds,
        })
        .collect();
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
    // Imported models are not trained here: they have no checkpoints.
    for spec in exp.expand().into_iter().filter(|s| !s.model.is_imported()) {
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SMOKE: &str = include_str!("../../../experiments/smoke.toml");

    fn exp(text: &str) -> Experiment {
        Experiment::parse(Path::new("smoke.toml"), text).unwrap()
    }

    fn data(first_pixel: u8) -> Data {
        let mut images = mpq_data::Images { pixels: vec![0; 2 * 784], labels: vec![3, 4] };
        images.pixels[0] = first_pixel;
        let digest = images.digest();
        Data { images, test_from: None, name: "t".into(), digest }
    }

    fn key(text: &str, d: &Data) -> String {
        let e = exp(text);
        cache_key(&e, &e.expand()[0], d)
    }

    /// The key is stable for the same inputs and changes with the data's bytes, every
    /// training field, the seed, the model and the split sizes.
    #[test]
    fn the_cache_key_changes_with_everything_that_determines_weights() {
        let base = key(SMOKE, &data(0));
        assert_eq!(base, key(SMOKE, &data(0)));
        assert_eq!(base.len(), 16);
        assert_ne!(base, key(SMOKE, &data(1)), "data bytes");
        for (from, to) in [
            ("epochs = 1", "epochs = 2"),
            ("batch_size = 32", "batch_size = 16"),
            ("lr = 0.003", "lr = 0.004"),
            ("seed = 7", "seed = 8"),
            ("hidden = [16, 8]", "hidden = [16, 9]"),
            ("train = 600", "train = 500"),
        ] {
            assert!(SMOKE.contains(from), "{from}");
            assert_ne!(base, key(&SMOKE.replace(from, to), &data(0)), "{from} -> {to}");
        }
        // Fields that do not touch training leave the key alone.
        assert_eq!(base, key(&SMOKE.replace("random_n = 27", "random_n = 30"), &data(0)));
    }

    /// The key records the training code's version and burn's release, so a change to either
    /// trains anew instead of loading weights the old code made.
    #[test]
    fn the_cache_key_names_the_code_versions() {
        let e = exp(SMOKE);
        let fields = key_fields(&e, &e.expand()[0], &data(0));
        assert_eq!(fields["train_version"], mpq_models::TRAIN_VERSION);
        assert_eq!(fields["burn"], mpq_models::BURN_VERSION);
        let mut bumped = fields.clone();
        bumped["train_version"] = serde_json::json!(mpq_models::TRAIN_VERSION + 1);
        assert_ne!(hash_key(&fields), hash_key(&bumped));
        assert_eq!(hash_key(&fields), cache_key(&e, &e.expand()[0], &data(0)));
    }

    /// A shipped file whose bytes differ from its `SHA256SUMS` line is refused, naming the
    /// file; so is a file the sums do not list.
    #[test]
    fn verify_refuses_tampered_and_unlisted_files() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.safetensors"), dir.path().join("b.train.json"));
        std::fs::write(&a, b"weights").unwrap();
        std::fs::write(&b, b"log").unwrap();
        let sums = format!("{}  a.safetensors\n", mpq_data::sha256_hex(b"weights"));
        std::fs::write(dir.path().join(SUMS), sums).unwrap();
        verify(dir.path(), &[&a]).unwrap();
        std::fs::write(&a, b"weighs").unwrap();
        let e = verify(dir.path(), &[&a]).unwrap_err().to_string();
        assert!(e.contains("a.safetensors"), "{e}");
        let e = verify(dir.path(), &[&b]).unwrap_err().to_string();
        assert!(e.contains("b.train.json") && e.contains("not listed"), "{e}");
        std::fs::write(dir.path().join(SUMS), "no two spaces here\n").unwrap();
        let e = verify(dir.path(), &[&b]).unwrap_err().to_string();
        assert!(e.contains(":1:"), "{e}");
    }
}
