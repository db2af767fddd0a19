//! One run of an experiment, from data to result rows: the backend-to-device map, the data
//! and each run's split, the checkpoint cache (training only when no valid checkpoint
//! exists), calibration, the searches and baselines, timing, and the result files that make
//! sweeps resumable. The harness schedules runs; this crate does one.

pub mod backend;
pub mod checkpoints;
pub mod dataset;
pub mod output;
pub mod run;

use std::path::PathBuf;

/// Why a run (or one of its files) failed.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A file or folder could not be read or written.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done (`reading`, `creating`, ...).
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A JSON file or value could not be read or written.
    #[error("{}: bad JSON", path.display())]
    Json {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        #[source]
        source: serde_json::Error,
    },
    /// Loading or splitting the data failed.
    #[error(transparent)]
    Data(#[from] mpq_data::DataError),
    /// Building, training or checkpointing a model failed.
    #[error(transparent)]
    Model(#[from] mpq_models::ModelError),
    /// Quantizing, calibrating or searching failed.
    #[error(transparent)]
    Quant(#[from] mpq_quant::QuantError),
    /// Packing a plan or running the integer engine failed.
    #[error(transparent)]
    Lowbit(#[from] mpq_lowbit::LowbitError),
    /// Reading or writing a table failed.
    #[error(transparent)]
    Report(#[from] mpq_report::ReportError),
    /// Anything else, in words (e.g. a backend not built in, a budget no plan meets).
    #[error("{0}")]
    Other(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, PipelineError>;

impl PipelineError {
    /// An I/O failure on `path` while doing `action`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> PipelineError {
        let path = path.into();
        move |source| PipelineError::Io { action, path, source }
    }
}
