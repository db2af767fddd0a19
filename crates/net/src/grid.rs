//! The quantization grid, written once: parameters of a tensor's grid ([`QParams`]), floor and
//! ceil that mean what they say at grid points, and the scalar quantizer every other one
//! (burn tensors, host slices, the engine's SIMD kernels) is tested against.
//!
//! Floor and ceil at grid points. `x / scale` is computed in f32, so
//! a value that lies exactly on the grid (a pixel `p / 255` at 8 bits, the largest weight
//! `max |w| = qmax * scale`) can come out one ulp below or above its integer, and a plain
//! floor or ceil would then move it a whole step. Here a quotient within [`GRID_TOL`]
//! (relative, at least 1 absolute) of an integer is that integer; otherwise floor or ceil
//! apply. Every quantizer in mpq computes exactly these operations, so they agree bit for bit.

use crate::Rounding;

/// Relative distance to an integer under which a quotient counts as on the grid: four f32
/// ulps, more than the error of `(q * scale) / scale` with a rounded `scale`.
pub const GRID_TOL: f32 = 4.0 * f32::EPSILON;

/// Whether `v` is within [`GRID_TOL`] of its nearest integer `r`.
#[inline(always)]
pub fn on_grid(v: f32, r: f32) -> bool {
    (v - r).abs() <= GRID_TOL * r.abs().max(1.0)
}

/// Floor of `v`, or its nearest integer when `v` is on the grid.
#[inline(always)]
pub fn floor(v: f32) -> f32 {
    let r = v.round_ties_even();
    if on_grid(v, r) { r } else { v.floor() }
}

/// Ceil of `v`, or its nearest integer when `v` is on the grid.
#[inline(always)]
pub fn ceil(v: f32) -> f32 {
    let r = v.round_ties_even();
    if on_grid(v, r) { r } else { v.ceil() }
}

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
/// Nearest breaks ties to even (`round_ties_even`), like IEEE 754 and burn's `round`; floor
/// and ceil keep a quotient that is on the grid where it is (above).
pub fn round(v: f32, mode: Rounding, u: f32) -> f32 {
    match mode {
        Rounding::Nearest => v.round_ties_even(),
        Rounding::Floor => floor(v),
        Rounding::Ceil => ceil(v),
        Rounding::Stochastic => (v + u).floor(),
    }
}

/// The integer code of `x`.
pub fn quantize(x: f32, p: QParams, mode: Rounding, u: f32) -> i32 {
    let q = (round(x / p.scale, mode, u) as i64).saturating_add(p.zero_point as i64);
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

/// Quantize then dequantize without stochastic rounding, in f32 only so that it vectorizes:
/// the rounded quotient plus the zero point is exact below 2^24 and clamps to the same end of
/// the code range above it, and NaN becomes code `zero_point` as the integer cast makes it.
/// Gives [`fake`]'s bits (tested on grid points, ties, clamps, infinities and NaN).
#[inline(always)]
pub fn fake_with(v: f32, p: QParams, round: impl Fn(f32) -> f32) -> f32 {
    let r = round(v / p.scale);
    let r = if r.is_nan() { 0.0 } else { r };
    let z = p.zero_point as f32;
    ((r + z).clamp(p.qmin as f32, p.qmax as f32) - z) * p.scale
}

/// Largest absolute value: what sets a symmetric weight scale.
pub fn max_abs(w: &[f32]) -> f32 {
    w.iter().fold(0f32, |m, v| m.max(v.abs()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every pixel value `p / 255` (and every code `c / (2^b - 1)` of every width) divided by
    /// its scale floors and ceils back to its own code.
    #[test]
    fn grid_points_stay_put_at_every_width() {
        for bits in 2..=8u32 {
            let qmax = ((1u32 << bits) - 1) as f32;
            let scale = 1.0 / qmax;
            for c in 0..=qmax as u32 {
                let x = c as f32 / qmax;
                assert_eq!(floor(x / scale), c as f32, "floor {c}/{qmax}");
                assert_eq!(ceil(x / scale), c as f32, "ceil {c}/{qmax}");
            }
        }
        let mut plain_misses = 0;
        for p in 0..=255u32 {
            let x = p as f32 / 255.0;
            plain_misses += usize::from((x / (1.0 / 255.0)).floor() != p as f32);
            assert_eq!(floor(x / (1.0 / 255.0)), p as f32);
            assert_eq!(ceil(x / (1.0 / 255.0)), p as f32);
        }
        assert!(plain_misses > 0, "the plain floor really does miss some pixels");
    }

    #[test]
    fn off_grid_values_round_as_usual() {
        for v in [0.25f32, 1.5, -1.5, 2.9999, -0.0001, 100.01] {
            assert_eq!(floor(v), v.floor(), "{v}");
            assert_eq!(ceil(v), v.ceil(), "{v}");
        }
        assert!(floor(f32::NAN).is_nan());
    }
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    const MODES: [Rounding; 3] = [Rounding::Nearest, Rounding::Floor, Rounding::Ceil];

    /// Property checks over seeded random inputs: `check(rng)` runs once per case.
    fn cases(n: usize, seed: u64, mut check: impl FnMut(&mut ChaCha8Rng)) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..n).for_each(|_| check(&mut rng));
    }

    #[test]
    fn codes_in_range() {
        cases(5000, 1, |r| {
            let (x, bits, m, u) =
                (r.random_range(-10f32..10.0), r.random_range(2u32..=8), r.random_range(0..3), r.random::<f32>());
            let p = QParams::symmetric(3.0, bits);
            let q = quantize(x, p, MODES[m], u);
            assert!(q >= p.qmin && q <= p.qmax, "x {x} bits {bits}");
            let a = QParams::for_range(-1.0, 5.0, bits);
            let q = quantize(x, a, MODES[m], u);
            assert!(q >= a.qmin && q <= a.qmax, "x {x} bits {bits}");
        });
    }

    #[test]
    fn error_bounds_inside_range() {
        cases(5000, 2, |r| {
            let (x, bits) = (r.random_range(-3f32..3.0), r.random_range(2u32..=8));
            let p = QParams::symmetric(3.0, bits);
            let s = p.scale;
            let n = fake(x, p, Rounding::Nearest, 0.0);
            assert!((x - n).abs() <= s / 2.0 + 1e-6, "x {x}");
            let f = fake(x, p, Rounding::Floor, 0.0);
            let c = fake(x, p, Rounding::Ceil, 0.0);
            // Inside the clamp range floor never rounds up and ceil never down (beyond the
            // grid tolerance, within which a value counts as on its grid point).
            if x / s > p.qmin as f32 && x / s < p.qmax as f32 {
                assert!(f <= x + 1e-5 && x - f < s + 1e-6, "x {x} floor {f}");
                assert!(c >= x - 1e-5 && c - x < s + 1e-6, "x {x} ceil {c}");
            }
        });
    }

    /// Every rounding is idempotent on codes: a dequantized value lies on the grid, and floor
    /// and ceil keep grid points (the plain f32 floor of `(q * s) / s` could drop a step).
    #[test]
    fn idempotent() {
        cases(5000, 3, |r| {
            let (x, bits, m) = (r.random_range(-5f32..5.0), r.random_range(2u32..=8), r.random_range(0..3));
            let p = QParams::for_range(-2.0, 4.0, bits);
            let once = fake(x, p, MODES[m], 0.3);
            assert_eq!(quantize(once, p, MODES[m], 0.3), quantize(x, p, MODES[m], 0.3), "x {x} {:?}", MODES[m]);
        });
    }

    /// Grid points are fixed points of floor and ceil: every pixel `p / 255` at every input
    /// width (scale from the range [0, 1]), and the largest-magnitude weight at every weight
    /// width.
    #[test]
    fn floor_and_ceil_keep_grid_points() {
        for bits in 2..=8u32 {
            let p = QParams::for_range(0.0, 1.0, bits);
            for mode in [Rounding::Floor, Rounding::Ceil] {
                for c in 0..=p.qmax {
                    let x = c as f32 / p.qmax as f32;
                    assert_eq!(quantize(x, p, mode, 0.0), c, "{bits}-bit {mode:?} code {c}");
                }
                for px in 0..=255u32 {
                    let x = px as f32 / 255.0;
                    // In exact arithmetic `px * qmax / 255`: on the grid or at least 1/255 off it.
                    let v = px as f64 * p.qmax as f64 / 255.0;
                    let want = match mode {
                        _ if (v - v.round()).abs() < 1e-6 => v.round(),
                        Rounding::Floor => v.floor(),
                        _ => v.ceil(),
                    };
                    assert_eq!(quantize(x, p, mode, 0.0), want as i32, "{bits}-bit {mode:?} pixel {px}");
                }
            }
        }
        for max in [0.7f32, 1.0 / 3.0, 0.123_456_7, 2.5e-3, 7.3] {
            for bits in 2..=8u32 {
                let p = QParams::symmetric(max, bits);
                for mode in [Rounding::Floor, Rounding::Ceil] {
                    assert_eq!(quantize(max, p, mode, 0.0), p.qmax, "max {max} {bits}-bit {mode:?}");
                    assert_eq!(quantize(-max, p, mode, 0.0), p.qmin, "-max {max} {bits}-bit {mode:?}");
                }
            }
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
