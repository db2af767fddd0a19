//! The AVX2 path's 3x3 convolution tile, written with intrinsics: 4 output channels x 16
//! columns, eight independent sums in registers (enough to keep both vector adders busy),
//! where the compiler vectorizes [`super::kernels`]'s generic tile only up to 2 channels.
//! Each output still starts at its bias and adds `w * x` tap by tap in weight order
//! (`c * 9 + ky * 3 + kx`), one rounded multiply and one rounded add each, as the generic
//! tile does: the bits are the same, which `simd`'s tests check.
// Safety: `tiles4` is called only on the AVX2 path, after AVX2 was detected; every load
// reads 16 values of a slice checked to hold them.
#![allow(unsafe_code)]

use super::kernels::{CONV_COLS, ConvGeo};
use std::arch::x86_64::*;

/// Output channels of one tile.
pub(super) const CHANNELS: usize = 4;

/// Output channels `co0..co0 + 4` of a valid 3x3 convolution of `src` (the image followed by
/// [`CONV_COLS`] zeros), tile by tile, into `z` (`[c_out, o, o]`).
#[target_feature(enable = "avx2")]
pub(super) fn tiles4(src: &[f32], w: &[f32], b: &[f32], g: ConvGeo, co0: usize, z: &mut [f32]) {
    let (taps, o, side) = (g.c_in * 9, g.o, g.side);
    let per_tap: Vec<[f32; CHANNELS]> = (0..taps).map(|t| std::array::from_fn(|r| w[(co0 + r) * taps + t])).collect();
    let offsets: Vec<usize> = (0..taps).map(|t| (t / 9) * side * side + (t % 9 / 3) * side + t % 3).collect();
    let mut out = [[0f32; CONV_COLS]; CHANNELS];
    for y in 0..o {
        for x0 in (0..o).step_by(CONV_COLS) {
            let mut acc: [[__m256; 2]; CHANNELS] = std::array::from_fn(|r| [_mm256_set1_ps(b[co0 + r]); 2]);
            let base = &src[y * side + x0..];
            for (wt, &at) in per_tap.iter().zip(&offsets) {
                let seg = &base[at..at + CONV_COLS];
                // SAFETY: `seg` holds 16 values: two loads of 8.
                let (v0, v1) = unsafe { (_mm256_loadu_ps(seg.as_ptr()), _mm256_loadu_ps(seg.as_ptr().add(8))) };
                for (a, &wv) in acc.iter_mut().zip(wt) {
                    let wv = _mm256_set1_ps(wv);
                    a[0] = _mm256_add_ps(a[0], _mm256_mul_ps(wv, v0));
                    a[1] = _mm256_add_ps(a[1], _mm256_mul_ps(wv, v1));
                }
            }
            for (dst, a) in out.iter_mut().zip(&acc) {
                let (lo, hi) = dst.split_at_mut(8);
                // SAFETY: each half holds 8 values.
                unsafe {
                    _mm256_storeu_ps(lo.as_mut_ptr(), a[0]);
                    _mm256_storeu_ps(hi.as_mut_ptr(), a[1]);
                }
            }
            let n = CONV_COLS.min(o - x0);
            for (r, row) in out.iter().enumerate() {
                z[(co0 + r) * o * o + y * o + x0..][..n].copy_from_slice(&row[..n]);
            }
        }
    }
}
