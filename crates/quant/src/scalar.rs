//! The plain scalar reference quantizer every tensor implementation is tested against.

use crate::Rounding;

/// Quantization parameters of one tensor: `x ≈ (q - zero_point) * scale`, `q` in `[qmin, qmax]`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QParams {
    /// Step size.
    pub scale: f32,
    /// Integer that represents 0.0.
    pub zero_point: i32,
    /// Smallest code.
    pub qmin: i32,
    /// Largest code.
    pub qmax: i32,
}

impl QParams {
    /// Symmetric signed parameters for weights: codes `[-(2^(b-1)-1), 2^(b-1)-1]`, scale from max |w|.
    pub fn symmetric(max_abs: f32, bits: u32) -> QParams {
        let qmax = (1i32 << (bits - 1)) - 1;
        let scale = if max_abs > 0.0 { max_abs / qmax as f32 } else { 1.0 };
        QParams { scale, zero_point: 0, qmin: -qmax, qmax }
    }

    /// Parameters for an input observed in `[lo, hi]`: unsigned codes `[0, 2^b-1]` with zero
    /// point 0 when `lo >= 0` (pixels, ReLU outputs), affine with a zero point otherwise.
    pub fn for_range(lo: f32, hi: f32, bits: u32) -> QParams {
        let qmax = ((1u64 << bits) - 1) as i32;
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        let span = hi - lo;
        let scale = if span > 0.0 { span / qmax as f32 } else { 1.0 };
        let zero_point = if lo >= 0.0 { 0 } else { (-lo / scale).round() as i32 };
        QParams { scale, zero_point, qmin: 0, qmax }
    }
}

/// Rounds `v` with `mode`; `u` in [0, 1) is the uniform draw stochastic rounding uses.
/// Nearest breaks ties to even (`round_ties_even`), like IEEE 754 and burn's `round`.
pub fn round(v: f32, mode: Rounding, u: f32) -> f32 {
    match mode {
        Rounding::Nearest => v.round_ties_even(),
        Rounding::Floor => v.floor(),
        Rounding::Ceil => v.ceil(),
        Rounding::Stochastic => (v + u).floor(),
    }
}

/// The integer code of `x`.
pub fn quantize(x: f32, p: QParams, mode: Rounding, u: f32) -> i32 {
    let q = round(x / p.scale, mode, u) as i64 + p.zero_point as i64;
    q.clamp(p.qmin as i64, p.qmax as i64) as i32
}

/// The value a code stands for.
pub fn dequantize(q: i32, p: QParams) -> f32 {
    (q - p.zero_point) as f32 * p.scale
}

/// Quantize then dequantize: what simulated quantization computes.
pub fn fake(x: f32, p: QParams, mode: Rounding, u: f32) -> f32 {
    dequantize(quantize(x, p, mode, u), p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MODES: [Rounding; 3] = [Rounding::Nearest, Rounding::Floor, Rounding::Ceil];

    proptest! {
        #[test]
        fn codes_in_range(x in -10f32..10.0, bits in 2u32..=8, m in 0usize..3, u in 0f32..1.0) {
            let p = QParams::symmetric(3.0, bits);
            let q = quantize(x, p, MODES[m], u);
            prop_assert!(q >= p.qmin && q <= p.qmax);
            let a = QParams::for_range(-1.0, 5.0, bits);
            let q = quantize(x, a, MODES[m], u);
            prop_assert!(q >= a.qmin && q <= a.qmax);
        }

        #[test]
        fn error_bounds_inside_range(x in -3f32..3.0, bits in 2u32..=8) {
            let p = QParams::symmetric(3.0, bits);
            let s = p.scale;
            let n = fake(x, p, Rounding::Nearest, 0.0);
            prop_assert!((x - n).abs() <= s / 2.0 + 1e-6);
            let f = fake(x, p, Rounding::Floor, 0.0);
            let c = fake(x, p, Rounding::Ceil, 0.0);
            // Inside the clamp range floor never rounds up and ceil never down.
            if x / s > p.qmin as f32 && x / s < p.qmax as f32 {
                prop_assert!(f <= x + 1e-6 && x - f < s + 1e-6);
                prop_assert!(c >= x - 1e-6 && c - x < s + 1e-6);
            }
        }

        /// Nearest is idempotent on codes. Floor and ceil are idempotent in exact arithmetic;
        /// in f32, `(q * s) / s` can land one ulp below or above `q`, so re-quantizing may move
        /// a value by at most one step, never more.
        #[test]
        fn idempotent(x in -5f32..5.0, bits in 2u32..=8, m in 0usize..3) {
            let p = QParams::for_range(-2.0, 4.0, bits);
            let once = fake(x, p, MODES[m], 0.3);
            let twice = fake(once, p, MODES[m], 0.3);
            if MODES[m] == Rounding::Nearest {
                prop_assert_eq!(quantize(once, p, Rounding::Nearest, 0.0), quantize(x, p, Rounding::Nearest, 0.0));
            }
            prop_assert!((once - twice).abs() <= p.scale * 1.0001);
        }
    }

    #[test]
    fn ties_go_to_even() {
        assert_eq!(round(0.5, Rounding::Nearest, 0.0), 0.0);
        assert_eq!(round(1.5, Rounding::Nearest, 0.0), 2.0);
        assert_eq!(round(2.5, Rounding::Nearest, 0.0), 2.0);
        assert_eq!(round(-1.5, Rounding::Nearest, 0.0), -2.0);
    }

    #[test]
    fn stochastic_is_unbiased() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let p = QParams::symmetric(1.0, 4);
        let x = 0.123f32;
        let n = 200_000;
        let mean = (0..n).map(|_| fake(x, p, Rounding::Stochastic, rng.random::<f32>()) as f64).sum::<f64>() / n as f64;
        assert!((mean - x as f64).abs() < 3e-4, "mean {mean}");
    }
}
