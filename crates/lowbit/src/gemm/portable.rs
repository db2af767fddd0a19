//! The kernel for every CPU: plain Rust over `wide`'s portable vectors, and the input
//! quantizer's rounding without library calls.

use super::{PANEL, PackedB, even_blocks};
use wide::{i16x8, i32x4};

/// Rows of `a` per block: each weight vector loaded serves `ROWS` rows, and a depth pair is
/// skipped where all of them are zero. Two rows keep the sums (eight vectors), the weights
/// and the broadcasts in SSE2's 16 registers, and skip more pairs on digits than larger
/// blocks do (37% of the first layer's pairs are live at two rows, 43% at four); three and
/// four rows measured 2-10% slower on the MLP. `gemm_portable` handles blocks of 1 and 2.
pub(super) const ROWS: usize = 2;

/// `R` rows against one panel of 16 columns (`Pairs` layout: per depth pair, 16 columns x
/// 2 depths), over the depth pairs in `live`. `x[t][p]` holds row `t`'s two i16 codes of
/// pair `p` side by side in memory, as one i32: splat to every lane, it multiplies four
/// columns' pairs at once through `wide`'s `i16x8::dot` (`pmaddwd` with SSE2, `smull` and
/// `addp` with NEON, plain arithmetic elsewhere). Sums are exact on every target.
#[inline(always)]
fn panel<const R: usize>(x: [&[i32]; R], w: &[i16], live: &[usize]) -> [[i32; PANEL]; R] {
    let mut acc = [[i32x4::ZERO; 4]; R];
    for &p in live {
        let Some(wp) = w.get(p * 2 * PANEL..(p + 1) * 2 * PANEL) else { break };
        let wv = [0, 8, 16, 24].map(|o| i16x8::from_slice_unaligned(&wp[o..]));
        for (acc, row) in acc.iter_mut().zip(&x) {
            let b: i16x8 = bytemuck::cast(i32x4::splat(row[p]));
            for (a, w) in acc.iter_mut().zip(&wv) {
                *a += b.dot(*w);
            }
        }
    }
    let mut out = [[0; PANEL]; R];
    for (o, a) in out.iter_mut().zip(&acc) {
        for (q, v) in a.iter().enumerate() {
            o[4 * q..4 * q + 4].copy_from_slice(&v.to_array());
        }
    }
    out
}

/// The `Pairs` layout that `avx2` reads, walked as outer products: blocks of up to
/// [`ROWS`] rows, each depth pair that is nonzero in some row of the block broadcast against
/// a panel's 16 columns, the pairs zero in every row skipped from a depth of
/// [`super::SPARSE_DEPTH`] on (digits are mostly zero pixels, coded 0 by a range from 0).
pub(super) fn gemm_portable(a: &[u8], m: usize, b: &PackedB, c: &mut [i32]) {
    let pairs = b.kp / 2;
    let (mut x, mut live) = (vec![0i32; ROWS * pairs], (0..pairs).collect::<Vec<usize>>());
    let sparse = b.kp >= super::SPARSE_DEPTH;
    for (i0, r) in even_blocks(m, ROWS) {
        for (t, row) in x.chunks_exact_mut(pairs).enumerate().take(r) {
            // Each i32 is a pair of i16 codes in memory order, as the splat reads them back.
            let wide: &mut [i16] = bytemuck::cast_slice_mut(row);
            for (d, &s) in wide.iter_mut().zip(&a[(i0 + t) * b.kp..(i0 + t + 1) * b.kp]) {
                *d = s as i16;
            }
        }
        let x = &x[..r * pairs];
        if sparse {
            live.clear();
            live.extend((0..pairs).filter(|&p| (0..r).fold(0, |any, t| any | x[t * pairs + p]) != 0));
        }
        let row = |t: usize| &x[t * pairs..(t + 1) * pairs];
        for (j, w) in b.wide.chunks_exact(b.kp * PANEL).enumerate() {
            let mut put = |sums: &[[i32; PANEL]]| {
                for (t, s) in sums.iter().enumerate() {
                    c[(i0 + t) * b.np + j * PANEL..][..PANEL].copy_from_slice(s);
                }
            };
            match r {
                2 => put(&panel([row(0), row(1)], w, &live)),
                _ => put(&panel([row(0)], w, &live)),
            }
        }
    }
}

/// [`super::max_pool_row`] on every CPU.
pub(super) fn max_pool_row(top: &[i32], bottom: &[i32], n: usize, out: &mut [i32]) {
    for ((v, t), b) in out.chunks_exact_mut(n).zip(top.chunks_exact(2 * n)).zip(bottom.chunks_exact(2 * n)) {
        let ((a, b), (c, d)) = (t.split_at(n), b.split_at(n));
        for ((v, (a, b)), (c, d)) in v.iter_mut().zip(a.iter().zip(b)).zip(c.iter().zip(d)) {
            *v = (*a).max(*b).max(*c).max(*d);
        }
    }
}

/// `1.5 * 2^23`: for `|t| < 2^22`, `t + SHIFT` lies in `[2^23, 2^24)`, where the f32 values
/// are the integers, so the addition itself rounds `t` half to even (baseline x86-64 has no
/// rounding instruction: `round_ties_even` was a call to `rintf` per value), and the low
/// mantissa byte of `SHIFT + c` is `c` (a float-to-int cast saturates and stayed scalar).
const SHIFT: f32 = 12_582_912.0;

/// The code of `r + SHIFT`, the shifted integer `r`, plus `zero`: clamped to `0..=hi` in the
/// shifted range (`hi` <= 255) and read off the low mantissa byte. NaN gives 0 (`max` drops
/// a NaN); a quotient beyond `2^22` either way is clamped whatever its rounding.
#[inline(always)]
fn shifted_code(t: f32, zero: f32, hi: f32) -> u8 {
    (t + zero).max(SHIFT).min(SHIFT + hi).to_bits() as u8
}

/// `clamp(round_ties_even(v) + zero, 0, hi)`, 0 for NaN.
#[inline(always)]
pub(super) fn code_nearest(v: f32, zero: f32, hi: f32) -> u8 {
    shifted_code(v + SHIFT, zero, hi)
}

/// `clamp(grid::floor(v) + zero, 0, hi)`: the nearest integer where `v` is on the grid
/// ([`mpq_net::grid::on_grid`]), else the integer below.
#[inline(always)]
pub(super) fn code_floor(v: f32, zero: f32, hi: f32) -> u8 {
    let t = v + SHIFT;
    let r = t - SHIFT;
    shifted_code(if mpq_net::grid::on_grid(v, r) || r <= v { t } else { t - 1.0 }, zero, hi)
}

/// `clamp(grid::ceil(v) + zero, 0, hi)`.
#[inline(always)]
pub(super) fn code_ceil(v: f32, zero: f32, hi: f32) -> u8 {
    let t = v + SHIFT;
    let r = t - SHIFT;
    shifted_code(if mpq_net::grid::on_grid(v, r) || r >= v { t } else { t + 1.0 }, zero, hi)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The call-free codes equal the library's rounding (`round_ties_even`, the grid's floor
    /// and ceil) plus the zero point, clamped: ties, grid points at every width, the edges of
    /// the shifted range, large, tiny and non-finite values, several zero points and tops.
    #[test]
    fn call_free_codes_equal_the_library_rounding() {
        let mut v: Vec<f32> = (-600..=600).map(|i| i as f32 * 0.5).collect();
        for bits in 2..=8u32 {
            let qmax = ((1u32 << bits) - 1) as f32;
            v.extend((0..=qmax as u32).map(|c| (c as f32 / qmax) / (1.0 / qmax)));
        }
        for e in [2_097_152.0f32, 4_194_304.0, 8_388_608.0, 16_777_216.0, 1e10] {
            v.extend([e, -e, e - 0.5, e + 1.0, -(e - 0.5), e * 1.000_000_1, e * 0.999_999_9]);
        }
        let mut seed = 5u64;
        v.extend((0..20_000).map(|_| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 40) as f32 / (1u64 << 24) as f32 - 0.5) * 700.0
        }));
        v.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0, 1e-30, -1e-30, 0.49999997, -0.49999997]);
        let want = |r: f32, zero: f32, hi: f32| if (r + zero).is_nan() { 0 } else { (r + zero).clamp(0.0, hi) as u8 };
        for x in v {
            for (zero, hi) in [(0.0, 255.0), (3.0, 15.0), (128.0, 255.0), (255.0, 255.0), (1.0, 3.0)] {
                let at = format!("{x} with zero {zero}, top {hi}");
                assert_eq!(code_nearest(x, zero, hi), want(x.round_ties_even(), zero, hi), "nearest {at}");
                assert_eq!(code_floor(x, zero, hi), want(mpq_net::grid::floor(x), zero, hi), "floor {at}");
                assert_eq!(code_ceil(x, zero, hi), want(mpq_net::grid::ceil(x), zero, hi), "ceil {at}");
            }
        }
    }
}
