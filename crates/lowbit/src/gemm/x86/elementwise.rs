//! The x86-64 kernels that work value by value: the input quantizer (AVX-512 and AVX2)
//! and a row of the 2x2 max-pool of sums (AVX2). Safety as in the parent module: each
//! `#[target_feature]` function runs only after `Kernel::supported` confirmed the features.
use super::super::quantize::{InputQuant, quantize_body};
use mpq_net::Rounding;
use mpq_net::grid::GRID_TOL;
use std::arch::x86_64::*;
pub(in crate::gemm) fn quantize_avx512(q: &InputQuant, x: &[f32], dst: &mut [u8]) {
    // SAFETY: features checked by the caller.
    unsafe {
        match q.round {
            Rounding::Nearest | Rounding::Stochastic => quant512::<0x08>(q, x, dst),
            Rounding::Floor => quant512::<0x09>(q, x, dst),
            Rounding::Ceil => quant512::<0x0A>(q, x, dst),
        }
    }
}

/// 16 codes per step: divide, round (`R`: 8 nearest-even, 9 floor, 10 ceil, exceptions
/// suppressed; floor and ceil take the nearest integer where the quotient is on the grid, as
/// `mpq_net::grid` does, with the same operations), add the zero point, clamp, convert (exact:
/// the value is an integer) and narrow to bytes. NaN becomes 0 as in `quantize_body`. The
/// tail goes through the body.
#[target_feature(enable = "avx512f,avx512bw")]
fn quant512<const R: i32>(q: &InputQuant, x: &[f32], dst: &mut [u8]) {
    let n = x.len().min(dst.len()) / 16 * 16;
    let (s, z, hi) = (_mm512_set1_ps(q.scale), _mm512_set1_ps(q.zero as f32), _mm512_set1_ps(q.qmax as f32));
    for i in (0..n).step_by(16) {
        // SAFETY: i + 16 <= n <= both lengths.
        let v = unsafe { _mm512_loadu_ps(x.as_ptr().add(i)) };
        let r = _mm512_add_ps(on_grid512::<R>(_mm512_div_ps(v, s)), z);
        let c = _mm512_min_ps(_mm512_max_ps(r, _mm512_setzero_ps()), hi);
        let b = _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(c));
        // SAFETY: as above.
        unsafe { _mm_storeu_si128(dst.as_mut_ptr().add(i).cast(), b) };
    }
    quantize_body(q, &x[n..], &mut dst[n..]);
}

/// `round::<R>(q)`, or the nearest integer where `|q - r| <= GRID_TOL * max(|r|, 1)`.
#[target_feature(enable = "avx512f,avx512bw")]
fn on_grid512<const R: i32>(q: __m512) -> __m512 {
    if R == 0x08 {
        return _mm512_roundscale_ps::<0x08>(q);
    }
    let r = _mm512_roundscale_ps::<0x08>(q);
    let d = _mm512_abs_ps(_mm512_sub_ps(q, r));
    let t = _mm512_mul_ps(_mm512_set1_ps(GRID_TOL), _mm512_max_ps(_mm512_abs_ps(r), _mm512_set1_ps(1.0)));
    let on = _mm512_cmp_ps_mask::<_CMP_LE_OQ>(d, t);
    _mm512_mask_blend_ps(on, _mm512_roundscale_ps::<R>(q), r)
}

/// As `on_grid512`, 8 lanes.
#[target_feature(enable = "avx2")]
fn on_grid256<const R: i32>(q: __m256) -> __m256 {
    if R == 0x08 {
        return _mm256_round_ps::<0x08>(q);
    }
    let (r, on) = nearest_on_grid256(q);
    _mm256_blendv_ps(_mm256_round_ps::<R>(q), r, on)
}

/// The nearest integer `r` to `q` and the mask of lanes where `|q - r| <= GRID_TOL *
/// max(|r|, 1)`, where floor and ceil take `r`.
#[target_feature(enable = "avx2")]
fn nearest_on_grid256(q: __m256) -> (__m256, __m256) {
    let r = _mm256_round_ps::<0x08>(q);
    let abs = |v: __m256| _mm256_andnot_ps(_mm256_set1_ps(-0.0), v);
    let d = abs(_mm256_sub_ps(q, r));
    let t = _mm256_mul_ps(_mm256_set1_ps(GRID_TOL), _mm256_max_ps(abs(r), _mm256_set1_ps(1.0)));
    (r, _mm256_cmp_ps::<_CMP_LE_OQ>(d, t))
}

pub(in crate::gemm) fn quantize_avx2(q: &InputQuant, x: &[f32], dst: &mut [u8]) {
    // SAFETY: features checked by the caller.
    unsafe {
        match q.round {
            Rounding::Nearest | Rounding::Stochastic => quant256::<0x08>(q, x, dst),
            Rounding::Floor => quant256::<0x09>(q, x, dst),
            Rounding::Ceil => quant256::<0x0A>(q, x, dst),
        }
    }
}

/// As `quant512`, 32 codes per step (then 8), packed to bytes with two saturating packs and
/// one lane permutation per 32.
#[target_feature(enable = "avx2")]
fn quant256<const R: i32>(q: &InputQuant, x: &[f32], dst: &mut [u8]) {
    let len = x.len().min(dst.len());
    let (s, z, hi) = (_mm256_set1_ps(q.scale), _mm256_set1_ps(q.zero as f32), _mm256_set1_ps(q.qmax as f32));
    let code = |i: usize| {
        // SAFETY: the callers keep i + 8 <= len.
        let v = unsafe { _mm256_loadu_ps(x.as_ptr().add(i)) };
        clamp_code(on_grid256::<R>(_mm256_div_ps(v, s)), z, hi)
    };
    let n32 = len / 32 * 32;
    for i in (0..n32).step_by(32) {
        // SAFETY: bytes i..i + 32 of dst.
        unsafe { store32(pack32([code(i), code(i + 8), code(i + 16), code(i + 24)]), &mut dst[i..]) };
    }
    let n = len / 8 * 8;
    for i in (n32..n).step_by(8) {
        // SAFETY: bytes i..i + 8 of dst.
        unsafe { store8(code(i), &mut dst[i..]) };
    }
    quantize_body(q, &x[n..], &mut dst[n..]);
}

/// The rounded quotient plus the zero point, clamped to 0..=`hi` and converted (exact: an
/// integer). `max(r, 0)` with r first: a NaN gives 0.
#[target_feature(enable = "avx2")]
fn clamp_code(r: __m256, z: __m256, hi: __m256) -> __m256i {
    _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(_mm256_add_ps(r, z), _mm256_setzero_ps()), hi))
}

/// 32 codes in 0..=255 (four vectors of eight) as bytes in order: the saturating packs are
/// exact on them, and the permutation undoes their interleaving of 128-bit lanes.
#[target_feature(enable = "avx2")]
fn pack32(c: [__m256i; 4]) -> __m256i {
    let order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    let (lo, hi) = (_mm256_packus_epi32(c[0], c[1]), _mm256_packus_epi32(c[2], c[3]));
    _mm256_permutevar8x32_epi32(_mm256_packus_epi16(lo, hi), order)
}

/// Stores 32 bytes at the start of `dst`.
///
/// # Safety
/// `dst` holds at least 32 bytes.
#[target_feature(enable = "avx2")]
unsafe fn store32(b: __m256i, dst: &mut [u8]) {
    // SAFETY: the caller guarantees 32 bytes.
    unsafe { _mm256_storeu_si256(dst.as_mut_ptr().cast(), b) };
}

/// Stores 8 codes in 0..=255 as bytes at the start of `dst`.
///
/// # Safety
/// `dst` holds at least 8 bytes.
#[target_feature(enable = "avx2")]
unsafe fn store8(c: __m256i, dst: &mut [u8]) {
    let w = _mm_packus_epi32(_mm256_castsi256_si128(c), _mm256_extracti128_si256::<1>(c));
    // SAFETY: the caller guarantees 8 bytes.
    unsafe { _mm_storel_epi64(dst.as_mut_ptr().cast(), _mm_packus_epi16(w, w)) };
}

pub(in crate::gemm) fn quantize3_avx2(q: &InputQuant, x: &[f32], dst: [&mut [u8]; 3]) {
    // SAFETY: features checked by the caller.
    unsafe { quant3_256(q, x, dst) }
}

/// Nearest, floor and ceil codes from one division per value: the operations of
/// `quant256` under each rounding, with the nearest integer and the on-grid test, which the
/// three share, computed once.
#[target_feature(enable = "avx2")]
fn quant3_256(q: &InputQuant, x: &[f32], [dn, df, dc]: [&mut [u8]; 3]) {
    let len = x.len().min(dn.len()).min(df.len()).min(dc.len());
    let (s, z, hi) = (_mm256_set1_ps(q.scale), _mm256_set1_ps(q.zero as f32), _mm256_set1_ps(q.qmax as f32));
    let codes = |i: usize| {
        // SAFETY: the callers keep i + 8 <= len.
        let v = _mm256_div_ps(unsafe { _mm256_loadu_ps(x.as_ptr().add(i)) }, s);
        // As `on_grid256` under each rounding.
        let (r, on) = nearest_on_grid256(v);
        let f = _mm256_blendv_ps(_mm256_round_ps::<0x09>(v), r, on);
        let c = _mm256_blendv_ps(_mm256_round_ps::<0x0A>(v), r, on);
        [r, f, c].map(|u| clamp_code(u, z, hi))
    };
    let n32 = len / 32 * 32;
    for i in (0..n32).step_by(32) {
        let [a, b, c, d] = [codes(i), codes(i + 8), codes(i + 16), codes(i + 24)];
        for (k, out) in [&mut *dn, &mut *df, &mut *dc].into_iter().enumerate() {
            // SAFETY: bytes i..i + 32 of each output.
            unsafe { store32(pack32([a[k], b[k], c[k], d[k]]), &mut out[i..]) };
        }
    }
    let n = len / 8 * 8;
    for i in (n32..n).step_by(8) {
        for (c, out) in codes(i).into_iter().zip([&mut *dn, &mut *df, &mut *dc]) {
            // SAFETY: bytes i..i + 8 of each output.
            unsafe { store8(c, &mut out[i..]) };
        }
    }
    for (round, out) in Rounding::SEARCHED.into_iter().zip([dn, df, dc]) {
        quantize_body(&InputQuant { round, ..*q }, &x[n..len], &mut out[n..len]);
    }
}

/// [`super::max_pool_row`] with `vpmaxsd`, 8 columns at a time (`n` a multiple of 8; the
/// caller asserted the lengths).
pub(in crate::gemm) fn max_pool_row_avx2(top: &[i32], bottom: &[i32], n: usize, out: &mut [i32]) {
    #[target_feature(enable = "avx2")]
    fn body(top: &[i32], bottom: &[i32], n: usize, out: &mut [i32]) {
        let load = |s: &[i32], i: usize| {
            // SAFETY: the caller's lengths keep i + 8 <= s.len().
            unsafe { _mm256_loadu_si256(s.as_ptr().add(i).cast()) }
        };
        for w in 0..out.len() / n {
            for j in (0..n).step_by(8) {
                let (l, r) = (2 * w * n + j, (2 * w + 1) * n + j);
                let m = _mm256_max_epi32(
                    _mm256_max_epi32(load(top, l), load(top, r)),
                    _mm256_max_epi32(load(bottom, l), load(bottom, r)),
                );
                // SAFETY: values w * n + j .. + 8 of out.
                unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(w * n + j).cast(), m) };
            }
        }
    }
    // SAFETY: features checked by the caller.
    unsafe { body(top, bottom, n, out) }
}
