//! Shipped checkpoints: trained models committed with an experiment so that its results do
//! not depend on the CPU that trains them (float kernels differ between CPUs; evaluation
//! after training does not). A folder holds `<key>.safetensors` and `<key>.train.json` per
//! run, as the cache does, and a `SHA256SUMS` file that every read checks.

use crate::config::Experiment;
use crate::run::{self, Data};
use anyhow::{Context, Result, anyhow, bail};
use std::path::Path;

const SUMS: &str = "SHA256SUMS";

fn sums(dir: &Path) -> Result<Vec<(String, String)>> {
    let file = dir.join(SUMS);
    let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let (sum, name) = l
                .split_once("  ")
                .ok_or_else(|| anyhow!("{}:{}: expected `<sha256>  <file>`", file.display(), i + 1))?;
            Ok((name.trim().to_string(), sum.trim().to_string()))
        })
        .collect()
}

/// Checks `files` (inside `dir`) against the folder's `SHA256SUMS`.
pub fn verify(dir: &Path, files: &[&Path]) -> Result<()> {
    let sums = sums(dir)?;
    for f in files {
        let name = f.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
        let want = sums
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, s)| s.as_str())
            .ok_or_else(|| anyhow!("{}: not listed in {}", f.display(), dir.join(SUMS).display()))?;
        let bytes = std::fs::read(f).with_context(|| format!("reading {}", f.display()))?;
        mpq_data::verify_sha256(&f.display().to_string(), &bytes, want)?;
    }
    Ok(())
}

/// Copies the cached checkpoints of every run of `exp` into its `checkpoints` folder and
/// rewrites `SHA256SUMS` for the files there that belong to the experiment's runs.
pub fn ship(exp: &Experiment, data: &Data, cache: &Path) -> Result<usize> {
    let Some(dir) = &exp.checkpoints else { bail!("the experiment names no `checkpoints` folder to ship to") };
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut lines = Vec::new();
    for spec in exp.expand() {
        let key = run::cache_key(exp, &spec, data);
        let (from, to) = (run::checkpoint_files(cache, &key), run::checkpoint_files(dir, &key));
        for (src, dst) in [(&from.0, &to.0), (&from.1, &to.1)] {
            let bytes = std::fs::read(src).with_context(|| format!("{}: train it first", src.display()))?;
            crate::output::write_atomic(dst, &bytes)?;
            let name = dst.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
            lines.push(format!("{}  {name}", mpq_data::sha256_hex(&bytes)));
        }
    }
    lines.sort();
    crate::output::write_atomic(&dir.join(SUMS), (lines.join("\n") + "\n").as_bytes())?;
    Ok(lines.len() / 2)
}
