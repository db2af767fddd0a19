//! The IDX format of MNIST, Fashion-MNIST and KMNIST, raw or gzip-compressed.

use crate::DataError;
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

const IMAGES_MAGIC: u32 = 0x0000_0803;
const LABELS_MAGIC: u32 = 0x0000_0801;
/// Side of the square images every model takes.
pub const SIDE: usize = 28;
/// Pixels per image.
pub const PIXELS: usize = SIDE * SIDE;

/// Labelled 28x28 grayscale images, pixels as bytes; the unit every split indexes into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Images {
    /// `n * 784` pixel bytes, row-major per image.
    pub pixels: Vec<u8>,
    /// `n` labels in 0..=9.
    pub labels: Vec<u8>,
}

impl Images {
    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// True when there are no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Pixels of the given examples scaled to [0, 1], flattened, ready for a tensor.
    pub fn gather_f32(&self, idx: &[usize]) -> Vec<f32> {
        let mut out = Vec::with_capacity(idx.len() * PIXELS);
        for &i in idx {
            out.extend(self.pixels[i * PIXELS..(i + 1) * PIXELS].iter().map(|&p| p as f32 / 255.0));
        }
        out
    }

    /// Labels of the given examples as `i64`, the integer type burn's losses take.
    pub fn gather_labels(&self, idx: &[usize]) -> Vec<i64> {
        idx.iter().map(|&i| self.labels[i] as i64).collect()
    }

    /// SHA-256 of the labels and pixels: what a cache of models trained on this data is
    /// keyed by, so other data with the same count never reuses them.
    pub fn digest(&self) -> String {
        let mut bytes = Vec::with_capacity(16 + self.labels.len() + self.pixels.len());
        bytes.extend((self.labels.len() as u64).to_le_bytes());
        bytes.extend(&self.labels);
        bytes.extend(&self.pixels);
        crate::sha256_hex(&bytes)
    }

    /// The examples at even and at odd positions: two disjoint halves. Data stored by class
    /// (as the shipped digits are) gives halves stratified to within one example per class,
    /// so a design can be replicated on digits its first models never saw.
    pub fn halves(&self) -> [Images; 2] {
        let half = |parity: usize| {
            let idx: Vec<usize> = (0..self.len()).filter(|i| i % 2 == parity).collect();
            let pixels = idx.iter().flat_map(|&i| self.pixels[i * PIXELS..(i + 1) * PIXELS].iter().copied()).collect();
            Images { pixels, labels: idx.iter().map(|&i| self.labels[i]).collect() }
        };
        [half(0), half(1)]
    }

    /// How many examples of `other` have pixels identical to some example here: a check
    /// that two pools meant to be disjoint are.
    pub fn shared_images(&self, other: &Images) -> usize {
        let mine: std::collections::HashSet<&[u8]> = self.pixels.chunks_exact(PIXELS).collect();
        other.pixels.chunks_exact(PIXELS).filter(|p| mine.contains(p)).count()
    }

    /// Concatenates two sets (train and test files of a full dataset).
    pub fn concat(mut self, other: Images) -> Images {
        self.pixels.extend(other.pixels);
        self.labels.extend(other.labels);
        self
    }
}

/// Decompresses `bytes` if they start with the gzip magic, else returns them unchanged.
pub fn maybe_gunzip(file: &str, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    if bytes.len() >= 2 && bytes[0] == 0x1f && bytes[1] == 0x8b {
        let mut out = Vec::new();
        GzDecoder::new(bytes)
            .read_to_end(&mut out)
            .map_err(|e| DataError::Gzip { file: file.to_string(), reason: e.to_string() })?;
        Ok(out)
    } else {
        Ok(bytes.to_vec())
    }
}

fn be_u32(file: &str, raw: &[u8], at: usize) -> Result<u32, DataError> {
    raw.get(at..at + 4).map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]])).ok_or_else(|| DataError::Truncated {
        file: file.to_string(),
        expected: at + 4,
        got: raw.len(),
    })
}

fn body<'a>(file: &str, raw: &'a [u8], header: usize, n: usize) -> Result<&'a [u8], DataError> {
    let expected = header + n;
    if raw.len() < expected {
        return Err(DataError::Truncated { file: file.to_string(), expected, got: raw.len() });
    }
    Ok(&raw[header..expected])
}

/// Parses an IDX3 image file (`file` only names it in errors); requires 28x28 images.
pub fn parse_images(file: &str, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    let raw = maybe_gunzip(file, bytes)?;
    let magic = be_u32(file, &raw, 0)?;
    if magic != IMAGES_MAGIC {
        let what = "IDX3 unsigned-byte images";
        return Err(DataError::Magic { file: file.into(), got: magic, expected: IMAGES_MAGIC, what });
    }
    let n = be_u32(file, &raw, 4)? as usize;
    let rows = be_u32(file, &raw, 8)? as usize;
    let cols = be_u32(file, &raw, 12)? as usize;
    if rows != SIDE || cols != SIDE {
        return Err(DataError::Dims { file: file.to_string(), rows, cols });
    }
    Ok(body(file, &raw, 16, n.saturating_mul(PIXELS))?.to_vec())
}

/// Parses an IDX1 label file; every label must be a digit class 0..=9.
pub fn parse_labels(file: &str, bytes: &[u8]) -> Result<Vec<u8>, DataError> {
    let raw = maybe_gunzip(file, bytes)?;
    let magic = be_u32(file, &raw, 0)?;
    if magic != LABELS_MAGIC {
        let what = "IDX1 unsigned-byte labels";
        return Err(DataError::Magic { file: file.into(), got: magic, expected: LABELS_MAGIC, what });
    }
    let n = be_u32(file, &raw, 4)? as usize;
    let labels = body(file, &raw, 8, n)?.to_vec();
    if let Some((index, &label)) = labels.iter().enumerate().find(|(_, l)| **l > 9) {
        return Err(DataError::Label { file: file.to_string(), label, index });
    }
    Ok(labels)
}

/// Pairs parsed images and labels, checking that their counts agree.
pub fn pair(images_file: &str, pixels: Vec<u8>, labels_file: &str, labels: Vec<u8>) -> Result<Images, DataError> {
    let n_images = pixels.len() / PIXELS;
    if n_images != labels.len() {
        return Err(DataError::CountMismatch {
            images: images_file.to_string(),
            n_images,
            labels: labels_file.to_string(),
            n_labels: labels.len(),
        });
    }
    Ok(Images { pixels, labels })
}

/// The most examples an IDX file may declare (full MNIST has 70,000): a bound on what a
/// corrupt or hostile header can make the reader allocate.
pub const MAX_EXAMPLES: usize = 1_000_000;

/// Reads an IDX file's header (`header` bytes) and then at most the `item`-byte examples it
/// declares, decompressing gzip on the fly; refuses paths that are not regular files. Never
/// reads a stream to its end, so `/dev/zero` or a gzip bomb cannot hang or exhaust memory.
fn read_bounded(path: &Path, header: usize, item: usize) -> Result<Vec<u8>, DataError> {
    use std::io::{BufRead, BufReader};
    let file = path.display().to_string();
    let io = |cause| DataError::Io { file: file.clone(), cause };
    if !std::fs::metadata(path).map_err(io)?.is_file() {
        return Err(DataError::NotAFile { file });
    }
    let mut reader = BufReader::new(std::fs::File::open(path).map_err(io)?);
    let gz = reader.fill_buf().map_err(io)?.starts_with(&[0x1f, 0x8b]);
    let mut r: Box<dyn Read> = if gz { Box::new(GzDecoder::new(reader)) } else { Box::new(reader) };
    let fail = |cause: std::io::Error| match gz {
        true => DataError::Gzip { file: file.clone(), reason: cause.to_string() },
        false => DataError::Io { file: file.clone(), cause },
    };
    let mut bytes = Vec::with_capacity(header);
    (&mut r).take(header as u64).read_to_end(&mut bytes).map_err(fail)?;
    if bytes.len() < header {
        return Ok(bytes); // the parser names the truncation
    }
    let n = be_u32(&file, &bytes, 4)? as usize;
    if n > MAX_EXAMPLES {
        return Err(DataError::TooLarge { file, n, limit: MAX_EXAMPLES });
    }
    (&mut r).take((n * item) as u64).read_to_end(&mut bytes).map_err(fail)?;
    Ok(bytes)
}

/// Reads an image file and a label file from disk (raw or gzip), bounded by their headers.
pub fn read_pair(images: &Path, labels: &Path) -> Result<Images, DataError> {
    let (fi, fl) = (images.display().to_string(), labels.display().to_string());
    let pixels = parse_images(&fi, &read_bounded(images, 16, PIXELS)?)?;
    let labels_v = parse_labels(&fl, &read_bounded(labels, 8, 1)?)?;
    pair(&fi, pixels, &fl, labels_v)
}

/// Encodes images as raw IDX3 bytes (used by tests and fixtures).
pub fn encode_images(pixels: &[u8]) -> Vec<u8> {
    let n = (pixels.len() / PIXELS) as u32;
    let mut out = Vec::with_capacity(16 + pixels.len());
    for v in [IMAGES_MAGIC, n, SIDE as u32, SIDE as u32] {
        out.extend(v.to_be_bytes());
    }
    out.extend(pixels);
    out
}

/// Encodes labels as raw IDX1 bytes (used by tests and fixtures).
pub fn encode_labels(labels: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + labels.len());
    out.extend(LABELS_MAGIC.to_be_bytes());
    out.extend((labels.len() as u32).to_be_bytes());
    out.extend(labels);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_are_disjoint_stratified_and_cover_the_set() {
        let n = 10;
        let labels: Vec<u8> = (0..n).map(|i| (i / 2) as u8).collect();
        let pixels: Vec<u8> = (0..n * PIXELS).map(|i| (i / PIXELS) as u8).collect();
        let all = Images { pixels, labels };
        let [even, odd] = all.halves();
        assert_eq!((even.len(), odd.len()), (5, 5));
        assert_eq!(even.labels, odd.labels, "two of each class, one in each half");
        assert_eq!(even.pixels[PIXELS], 2, "the second even example is example 2");
        assert_eq!(even.shared_images(&odd), 0);
        assert_eq!(all.shared_images(&odd), 5);
    }
}

#[cfg(test)]
mod parse_tests {
    use super::*;
    use flate2::{Compression, write::GzEncoder};
    use std::io::Write;

    fn gz(b: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::fast());
        e.write_all(b).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn round_trip_raw_and_gzip() {
        let px: Vec<u8> = (0..3 * PIXELS).map(|i| (i % 251) as u8).collect();
        let raw = encode_images(&px);
        assert_eq!(parse_images("a", &raw).unwrap(), px);
        assert_eq!(parse_images("a", &gz(&raw)).unwrap(), px);
        assert_eq!(parse_labels("l", &gz(&encode_labels(&[1, 2, 9]))).unwrap(), vec![1, 2, 9]);
    }

    #[test]
    fn wrong_magic_is_named() {
        let raw = encode_labels(&[1]);
        let e = parse_images("x.idx", &raw).unwrap_err().to_string();
        assert!(e.contains("x.idx") && e.contains("magic") && e.contains("0x00000803"), "{e}");
    }

    #[test]
    fn truncated_header_and_body() {
        let raw = encode_images(&vec![0u8; 2 * PIXELS]);
        let e = parse_images("t", &raw[..10]).unwrap_err().to_string();
        assert!(e.contains("truncated"), "{e}");
        let e = parse_images("t", &raw[..raw.len() - 1]).unwrap_err().to_string();
        assert!(e.contains("truncated") && e.contains(&format!("{}", 16 + 2 * PIXELS)), "{e}");
    }

    #[test]
    fn wrong_dimensions() {
        let mut raw = encode_images(&vec![0u8; PIXELS]);
        raw[11] = 27;
        let e = parse_images("d", &raw).unwrap_err().to_string();
        assert!(e.contains("27x28"), "{e}");
    }

    #[test]
    fn count_mismatch_and_bad_label() {
        let e = pair("i", vec![0; 2 * PIXELS], "l", vec![1]).unwrap_err().to_string();
        assert!(e.contains("2 images") && e.contains("1 labels"), "{e}");
        let e = parse_labels("l", &encode_labels(&[3, 12])).unwrap_err().to_string();
        assert!(e.contains("label 12 at index 1"), "{e}");
    }

    #[test]
    fn corrupt_gzip() {
        let mut z = gz(&encode_labels(&[1, 2, 3, 4, 5, 6, 7, 8]));
        let n = z.len();
        z.truncate(n - 6);
        let e = parse_labels("c.gz", &z).unwrap_err().to_string();
        assert!(e.contains("c.gz") && e.contains("gzip"), "{e}");
    }

    #[test]
    fn files_on_disk_are_read_only_as_far_as_their_headers_say() {
        let dir = tempfile::tempdir().unwrap();
        let px: Vec<u8> = (0..2 * PIXELS).map(|i| (i % 253) as u8).collect();
        let (im, lb) = (dir.path().join("im.gz"), dir.path().join("lb"));
        // Trailing bytes past what the header declares are not read.
        let mut raw_labels = encode_labels(&[3, 4]);
        raw_labels.extend([0xff; 100]);
        std::fs::write(&im, gz(&encode_images(&px))).unwrap();
        std::fs::write(&lb, &raw_labels).unwrap();
        let both = read_pair(&im, &lb).unwrap();
        assert_eq!((both.pixels, both.labels), (px, vec![3, 4]));
        // Not regular files: a folder and a device that never ends.
        for bad in [dir.path(), Path::new("/dev/zero")] {
            let e = read_pair(bad, &lb).unwrap_err().to_string();
            assert!(e.contains(&bad.display().to_string()) && e.contains("not a regular file"), "{e}");
        }
        // A header declaring an absurd count is refused before anything is allocated.
        let mut huge = encode_labels(&[1]);
        huge[4..8].copy_from_slice(&u32::MAX.to_be_bytes());
        std::fs::write(&lb, gz(&huge)).unwrap();
        let e = read_pair(&im, &lb).unwrap_err().to_string();
        assert!(e.contains("lb") && e.contains("limit"), "{e}");
        // A missing file names the OS error once.
        let e = read_pair(&dir.path().join("none"), &lb).unwrap_err().to_string();
        assert_eq!(e.matches("os error").count(), 1, "{e}");
    }
}
