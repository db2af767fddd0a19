//! Results on disk: one JSON file per completed run (what makes sweeps resumable), merged
//! into the result tables; and the one way files are written (whole, or not at all).

use crate::{PipelineError, Result};
use mpq_report::{ConfigRow, RunRow, SensitivityRow, Tables, TimingRow, TrainRow};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// Everything one run produces; stored as JSON so a rerun can skip it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunOutput {
    /// Plans and baselines.
    pub runs: Vec<RunRow>,
    /// Every exhaustive config.
    pub configs: Vec<ConfigRow>,
    /// Per-epoch training log.
    pub train: Vec<TrainRow>,
    /// Input-vs-weight sensitivity.
    pub sensitivity: Vec<SensitivityRow>,
    /// Inference throughput (timing columns only).
    #[serde(default)]
    pub timing: Vec<TimingRow>,
    /// Seconds spent in each phase of the run (timing only).
    #[serde(default)]
    pub phases: Vec<(String, f64)>,
}

/// Writes `bytes` to `path` whole ([`mpq_atomic::write`]), creating its folder first.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(PipelineError::io("creating", dir))?;
    mpq_atomic::write(path, bytes).map_err(PipelineError::io("writing", path))
}

/// What machine and code a results folder came from (`manifest.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Experiment name.
    pub experiment: String,
    /// `git rev-parse HEAD` of the working copy, or "unknown".
    pub git_commit: String,
    /// The burn release the binary was built with.
    pub burn_version: String,
    /// The CPU's SIMD features that matter to the kernels.
    pub cpu_features: Vec<String>,
    /// The host evaluation path taken (`avx2` or `portable`).
    pub host_simd: String,
    /// Backend names, in the experiment's order.
    pub backends: Vec<String>,
    /// The adapter each backend ran on, in the same order.
    pub adapters: Vec<String>,
    /// CPU model.
    pub cpu: String,
    /// Cores available to the process.
    pub cores: usize,
    /// Seconds since the Unix epoch when the sweep started.
    pub unix_time: u64,
    /// Operating system.
    pub os: String,
    /// CPU architecture.
    pub arch: String,
}

impl Manifest {
    /// The manifest of results folder `out`, if present and readable.
    pub fn read(out: &Path) -> Option<Manifest> {
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).ok()?).ok()
    }
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
    let file = run_file(out, id);
    let text = serde_json::to_string(r).map_err(|source| PipelineError::Json { path: file.clone(), source })?;
    write_atomic(&file, text.as_bytes())
}

/// The tables of the runs in `ids` whose results exist, in that order.
pub fn tables<'a>(out: &Path, ids: impl IntoIterator<Item = &'a str>) -> Tables {
    let mut t = Tables::default();
    for r in ids.into_iter().filter_map(|id| load_run(out, id)) {
        t.runs.extend(r.runs);
        t.configs.extend(r.configs);
        t.train.extend(r.train);
        t.sensitivity.extend(r.sensitivity);
        t.timing.extend(r.timing);
    }
    t
}
