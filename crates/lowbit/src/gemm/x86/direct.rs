//! A 3x3 convolution of a single-channel image computed directly, eight output pixels per
//! register (`vpmaddwd` over pairs of taps), with its 2x2 max-pool, for the first layer of a
//! CNN: there im2col unfolds each pixel into a 9-code row and the GEMM's 16 columns
//! outnumber the layer's few channels, so copying and padding cost more than the products.
//! Safety as in the parent module.
use super::super::direct::{TAP_PAIRS, out_stride};
use std::arch::x86_64::*;

/// The 2x2 max-pool (floor) of the integer sums of one single-channel image of codes
/// (`img`: `[side][side]` with at least 16 more bytes after it) against `c_out` channels of
/// tap pairs (`taps`: `[c_out][5]`, see [`super::super::direct::tap_pairs`]), into `out`
/// `[c_out][p][p]`, `p = (side - 2) / 2`; `rows` holds `c_out * out_stride` sums meanwhile.
pub(in crate::gemm) fn single_channel_pooled_avx2(
    img: &[u8],
    side: usize,
    taps: &[i32],
    c_out: usize,
    rows: &mut [i32],
    out: &mut [i32],
) {
    let (o, stride) = (side - 2, out_stride(side - 2));
    let p = o / 2;
    assert!(img.len() >= side * side + 16 && taps.len() >= c_out * TAP_PAIRS);
    assert!(rows.len() >= c_out * stride && out.len() >= c_out * p * p);
    // SAFETY: AVX2 was checked by the caller; the lengths are asserted above.
    unsafe { body(img, side, taps, c_out, rows, out) }
}

#[target_feature(enable = "avx2")]
unsafe fn body(img: &[u8], side: usize, taps: &[i32], c_out: usize, rows: &mut [i32], out: &mut [i32]) {
    let (o, stride) = (side - 2, out_stride(side - 2));
    let p = o / 2;
    // Offsets of taps 2p and 2p + 1 in the image (tap 9 stands in for the missing tenth:
    // its weight is zero, and reading tap 8 again keeps the read inside the image).
    let off = |t: usize| (t.min(8) / 3) * side + t.min(8) % 3;
    for py in 0..p {
        for ox in (0..stride).step_by(8) {
            // The two rows of sums under this row of windows, their maxima per channel.
            let mut pairs = [[_mm256_setzero_si256(); TAP_PAIRS]; 2];
            for (dy, row) in pairs.iter_mut().enumerate() {
                let at = (2 * py + dy) * side + ox;
                for (q, v) in row.iter_mut().enumerate() {
                    // Codes of taps 2q and 2q + 1 of 8 pixels, as the low and high i16 of
                    // each i32 lane. SAFETY: the last read ends 8 codes past pixel
                    // `at + 2 * side + 2`, below `side * side + 16` (asserted): `ox` stays
                    // under `stride`, at most `o + 15`.
                    unsafe {
                        let a = _mm_loadl_epi64(img.as_ptr().add(at + off(2 * q)).cast());
                        let b = _mm_loadl_epi64(img.as_ptr().add(at + off(2 * q + 1)).cast());
                        *v = _mm256_cvtepu8_epi16(_mm_unpacklo_epi8(a, b));
                    }
                }
            }
            for c in 0..c_out {
                let w = &taps[c * TAP_PAIRS..][..TAP_PAIRS];
                let sums = pairs.map(|row| {
                    let mut acc = _mm256_madd_epi16(row[0], _mm256_set1_epi32(w[0]));
                    for q in 1..TAP_PAIRS {
                        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(row[q], _mm256_set1_epi32(w[q])));
                    }
                    acc
                });
                // SAFETY: columns ox..ox + 8 lie inside channel c's row of `stride` (asserted).
                unsafe {
                    let dst = rows.as_mut_ptr().add(c * stride + ox);
                    _mm256_storeu_si256(dst.cast(), _mm256_max_epi32(sums[0], sums[1]));
                }
            }
        }
        for c in 0..c_out {
            // SAFETY: channel c's row of `stride` sums and its p pooled values lie inside
            // `rows` and `out` (asserted).
            unsafe { pool_pairs(rows.as_ptr().add(c * stride), stride, out.as_mut_ptr().add((c * p + py) * p), p) };
        }
    }
}

/// The maxima of neighbouring pairs of a row of `stride` sums (a multiple of 16), the first
/// `p` of them into `dst`: 16 sums at a time, even and odd lanes split, their maxima put
/// back in order.
#[target_feature(enable = "avx2")]
unsafe fn pool_pairs(row: *const i32, stride: usize, dst: *mut i32, p: usize) {
    for x in (0..stride).step_by(16) {
        // SAFETY: sums x..x + 16 lie inside the row (stride is a multiple of 16).
        let (a, b) = unsafe { (_mm256_loadu_si256(row.add(x).cast()), _mm256_loadu_si256(row.add(x + 8).cast())) };
        let (fa, fb) = (_mm256_castsi256_ps(a), _mm256_castsi256_ps(b));
        let even = _mm256_castps_si256(_mm256_shuffle_ps::<0x88>(fa, fb));
        let odd = _mm256_castps_si256(_mm256_shuffle_ps::<0xDD>(fa, fb));
        // Windows (0 1 4 5 | 2 3 6 7) of the 8 back into order.
        let m = _mm256_permute4x64_epi64::<0xD8>(_mm256_max_epi32(even, odd));
        let (start, n) = (x / 2, (p.saturating_sub(x / 2)).min(8));
        if n == 8 {
            // SAFETY: windows start..start + 8 are below p, inside dst.
            unsafe { _mm256_storeu_si256(dst.add(start).cast(), m) };
        } else if n > 0 {
            let mut tail = [0i32; 8];
            // SAFETY: a local array of 8 lanes; n windows from start are below p.
            unsafe {
                _mm256_storeu_si256(tail.as_mut_ptr().cast(), m);
                std::ptr::copy_nonoverlapping(tail.as_ptr(), dst.add(start), n);
            }
        }
    }
}
