//! Results on disk: one JSON file per completed run (what makes sweeps resumable), and the
//! CSV tables, figures and report regenerated from them.

use crate::run::RunOutput;
use anyhow::{Context, Result};
use mpq_report::csvio;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` through a uniquely named temporary file in the same folder and
/// a rename, so readers (and other processes writing the same file) never see a torn file.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut tmp = tempfile::Builder::new()
        .prefix(".")
        .suffix(".tmp")
        .tempfile_in(dir)
        .with_context(|| format!("creating a temporary file in {}", dir.display()))?;
    tmp.write_all(bytes).with_context(|| format!("writing {}", tmp.path().display()))?;
    tmp.persist(path).with_context(|| format!("renaming into {}", path.display()))?;
    Ok(())
}

/// Where a run's output lives.
pub fn run_file(out: &Path, id: &str) -> PathBuf {
    out.join("runs").join(format!("{id}.json"))
}

/// A completed run's output, if present and readable (a damaged file counts as absent).
pub fn load_run(out: &Path, id: &str) -> Option<RunOutput> {
    let text = std::fs::read_to_string(run_file(out, id)).ok()?;
    serde_json::from_str(&text).ok()
}

/// Stores a completed run.
pub fn save_run(out: &Path, id: &str, r: &RunOutput) -> Result<()> {
    write_atomic(&run_file(out, id), serde_json::to_string(r)?.as_bytes())
}

/// All tables of an experiment, merged from its runs in run-id order.
#[derive(Default)]
pub struct Tables {
    /// `runs.csv`.
    pub runs: Vec<mpq_report::RunRow>,
    /// `configs.csv`.
    pub configs: Vec<mpq_report::ConfigRow>,
    /// `train.csv`.
    pub train: Vec<mpq_report::TrainRow>,
    /// `sensitivity.csv`.
    pub sensitivity: Vec<mpq_report::SensitivityRow>,
    /// `timing.csv`.
    pub timing: Vec<mpq_report::TimingRow>,
}

impl Tables {
    /// Appends one run's rows.
    pub fn add(&mut self, r: RunOutput) {
        self.runs.extend(r.runs);
        self.configs.extend(r.configs);
        self.train.extend(r.train);
        self.sensitivity.extend(r.sensitivity);
        self.timing.extend(r.timing);
    }

    /// Writes the four CSV files into `out`.
    pub fn write(&self, out: &Path) -> Result<()> {
        csvio::write(&out.join("runs.csv"), &self.runs)?;
        csvio::write(&out.join("configs.csv"), &self.configs)?;
        csvio::write(&out.join("train.csv"), &self.train)?;
        csvio::write(&out.join("sensitivity.csv"), &self.sensitivity)?;
        csvio::write(&out.join("timing.csv"), &self.timing)?;
        Ok(())
    }

    /// Reads the four CSV files back from `out`.
    pub fn read(out: &Path) -> Result<Tables> {
        Ok(Tables {
            runs: csvio::read(&out.join("runs.csv"))?,
            configs: csvio::read(&out.join("configs.csv"))?,
            train: csvio::read(&out.join("train.csv"))?,
            sensitivity: csvio::read(&out.join("sensitivity.csv"))?,
            timing: csvio::read(&out.join("timing.csv")).unwrap_or_default(),
        })
    }
}
