//! Data for mpq: the IDX reader, the shipped MNIST digits, fetching full datasets with
//! checksums, and seeded stratified splits.
//!
//! This crate knows nothing of burn, models, quantization or configs: it turns bytes into
//! labelled `u8` images and index lists.

pub mod error;
pub mod fetch;
pub mod idx;
pub mod shipped;
pub mod split;

pub use error::DataError;
pub use idx::Images;
pub use split::{Split, SplitSizes};

use sha2::{Digest, Sha256};

/// Hex SHA-256 of a byte slice; used to verify shipped and fetched files.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// Checks `bytes` against an expected hex SHA-256, naming `file` in the error.
pub fn verify_sha256(file: &str, bytes: &[u8], expected: &str) -> Result<(), DataError> {
    let got = sha256_hex(bytes);
    if got == expected {
        Ok(())
    } else {
        Err(DataError::Checksum { file: file.to_string(), expected: expected.to_string(), got })
    }
}
