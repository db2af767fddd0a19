//! Experiment files: the typed configuration (unknown keys rejected), the cross-field checks
//! whose errors name the file, line and key (from the TOML parser's spans), and the expansion
//! of an experiment into its runs. Shared by the harness and anything that reads a sweep.

pub mod config;
pub mod granularity;
pub mod import;
pub mod locate;
pub mod validate;

pub use config::{Backend, Experiment, RunSpec};

use std::path::PathBuf;

/// Why an experiment file could not be used: it could not be read, or its content is wrong
/// (the location names the file, line and, where known, the key).
#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    /// The file could not be read.
    #[error("{}: cannot read", file.display())]
    Read {
        /// The experiment file.
        file: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The file parses badly or fails a check.
    #[error("{location}: {message}")]
    Invalid {
        /// `file:line` or `file:line:col`, with the key in backticks where known.
        location: String,
        /// What is wrong and what would be accepted.
        message: String,
    },
}
