//! Sharing one experiment's runs among processes and machines: deterministic shards balanced
//! by expected cost (SLURM arrays, Kubernetes Indexed Jobs, `--shard I/N`), and claims on
//! runs so that processes on one results folder do each run once, taking over the runs of
//! processes that died.

pub mod claim;
pub mod shard;

use std::path::PathBuf;

/// Why sharding or claiming failed.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A claim file or folder could not be created or written.
    #[error("{action} {}", path.display())]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or folder.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The scheduler's environment names no usable shard.
    #[error("{0}")]
    Environment(String),
}

/// Results of this crate.
pub type Result<T> = std::result::Result<T, ClusterError>;

impl ClusterError {
    /// An I/O failure on `path` while doing `action`.
    pub fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> ClusterError {
        let path = path.into();
        move |source| ClusterError::Io { action, path, source }
    }
}
