//! SIMD kernels for x86-64. Safety: each `#[target_feature]` function is called only after
//! `Kernel::supported` confirmed the features, and every pointer offset stays inside the
//! slices whose lengths `gemm` asserted (`m * kp` codes of `a`, `m * np` sums of `c`,
//! `kp * np` packed weights).
use super::{AVX2_ROWS, Layout, MR, PANEL, PackedB, SPARSE_DEPTH, even_blocks};
use std::arch::x86_64::*;

mod bytes;
mod direct;
mod elementwise;
pub(super) use direct::single_channel_pooled_avx2;
mod pairs;
pub(super) use elementwise::{max_pool_row_avx2, quantize_avx2, quantize_avx512, quantize3_avx2};

pub(super) fn gemm_vnni(a: &[u8], m: usize, b: &PackedB, c: &mut [i32]) {
    let panels = b.np / PANEL;
    let nib = b.layout == Layout::Nibbles;
    let panel_bytes = if nib { b.kp * PANEL / 2 } else { b.kp * PANEL };
    for i0 in (0..m).step_by(MR) {
        let rows = MR.min(m - i0);
        let mut p = 0;
        while p < panels {
            let two = p + 1 < panels;
            // SAFETY: features checked by the caller; rows i0..i0+rows and panels p..p+2
            // lie inside the asserted slice lengths (`panel_bytes` per panel of weights).
            unsafe {
                let ap = a.as_ptr().add(i0 * b.kp);
                let bp = b.bytes.as_ptr().add(p * panel_bytes);
                let cp = c.as_mut_ptr().add(i0 * b.np + p * PANEL);
                let blk = Block { a: ap, kp: b.kp, b: bp, panel_bytes, c: cp, ldc: b.np };
                match (rows, two, nib) {
                    (8, true, false) => vnni::<8, 2, false>(blk),
                    (8, false, false) => vnni::<8, 1, false>(blk),
                    (8, true, true) => vnni::<8, 2, true>(blk),
                    (8, false, true) => vnni::<8, 1, true>(blk),
                    (r, true, false) => vnni_rows::<2, false>(r, blk),
                    (r, false, false) => vnni_rows::<1, false>(r, blk),
                    (r, true, true) => vnni_rows::<2, true>(r, blk),
                    (r, false, true) => vnni_rows::<1, true>(r, blk),
                }
            }
            p += if two { 2 } else { 1 };
        }
    }
}

/// Where one register block reads and writes.
#[derive(Clone, Copy)]
struct Block {
    a: *const u8,
    kp: usize,
    b: *const u8,
    panel_bytes: usize,
    c: *mut i32,
    ldc: usize,
}

/// Fewer than `MR` rows: one row at a time.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn vnni_rows<const NP: usize, const NIB: bool>(rows: usize, blk: Block) {
    for r in 0..rows {
        // SAFETY: row r < rows is inside the caller's block.
        let row = unsafe { Block { a: blk.a.add(r * blk.kp), c: blk.c.add(r * blk.ldc), ..blk } };
        // SAFETY: as the caller's.
        unsafe { vnni::<1, NP, NIB>(row) };
    }
}

/// `R` rows x `NP` panels: `R * NP` accumulators in registers, one `vpdpbusd` per
/// accumulator and group of 4 depths. With `NIB`, each 64-byte load holds two groups as
/// nibbles, split and re-centred (`- 8`) in registers.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
unsafe fn vnni<const R: usize, const NP: usize, const NIB: bool>(blk: Block) {
    let Block { a, kp, b, panel_bytes, c, ldc } = blk;
    let (mask, eight) = (_mm512_set1_epi8(0x0F), _mm512_set1_epi8(8));
    let mut acc = [[_mm512_setzero_si512(); NP]; R];
    let depth = if NIB { 8 } else { 4 };
    for s in 0..kp / depth {
        let (mut lo, mut hi) = ([_mm512_setzero_si512(); NP], [_mm512_setzero_si512(); NP]);
        for p in 0..NP {
            // SAFETY: block s of panel p is inside the packed weights.
            let v = unsafe { _mm512_loadu_si512(b.add(p * panel_bytes + s * 64).cast()) };
            if NIB {
                lo[p] = _mm512_sub_epi8(_mm512_and_si512(v, mask), eight);
                hi[p] = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16::<4>(v), mask), eight);
            } else {
                lo[p] = v;
            }
        }
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: bytes depth*s..depth*(s+1) of row r are inside a.
            let x = _mm512_set1_epi32(unsafe { a.add(r * kp + s * depth).cast::<i32>().read_unaligned() });
            for (p, v) in row.iter_mut().enumerate() {
                *v = _mm512_dpbusd_epi32(*v, x, lo[p]);
            }
            if NIB {
                // SAFETY: as above.
                let x = _mm512_set1_epi32(unsafe { a.add(r * kp + s * depth + 4).cast::<i32>().read_unaligned() });
                for (p, v) in row.iter_mut().enumerate() {
                    *v = _mm512_dpbusd_epi32(*v, x, hi[p]);
                }
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        for (p, v) in row.iter().enumerate() {
            // SAFETY: columns of panel p in row r are inside c.
            unsafe { _mm512_storeu_si512(c.add(r * ldc + p * PANEL).cast(), *v) };
        }
    }
}

/// A 256-bit register-block kernel: `R` rows of codes (`kp` each, from the pointer given)
/// times one panel of weights, into 16 columns of `R` rows of sums (row stride `ldc`). The
/// last argument is the `vpmaddubsw` kernel's run of 16-bit groups; the others ignore it.
type Block256<A> = unsafe fn(*const A, usize, *const A, *mut i32, usize, usize);

/// The driver of the 256-bit kernels: for every panel, register blocks of rows split evenly,
/// `kernels[r - 1]` computing a block of `r` rows (so `kernels.len()` rows at most).
/// `a` holds `m * kp` codes and `b` the panels (`kp * PANEL` values each) of `np` columns.
fn blocks256<A>(
    a: &[A],
    m: usize,
    b: &[A],
    (kp, np): (usize, usize),
    c: &mut [i32],
    run: usize,
    kernels: &[Block256<A>],
) {
    assert!(a.len() >= m * kp && b.len() >= kp * np && c.len() >= m * np);
    for p in 0..np / PANEL {
        for (i0, rows) in even_blocks(m, kernels.len()) {
            // SAFETY: the kernel's features were checked by the caller; rows i0..i0+rows of
            // `a`, panel p of `b` and its 16 columns of those rows of `c` lie inside the
            // lengths asserted above.
            unsafe {
                let (ap, bp) = (a.as_ptr().add(i0 * kp), b.as_ptr().add(p * kp * PANEL));
                kernels[rows - 1](ap, kp, bp, c.as_mut_ptr().add(i0 * np + p * PANEL), np, run);
            }
        }
    }
}

/// The AVX2 path; every choice gives the same exact sums:
/// - long, mostly zero rows (images): `vpmaddwd` one row at a time over its nonzero pairs
///   (first: the byte kernel skips no zeros, and on digits at 4 bits, or on the 0/1 weights
///   of `engine::Roundings`, took 1.5 times as long);
/// - weights and codes so small that `vpmaddubsw`'s 16-bit pair sums add up over several
///   groups of depths without saturating (4-bit weights): the byte kernel;
/// - weights that fit a byte (8 bits or fewer): the byte kernel on the codes clamped to where
///   a single pair sum cannot saturate, plus `vpmaddwd` on the few remainders above it;
/// - otherwise `vpmaddwd` per register block of rows.
pub(super) fn gemm_avx2(a: &[u8], m: usize, b: &PackedB, c: &mut [i32]) {
    let a = &a[..m * b.kp];
    let sparse = b.kp >= SPARSE_DEPTH;
    if sparse && pairs::gemm_rows(a, m, b, c, pairs::Rows::IfSparse) {
        return;
    }
    let amax = if b.bytes.is_empty() { 0 } else { bytes::max_code(a) };
    if let Some(run) = bytes::exact_groups(amax, b)
        && run >= 2
    {
        return bytes::gemm_bytes(a, m, b, c, run);
    }
    if !b.bytes.is_empty() && bytes::gemm_split(a, m, b, c, amax) {
        return;
    }
    pairs::gemm_blocks(a, m, b, c, sparse)
}

/// The AVX-VNNI path: blocks of up to `AVX2_ROWS` rows (split evenly) per panel of the byte
/// layout; `vpdpbusd` adds four u8 x i8 products into each i32 lane, exact at every width.
pub(super) fn gemm_avxvnni(a: &[u8], m: usize, b: &PackedB, c: &mut [i32]) {
    let kernels: [Block256<u8>; AVX2_ROWS] =
        [avxvnni::<1>, avxvnni::<2>, avxvnni::<3>, avxvnni::<4>, avxvnni::<5>, avxvnni::<6>];
    blocks256(a, m, &b.bytes, (b.kp, b.np), c, 0, &kernels);
}

/// `R` rows x one panel. A group of 4 depths holds 16 columns x 4 byte weights (two
/// registers, 8 columns each); `vpdpbusd` of a row's 4 codes, broadcast, against them adds
/// the column's four products into its i32 lane.
#[target_feature(enable = "avx2,avxvnni")]
unsafe fn avxvnni<const R: usize>(a: *const u8, kp: usize, b: *const u8, c: *mut i32, ldc: usize, _run: usize) {
    let mut acc = [[_mm256_setzero_si256(); 2]; R];
    for g in 0..kp / 4 {
        // SAFETY: the 64 bytes of group g are inside the panel.
        let (w0, w1) = unsafe {
            (_mm256_loadu_si256(b.add(g * 4 * PANEL).cast()), _mm256_loadu_si256(b.add(g * 4 * PANEL + 32).cast()))
        };
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: codes 4g..4g + 4 of row r are inside a.
            let x = _mm256_set1_epi32(unsafe { a.add(r * kp + 4 * g).cast::<i32>().read_unaligned() });
            row[0] = _mm256_dpbusd_avx_epi32(row[0], x, w0);
            row[1] = _mm256_dpbusd_avx_epi32(row[1], x, w1);
        }
    }
    for (r, row) in acc.iter().enumerate() {
        // SAFETY: 16 columns of row r are inside c.
        unsafe {
            _mm256_storeu_si256(c.add(r * ldc).cast(), row[0]);
            _mm256_storeu_si256(c.add(r * ldc + 8).cast(), row[1]);
        }
    }
}
