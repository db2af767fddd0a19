//! Reporting for mpq: the CSV row types and tables (the schema of `results/`), the
//! statistics and the aggregation into summaries and claim verdicts, the figures (data
//! shaping and drawing with plotters, SVG and PNG with an embedded font), and the markdown
//! report with its summary in words.
//!
//! Depends on no ML code: it reads and writes rows.

pub mod adaround;
pub mod analysis;
pub mod backends;
pub mod claims;
pub mod conclusion;
pub mod cost;
pub mod csvio;
pub mod depth;
mod depth_model;
mod depth_search;
pub mod figures;
pub mod findings;
pub mod forest;
pub mod fragile;
pub mod method;
pub mod plots;
pub mod replication;
pub mod rows;
pub mod stats;
pub mod tables;
pub mod verdict;

/// Version of the statistics, tables and report layout. Recorded in `provenance.json` beside
/// every report; bump it with any change that alters `summary.csv`, `claims.csv` or
/// `REPORT.md` for the same runs, and regenerate `paper/`.
pub const REPORT_VERSION: u32 = 6;

/// Writes `path` whole or not at all: `write` fills a temporary file beside it (same
/// extension, which plotters reads the image format from), which is then renamed over
/// `path`; concurrent writers never interleave and readers never see half a file.
pub(crate) fn write_whole(
    path: &std::path::Path,
    write: impl FnOnce(&std::path::Path) -> Result<(), ReportError>,
) -> Result<(), ReportError> {
    mpq_atomic::write_with(path, |_, tmp| write(tmp).map_err(Whole::Report)).map_err(|e| match e {
        Whole::Io(source) => ReportError::Io { file: path.display().to_string(), source },
        Whole::Report(e) => e,
    })
}

/// An error while writing a file whole: of the temporary file or rename, or of the writer.
enum Whole {
    Io(std::io::Error),
    Report(ReportError),
}

impl From<std::io::Error> for Whole {
    fn from(e: std::io::Error) -> Whole {
        Whole::Io(e)
    }
}

pub use method::Method;
pub use rows::{ClaimRow, ConfigRow, RunRow, SensitivityRow, SummaryRow, TimingRow, TrainRow};
pub use tables::Tables;

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
