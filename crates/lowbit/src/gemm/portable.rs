//! The kernel for every CPU: plain Rust over `wide`'s portable vectors, and the input
//! quantizer's rounding without library calls.

use super::PackedB;
use wide::{i16x8, i32x4};

/// `R` (at most 4) widened rows of `a` against two weight rows, over the groups of 8 depths
/// starting at the offsets in `live` (the others are zero in every row): `2 R` inner
/// products that share every load (six loads per eight multiply-adds at 4 rows). `wide`'s
/// `i16x8::dot` is a widening multiply-add of adjacent pairs: `pmaddwd` with SSE2, `smull`
/// and `addp` with NEON, plain arithmetic elsewhere; the sums are exact on every target.
#[inline(always)]
fn block_x2<const R: usize>(x: [&[i16]; R], w0: &[i16], w1: &[i16], live: &[usize]) -> [[i32; 2]; R] {
    let n = w0.len().min(w1.len()).min(x.iter().map(|r| r.len()).min().unwrap_or(0)) / 8 * 8;
    let mut acc = [[i32x4::ZERO; 2]; R];
    for &k in live.iter().take_while(|&&k| k + 8 <= n) {
        let (b0, b1) = (i16x8::from_slice_unaligned(&w0[k..]), i16x8::from_slice_unaligned(&w1[k..]));
        for (acc, row) in acc.iter_mut().zip(&x) {
            let a = i16x8::from_slice_unaligned(&row[k..]);
            acc[0] += a.dot(b0);
            acc[1] += a.dot(b1);
        }
    }
    acc.map(|r| r.map(|v| v.to_array().iter().sum()))
}

/// Row-major i16 weights (`[np][k16]`, `np` even): blocks of up to 4 rows of `a` (widened
/// once) against pairs of weight rows, skipping the groups of 8 depths that are zero in
/// every row of the block (digits are mostly zero pixels, coded 0 by a range from 0).
pub(super) fn gemm_portable(a: &[u8], m: usize, b: &PackedB, c: &mut [i32]) {
    let k16 = b.kp.div_ceil(16) * 16;
    let (mut rows, mut live) = (vec![0i16; 4 * k16], Vec::with_capacity(k16 / 8));
    for i0 in (0..m).step_by(4) {
        let r = 4.min(m - i0);
        for (t, row) in rows.chunks_exact_mut(k16).enumerate().take(r) {
            for (d, &s) in row.iter_mut().zip(&a[(i0 + t) * b.kp..(i0 + t + 1) * b.kp]) {
                *d = s as i16;
            }
        }
        let block = &rows[..r * k16];
        live.clear();
        live.extend((0..k16).step_by(8).filter(|&k| block.chunks_exact(k16).any(|x| x[k..k + 8] != [0; 8])));
        let x = |t: usize| &rows[t * k16..(t + 1) * k16];
        for (j, pair) in b.wide.chunks_exact(2 * k16).enumerate() {
            let (w0, w1) = pair.split_at(k16);
            let mut put = |sums: &[[i32; 2]]| {
                for (t, s) in sums.iter().enumerate() {
                    c[(i0 + t) * b.np + 2 * j..][..2].copy_from_slice(s);
                }
            };
            match r {
                4 => put(&block_x2([x(0), x(1), x(2), x(3)], w0, w1, &live)),
                3 => put(&block_x2([x(0), x(1), x(2)], w0, w1, &live)),
                2 => put(&block_x2([x(0), x(1)], w0, w1, &live)),
                _ => put(&block_x2([x(0)], w0, w1, &live)),
            }
        }
    }
}

/// The code of an integral `v`: clamped to `0..=hi` (`hi` <= 255), NaN to 0 (`max` drops a
/// NaN). Read off the bits of `v + 2^23`, whose low mantissa byte is `v`: a float-to-int
/// cast (`as u8`) saturates and stayed scalar per value on baseline x86-64; this vectorizes.
#[inline(always)]
pub(super) fn code(v: f32, hi: f32) -> u8 {
    (v.max(0.0).min(hi) + 8_388_608.0).to_bits() as u8
}

/// Round half to even without a library call: baseline x86-64 has no rounding instruction
/// (SSE4.1 brings one), so `round_ties_even` became a call to `rintf` per value. Adding and
/// subtracting 2^23 to a magnitude below 2^23 rounds it in the default mode, ties to even;
/// magnitudes from 2^23 up are integers already, or not finite. Equals `round_ties_even`.
#[inline(always)]
pub(super) fn round_even(v: f32) -> f32 {
    const TWO_23: f32 = 8_388_608.0;
    let a = v.abs();
    if a < TWO_23 { ((a + TWO_23) - TWO_23).copysign(v) } else { v }
}

/// [`crate::grid::floor`] through [`round_even`]: the nearest integer on the grid, else the
/// integer below (a zero may carry the other sign, which no code sees).
#[inline(always)]
pub(super) fn grid_floor(v: f32) -> f32 {
    let r = round_even(v);
    if crate::grid::on_grid(v, r) || r <= v { r } else { r - 1.0 }
}

/// [`crate::grid::ceil`] through [`round_even`].
#[inline(always)]
pub(super) fn grid_ceil(v: f32) -> f32 {
    let r = round_even(v);
    if crate::grid::on_grid(v, r) || r >= v { r } else { r + 1.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The portable quantizer's rounding without library calls equals `round_ties_even` and
    /// the grid's floor and ceil: ties, grid points, the edges of the trick's range, large and
    /// non-finite values.
    #[test]
    fn call_free_rounding_equals_the_library_rounding() {
        let mut v: Vec<f32> = (-600..=600).map(|i| i as f32 * 0.5).collect();
        for bits in 2..=8u32 {
            let qmax = ((1u32 << bits) - 1) as f32;
            v.extend((0..=qmax as u32).map(|c| (c as f32 / qmax) / (1.0 / qmax)));
        }
        for e in [4_194_304.0f32, 8_388_608.0, 16_777_216.0, 1e10] {
            v.extend([e, -e, e - 0.5, e + 1.0, -(e - 0.5), e * 1.000_000_1, e * 0.999_999_9]);
        }
        let mut seed = 5u64;
        v.extend((0..20_000).map(|_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 700.0
        }));
        v.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e-30, -1e-30, 0.49999997, -0.49999997]);
        // Rounding to nearest is equal bit for bit; floor and ceil may differ in the sign of
        // a zero (ceil(-0.8) is -0 from the library, +0 here), which no code sees.
        let bits = |a: f32, b: f32| a.to_bits() == b.to_bits() || (a.is_nan() && b.is_nan());
        let value = |a: f32, b: f32| a == b || (a.is_nan() && b.is_nan());
        for x in v {
            assert!(bits(round_even(x), x.round_ties_even()), "round {x}: {}", round_even(x));
            assert!(value(grid_floor(x), crate::grid::floor(x)), "floor {x}: {}", grid_floor(x));
            assert!(value(grid_ceil(x), crate::grid::ceil(x)), "ceil {x}: {}", grid_ceil(x));
        }
    }
}
