//! Floor and ceil that mean what they say at grid points. `x / scale` is computed in f32, so
//! a value that lies exactly on the grid (a pixel `p / 255` at 8 bits, the largest weight
//! `max |w| = qmax * scale`) can come out one ulp below or above its integer, and a plain
//! floor or ceil would then move it a whole step. Here a quotient within [`GRID_TOL`]
//! (relative, at least 1 absolute) of an integer is that integer; otherwise floor or ceil
//! apply. Every quantizer in mpq (scalar, burn tensors, the engine's SIMD kernels) computes
//! exactly these operations, so they agree bit for bit.

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
}
