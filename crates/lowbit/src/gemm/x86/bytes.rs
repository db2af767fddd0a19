//! The `avx2` kernel on byte codes: `vpmaddubsw` multiplies 32 u8 x i8 pairs per instruction
//! into 16-bit pair sums, which saturate unless `2 * code * |weight|` stays below 2^15. Where
//! every code does, the sums are exact; where a few codes are larger, each is split into the
//! largest code that does plus a remainder, and the remainders' products are added with
//! `vpmaddwd` on the pairs where they are nonzero. Safety as in the parent module.
use super::super::{PANEL, PackedB, SPARSE_DEPTH};
use super::{Block256, blocks256, pairs};
use crate::scratch;
use std::arch::x86_64::*;
use std::cell::RefCell;

/// Rows of the `vpmaddubsw` register block (8 sums, 2 weight registers, 1 broadcast).
const BYTE_ROWS: usize = 4;

thread_local! {
    /// The codes clamped to the largest one whose pair sums cannot saturate.
    static LOW: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// What the clamp took off.
    static HIGH: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// The largest code of `a`.
pub(super) fn max_code(a: &[u8]) -> i32 {
    // SAFETY: called from the `avx2` path only, whose features the caller checked.
    unsafe { max_code_avx2(a) as i32 }
}

#[target_feature(enable = "avx2")]
fn max_code_avx2(a: &[u8]) -> u8 {
    let whole = a.len() / 32 * 32;
    let mut v = _mm256_setzero_si256();
    for i in (0..whole).step_by(32) {
        // SAFETY: codes i..i + 32 lie inside a.
        v = _mm256_max_epu8(v, unsafe { _mm256_loadu_si256(a.as_ptr().add(i).cast()) });
    }
    let mut lanes = [0u8; 32];
    // SAFETY: 32 bytes.
    unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast(), v) };
    lanes.iter().chain(&a[whole..]).copied().max().unwrap_or(0)
}

/// Groups of 4 depths whose `vpmaddubsw` pair sums add up in 16 bits without saturating
/// when no code exceeds `amax`, or `None` where a single pair sum could: each pair sum is
/// at most `2 * amax * max|w|` in magnitude. `None` without a byte copy of the weights.
pub(super) fn exact_groups(amax: i32, b: &PackedB) -> Option<usize> {
    if b.bytes.is_empty() {
        return None;
    }
    let pair = (2 * amax * b.wmax).max(1);
    (pair <= i16::MAX as i32).then(|| (i16::MAX as i32 / pair) as usize)
}

/// The byte kernel over blocks of up to `BYTE_ROWS` rows per panel of the byte copy, its
/// 16-bit sums widened every `run` groups of depths (exact only as [`exact_groups`] says).
pub(super) fn gemm_bytes(a: &[u8], m: usize, b: &PackedB, c: &mut [i32], run: usize) {
    let kernels: [Block256<u8>; BYTE_ROWS] = [maddubs::<1>, maddubs::<2>, maddubs::<3>, maddubs::<4>];
    blocks256(a, m, &b.bytes, (b.kp, b.np), c, run, &kernels);
}

/// The byte kernel on the codes clamped to the largest whose single pair sums cannot
/// saturate (129 for weights up to 127), plus `vpmaddwd` on the remainders, row by row over
/// their nonzero pairs. Returns false, computing nothing, where the register blocks of
/// `vpmaddwd` are faster: codes above the limit in short rows (3x3 convolutions: listing
/// each row's few remainders cost more than it saved; the CNN ran at half speed), in a
/// single panel of columns (an MLP's 10 logits: the listing cost more than the products,
/// 160 against 135 us per 1000 rows of 128), or in more than a quarter of the pairs.
pub(super) fn gemm_split(a: &[u8], m: usize, b: &PackedB, c: &mut [i32], amax: i32) -> bool {
    let top = (i16::MAX as i32 / (2 * b.wmax.max(1))).min(255);
    if amax <= top {
        gemm_bytes(a, m, b, c, 1);
        return true;
    }
    if b.kp < SPARSE_DEPTH || b.np <= PANEL {
        return false;
    }
    scratch::with(&LOW, a.len(), 0, |low| {
        scratch::with(&HIGH, a.len(), 0, |high| {
            // SAFETY: the features were checked by the caller.
            let remainders = unsafe { split(a, top as u8, low, high) };
            if 4 * remainders > a.len() / 2 {
                return false;
            }
            gemm_bytes(low, m, b, c, 1);
            pairs::gemm_rows(high, m, b, c, pairs::Rows::Add)
        })
    })
}

/// `low = min(a, top)`, `high = a - low`, 32 codes at a time; returns how many pairs of
/// `high` are nonzero.
#[target_feature(enable = "avx2")]
fn split(a: &[u8], top: u8, low: &mut [u8], high: &mut [u8]) -> usize {
    assert!(low.len() == a.len() && high.len() == a.len());
    let whole = a.len() / 32 * 32;
    let t = _mm256_set1_epi8(top as i8);
    for i in (0..whole).step_by(32) {
        // SAFETY: bytes i..i + 32 lie inside all three slices.
        unsafe {
            let v = _mm256_loadu_si256(a.as_ptr().add(i).cast());
            let l = _mm256_min_epu8(v, t);
            _mm256_storeu_si256(low.as_mut_ptr().add(i).cast(), l);
            _mm256_storeu_si256(high.as_mut_ptr().add(i).cast(), _mm256_sub_epi8(v, l));
        }
    }
    for i in whole..a.len() {
        low[i] = a[i].min(top);
        high[i] = a[i] - low[i];
    }
    pairs::count_nonzero_pairs(high)
}

/// `R` rows x one panel. A group of 4 depths holds 16 columns x 4 byte weights (two
/// registers, 8 columns each); `vpmaddubsw` of a row's 4 codes, broadcast, against them gives
/// each column two 16-bit pair sums, added in 16 bits over `run` groups, then summed into
/// the column's i32 lane by `vpmaddwd` with ones (at once where `run` is 1).
#[target_feature(enable = "avx2")]
unsafe fn maddubs<const R: usize>(a: *const u8, kp: usize, b: *const u8, c: *mut i32, ldc: usize, run: usize) {
    let ones = _mm256_set1_epi16(1);
    let mut tot = [[_mm256_setzero_si256(); 2]; R];
    let groups = kp / 4;
    if run <= 1 {
        // Each pair sum widened at once: three instructions per 32 products.
        for g in 0..groups {
            // SAFETY: the 64 bytes of group g are inside the panel.
            let (w0, w1) = unsafe {
                (_mm256_loadu_si256(b.add(g * 4 * PANEL).cast()), _mm256_loadu_si256(b.add(g * 4 * PANEL + 32).cast()))
            };
            for (r, row) in tot.iter_mut().enumerate() {
                // SAFETY: codes 4g..4g + 4 of row r are inside a.
                let x = _mm256_set1_epi32(unsafe { a.add(r * kp + 4 * g).cast::<i32>().read_unaligned() });
                row[0] = _mm256_add_epi32(row[0], _mm256_madd_epi16(_mm256_maddubs_epi16(x, w0), ones));
                row[1] = _mm256_add_epi32(row[1], _mm256_madd_epi16(_mm256_maddubs_epi16(x, w1), ones));
            }
        }
    }
    let mut g0 = if run <= 1 { groups } else { 0 };
    while g0 < groups {
        let end = groups.min(g0 + run);
        let mut acc = [[_mm256_setzero_si256(); 2]; R];
        for g in g0..end {
            // SAFETY: the 64 bytes of group g are inside the panel.
            let (w0, w1) = unsafe {
                (_mm256_loadu_si256(b.add(g * 4 * PANEL).cast()), _mm256_loadu_si256(b.add(g * 4 * PANEL + 32).cast()))
            };
            for (r, row) in acc.iter_mut().enumerate() {
                // SAFETY: codes 4g..4g + 4 of row r are inside a.
                let x = _mm256_set1_epi32(unsafe { a.add(r * kp + 4 * g).cast::<i32>().read_unaligned() });
                row[0] = _mm256_add_epi16(row[0], _mm256_maddubs_epi16(x, w0));
                row[1] = _mm256_add_epi16(row[1], _mm256_maddubs_epi16(x, w1));
            }
        }
        for (t, s) in tot.iter_mut().zip(&acc) {
            t[0] = _mm256_add_epi32(t[0], _mm256_madd_epi16(s[0], ones));
            t[1] = _mm256_add_epi32(t[1], _mm256_madd_epi16(s[1], ones));
        }
        g0 = end;
    }
    for (r, row) in tot.iter().enumerate() {
        // SAFETY: 16 columns of row r are inside c.
        unsafe {
            _mm256_storeu_si256(c.add(r * ldc).cast(), row[0]);
            _mm256_storeu_si256(c.add(r * ldc + 8).cast(), row[1]);
        }
    }
}
