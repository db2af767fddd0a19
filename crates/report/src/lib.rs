//! Reporting for mpq: the CSV row types (the schema of `results/`), aggregation into
//! claims, figures (plotters, SVG and PNG with an embedded font) and the markdown report.
//!
//! Depends on no ML code: it reads and writes rows.

pub mod claims;
pub mod csvio;
pub mod plots;
pub mod rows;

pub use rows::{ClaimRow, ConfigRow, RunRow, SensitivityRow, SummaryRow, TimingRow, TrainRow};

/// Errors of the report crate.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// A file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The cause.
        source: std::io::Error,
    },
    /// A CSV file could not be parsed or written.
    #[error("{file}: {reason}")]
    Csv {
        /// The file.
        file: String,
        /// The cause.
        reason: String,
    },
    /// A figure could not be drawn.
    #[error("figure {file}: {reason}")]
    Plot {
        /// The file.
        file: String,
        /// The cause.
        reason: String,
    },
}
