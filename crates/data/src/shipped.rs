//! The 10,000 real MNIST digits shipped in `datasets/mnist-10k/`, embedded in the binary
//! so the main experiment needs no network and no files beside the executable.

use crate::{DataError, Images, idx, verify_sha256};

const IMAGES: &[u8] = include_bytes!("../../../datasets/mnist-10k/images-idx3-ubyte.gz");
const LABELS: &[u8] = include_bytes!("../../../datasets/mnist-10k/labels-idx1-ubyte.gz");
/// SHA-256 of the shipped image file, as listed in `datasets/mnist-10k/README.md`.
pub const IMAGES_SHA256: &str = "6147811c070e77823b67d8be7963f6ab00af77f5660c687bbdc8a3a1bc7b7459";
/// SHA-256 of the shipped label file.
pub const LABELS_SHA256: &str = "4098cd2f8985372bfe9d2755e944398058f46893cb54c15631c6343ae14199a9";
/// Display names used in errors.
const IMAGES_NAME: &str = "datasets/mnist-10k/images-idx3-ubyte.gz";
const LABELS_NAME: &str = "datasets/mnist-10k/labels-idx1-ubyte.gz";

/// Loads the shipped digits after verifying both checksums.
pub fn load() -> Result<Images, DataError> {
    load_from(IMAGES, LABELS)
}

/// Loads shipped-format bytes, verifying them against the shipped checksums (tests feed
/// corrupted copies through here).
pub fn load_from(images: &[u8], labels: &[u8]) -> Result<Images, DataError> {
    verify_sha256(IMAGES_NAME, images, IMAGES_SHA256)?;
    verify_sha256(LABELS_NAME, labels, LABELS_SHA256)?;
    let px = idx::parse_images(IMAGES_NAME, images)?;
    let lb = idx::parse_labels(LABELS_NAME, labels)?;
    idx::pair(IMAGES_NAME, px, LABELS_NAME, lb)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_digits_load_with_expected_class_counts() {
        let d = load().unwrap();
        assert_eq!(d.len(), 10_000);
        let mut counts = [0usize; 10];
        d.labels.iter().for_each(|&l| counts[l as usize] += 1);
        assert_eq!(counts, [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]);
        let mean = d.pixels.iter().map(|&p| p as f64).sum::<f64>() / d.pixels.len() as f64;
        assert!((mean - 33.3).abs() < 2.0, "MNIST mean pixel is about 33, got {mean}");
    }

    #[test]
    fn corrupted_shipped_file_fails_checksum() {
        let mut bad = IMAGES.to_vec();
        bad[1000] ^= 1;
        let e = load_from(&bad, LABELS).unwrap_err().to_string();
        assert!(e.contains(IMAGES_NAME) && e.contains("SHA-256 mismatch") && e.contains(IMAGES_SHA256), "{e}");
    }
}
