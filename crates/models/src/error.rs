//! Errors of the models crate.

use thiserror::Error;

/// What can go wrong building, training or (de)serializing a model.
#[derive(Debug, Error)]
pub enum ModelError {
    /// A file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The checkpoint is unreadable or does not fit the model.
    #[error("checkpoint {file}: {reason}")]
    Checkpoint {
        /// The file.
        file: String,
        /// Why it was rejected.
        reason: String,
    },
    /// Training diverged.
    #[error("training diverged: loss is {loss} at epoch {epoch}, batch {batch}")]
    Diverged {
        /// Epoch (1-based).
        epoch: usize,
        /// Batch within the epoch.
        batch: usize,
        /// The non-finite loss.
        loss: f32,
    },
    /// A model configuration is invalid.
    #[error("model config: {0}")]
    Config(String),
    /// One field of a model configuration is out of range (the field lets a config loader
    /// point at its line).
    #[error("model config: {field} must be {range}")]
    Field {
        /// The offending field, as written in experiment files.
        field: &'static str,
        /// What it must be.
        range: &'static str,
    },
}
