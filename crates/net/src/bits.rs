//! Supported bit widths: the one place the "2..=8 or 16, 32 = full precision" rule lives.

use serde::{Deserialize, Serialize};

/// A bit width outside the supported set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("bit width {0} is not supported; use 2..=8, 16 or 32 (full precision)")]
pub struct BitsError(pub u32);

/// A supported bit width: 2..=8 or 16 for a quantized layer, 32 for full precision. Plans,
/// experiment files and packed models are all checked through it.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u32", into = "u32")]
pub struct BitWidth(u32);

impl BitWidth {
    /// Full precision.
    pub const FULL: BitWidth = BitWidth(32);

    /// A width written into the program, checked when it compiles: `BitWidth::of::<8>()`.
    pub const fn of<const B: u32>() -> BitWidth {
        const { assert!((2 <= B && B <= 8) || B == 16 || B == 32, "unsupported bit width") };
        BitWidth(B)
    }

    /// `bits` if supported.
    pub fn new(bits: u32) -> Result<BitWidth, BitsError> {
        if (2..=8).contains(&bits) || bits == 16 || bits == 32 { Ok(BitWidth(bits)) } else { Err(BitsError(bits)) }
    }

    /// `bits` if it is a supported width for a quantized layer (not full precision).
    pub fn quantized(bits: u32) -> Result<BitWidth, BitsError> {
        BitWidth::new(bits).and_then(|b| if b.is_full_precision() { Err(BitsError(bits)) } else { Ok(b) })
    }

    /// The number of bits.
    pub fn get(self) -> u32 {
        self.0
    }

    /// Whether this width leaves a layer in full precision.
    pub fn is_full_precision(self) -> bool {
        self.0 == 32
    }
}

impl TryFrom<u32> for BitWidth {
    type Error = BitsError;

    fn try_from(bits: u32) -> Result<BitWidth, BitsError> {
        BitWidth::new(bits)
    }
}

impl From<BitWidth> for u32 {
    fn from(b: BitWidth) -> u32 {
        b.0
    }
}

/// Comparisons with a plain number of bits (`bits <= 8`, `bits == 32`).
impl PartialEq<u32> for BitWidth {
    fn eq(&self, other: &u32) -> bool {
        self.0 == *other
    }
}

impl PartialOrd<u32> for BitWidth {
    fn partial_cmp(&self, other: &u32) -> Option<std::cmp::Ordering> {
        self.0.partial_cmp(other)
    }
}

impl std::fmt::Debug for BitWidth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl std::fmt::Display for BitWidth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_supported_widths() {
        let ok: Vec<u32> = (0..40).filter(|&b| BitWidth::new(b).is_ok()).collect();
        assert_eq!(ok, [2, 3, 4, 5, 6, 7, 8, 16, 32]);
        assert!(BitWidth::quantized(32).is_err() && BitWidth::quantized(16).is_ok());
        assert_eq!(BitWidth::new(9).unwrap_err().to_string(), BitsError(9).to_string());
        assert!(BitsError(9).to_string().contains("bit width 9"));
        let b = BitWidth::new(6).unwrap();
        assert_eq!(BitWidth::of::<6>(), b);
        assert!(b == 6 && b < 8 && b > 4 && b <= 6 && b != 32);
    }
}
