//! Reporting for mpq: the CSV row types and tables (the schema of `results/`), the
//! statistics and the aggregation into summaries and claim verdicts, the figures (data
//! shaping and drawing with plotters, SVG and PNG with an embedded font), and the markdown
//! report with its summary in words.
//!
//! Depends on no ML code: it reads and writes rows.

pub mod analysis;
pub mod backends;
pub mod claims;
pub mod csvio;
pub mod figures;
pub mod findings;
pub mod forest;
pub mod method;
pub mod plots;
pub mod rows;
pub mod stats;
pub mod tables;

/// Version of the statistics, tables and report layout. Recorded in `provenance.json` beside
/// every report; bump it with any change that alters `summary.csv`, `claims.csv` or
/// `REPORT.md` for the same runs, and regenerate `paper/`.
pub const REPORT_VERSION: u32 = 3;

/// A temporary name beside `path`, unique to this process and call and with the same
/// extension (plotters picks the image format from it): written there, then renamed over
/// `path`, so concurrent writers of one file never interleave and readers never see half.
pub(crate) fn temp_beside(path: &std::path::Path) -> std::path::PathBuf {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_default();
    path.with_file_name(format!(".{name}.{}-{n}.tmp.{ext}", std::process::id()))
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
