//! Errors of the data crate, each naming the file and what was expected.

use thiserror::Error;

/// Everything that can go wrong reading, verifying, splitting or fetching data.
#[derive(Debug, Error)]
pub enum DataError {
    /// A file could not be read or written. The OS error is part of the message, not a
    /// separate cause, so error chains print it once.
    #[error("{file}: {cause}")]
    Io {
        /// The file involved.
        file: String,
        /// The underlying error.
        cause: std::io::Error,
    },
    /// A data path names something that is not a regular file (a folder, a device, a pipe).
    #[error("{file}: not a regular file; name an IDX file (raw or gzip)")]
    NotAFile {
        /// The path involved.
        file: String,
    },
    /// The header declares more examples than any dataset this harness reads.
    #[error("{file}: header declares {n} examples, more than the limit of {limit}")]
    TooLarge {
        /// The file involved.
        file: String,
        /// Examples declared.
        n: usize,
        /// The limit.
        limit: usize,
    },
    /// The gzip stream is corrupt.
    #[error("{file}: corrupt gzip stream: {reason}")]
    Gzip {
        /// The file involved.
        file: String,
        /// What the decoder said.
        reason: String,
    },
    /// The IDX magic number is not the expected one.
    #[error("{file}: wrong IDX magic number 0x{got:08x}, expected 0x{expected:08x} ({what})")]
    Magic {
        /// The file involved.
        file: String,
        /// The magic found.
        got: u32,
        /// The magic expected.
        expected: u32,
        /// What kind of file was expected.
        what: &'static str,
    },
    /// The file is shorter than its header says.
    #[error("{file}: truncated: header promises {expected} bytes, file has {got}")]
    Truncated {
        /// The file involved.
        file: String,
        /// Bytes expected.
        expected: usize,
        /// Bytes present.
        got: usize,
    },
    /// The image dimensions are not what the models take.
    #[error("{file}: images are {rows}x{cols}, expected 28x28")]
    Dims {
        /// The file involved.
        file: String,
        /// Rows found.
        rows: usize,
        /// Columns found.
        cols: usize,
    },
    /// Images and labels disagree in count.
    #[error("{images}: {n_images} images but {labels} has {n_labels} labels")]
    CountMismatch {
        /// Image file.
        images: String,
        /// Image count.
        n_images: usize,
        /// Label file.
        labels: String,
        /// Label count.
        n_labels: usize,
    },
    /// A label is outside 0..=9.
    #[error("{file}: label {label} at index {index} is outside 0..=9")]
    Label {
        /// The file involved.
        file: String,
        /// The bad label.
        label: u8,
        /// Where it is.
        index: usize,
    },
    /// A checksum did not match.
    #[error("{file}: SHA-256 mismatch: expected {expected}, got {got}")]
    Checksum {
        /// The file involved.
        file: String,
        /// Expected hex digest.
        expected: String,
        /// Actual hex digest.
        got: String,
    },
    /// The requested split sizes do not fit the data.
    #[error(
        "split sizes train {train} + calibration {calib} + test {test} = {total} exceed the {available} examples available"
    )]
    SplitTooLarge {
        /// Train size.
        train: usize,
        /// Calibration size.
        calib: usize,
        /// Test size.
        test: usize,
        /// Their sum.
        total: usize,
        /// Examples available.
        available: usize,
    },
    /// A split size is zero.
    #[error("split size `{name}` must be at least 1")]
    EmptySplit {
        /// Which split.
        name: &'static str,
    },
    /// A download failed.
    #[error("download of {url} failed: {reason}")]
    Download {
        /// The address.
        url: String,
        /// Why.
        reason: String,
    },
    /// Every mirror failed for some file of a dataset.
    #[error(
        "could not fetch {dataset} into {dir}: {reasons}\nWithout network access, place these files there by hand (names and SHA-256):\n{files}"
    )]
    FetchFailed {
        /// Dataset name.
        dataset: String,
        /// Destination folder.
        dir: String,
        /// One line per file: name and expected digest.
        files: String,
        /// What each attempt said.
        reasons: String,
    },
    /// A dataset name is not known to `fetch`.
    #[error("unknown dataset `{0}`; known: mnist, fashion-mnist")]
    UnknownDataset(String),
}
