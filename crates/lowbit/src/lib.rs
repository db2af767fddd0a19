//! Real low-bit inference for mpq: integer weight codes packed by bit width, a compact file
//! format, and an integer engine (i32 accumulation of integer products) for the MLP, CNN and
//! residual MLP that `mpq-models` trains.
//!
//! No burn inside: the engine is plain Rust over slices plus explicit SIMD kernels (`gemm`),
//! so its speed is its own.

pub mod engine;
pub mod format;
pub mod gemm;
pub mod pack;
mod scratch;

pub use format::{QLayer, QModel};
pub use mpq_net::{BitWidth, LayerKind, Pool, Rounding};

/// What can go wrong building, reading or running a packed model.
#[derive(Debug, thiserror::Error)]
pub enum LowbitError {
    /// A file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
    /// The bytes are not a valid packed model.
    #[error("{file}: not a valid mpq low-bit model: {reason}")]
    Format {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The model cannot run as asked.
    #[error("{0}")]
    Unsupported(String),
}
