//! SIMD kernels for x86-64. Safety: each `#[target_feature]` function is called only after
//! `Kernel::supported` confirmed the features, and every pointer offset stays inside the
//! slices whose lengths `gemm` asserted (`m * kp` codes of `a`, `m * np` sums of `c`,
//! `kp * np` packed weights).
use super::{AVX2_ROWS, Layout, MR, PANEL, PackedB, SPARSE_DEPTH, even_blocks};
use std::arch::x86_64::*;

mod elementwise;
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

/// Rows of the `vpmaddubsw` register block (8 16-bit sums, 2 weight registers, 1 broadcast).
const BYTE_ROWS: usize = 4;

/// Groups of 4 depths whose `vpmaddubsw` pair sums add up in 16 bits without saturating,
/// or `None` where a single pair sum could: each pair sum is at most
/// `2 * max(a) * max|w|` in magnitude.
fn exact_groups(a: &[u8], b: &PackedB) -> Option<usize> {
    if b.bytes.is_empty() {
        return None;
    }
    let amax = a.iter().copied().max().unwrap_or(0) as i32;
    let pair = (2 * amax * b.wmax).max(1);
    (pair <= i16::MAX as i32).then(|| (i16::MAX as i32 / pair) as usize)
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

pub(super) fn gemm_avx2(a: &[u8], m: usize, b: &PackedB, c: &mut [i32]) {
    let dims = (b.kp, b.np);
    if let Some(run) = exact_groups(&a[..m * b.kp], b) {
        // The `vpmaddubsw` path: blocks of up to `BYTE_ROWS` rows per panel of the byte copy.
        let kernels: [Block256<u8>; BYTE_ROWS] = [maddubs::<1>, maddubs::<2>, maddubs::<3>, maddubs::<4>];
        return blocks256(a, m, &b.bytes, dims, c, run, &kernels);
    }
    let (kp, np) = dims;
    assert!(b.wide.len() >= kp * np && c.len() >= m * np);
    let kernels: [SparseBlock; AVX2_ROWS] = [avx2::<1>, avx2::<2>, avx2::<3>, avx2::<4>, avx2::<5>, avx2::<6>];
    let mut live = (0..kp / 2).collect::<Vec<usize>>();
    let sparse = kp >= SPARSE_DEPTH;
    // One block's codes widened at a time: they stay in cache for every panel, and no copy
    // of the whole input is allocated.
    let mut a16 = vec![0i16; AVX2_ROWS * kp];
    for (i0, rows) in even_blocks(m, AVX2_ROWS) {
        let block = &a[i0 * kp..(i0 + rows) * kp];
        // The pairs of depths where some row of the block has a nonzero code: the others add
        // nothing (images are mostly zero pixels, and a zero point of 0 codes them as 0).
        if sparse {
            // SAFETY: the features were checked by the caller.
            unsafe { live_pairs(block, kp, &mut live) };
        }
        // SAFETY: as above.
        unsafe { widen(block, &mut a16[..rows * kp]) };
        for p in 0..np / PANEL {
            // SAFETY: the features were checked by the caller; the block's `rows` rows of
            // `a16`, panel p of `b.wide` and its 16 columns of those rows of `c` lie inside
            // the lengths asserted above, and every pair in `live` is below kp / 2.
            unsafe {
                let bp = b.wide.as_ptr().add(p * kp * PANEL);
                let ap = a16.as_ptr();
                kernels[rows - 1](ap, kp, bp, c.as_mut_ptr().add(i0 * np + p * PANEL), np, &live);
            }
        }
    }
}

/// The codes widened to i16 (16 at a time) into `out` (as long), for `vpmaddwd`.
#[target_feature(enable = "avx2")]
fn widen(a: &[u8], out: &mut [i16]) {
    assert_eq!(a.len(), out.len());
    let n = a.len() / 16 * 16;
    for i in (0..n).step_by(16) {
        // SAFETY: bytes and values i..i + 16 lie inside both slices.
        unsafe {
            let v = _mm256_cvtepu8_epi16(_mm_loadu_si128(a.as_ptr().add(i).cast()));
            _mm256_storeu_si256(out.as_mut_ptr().add(i).cast(), v);
        }
    }
    out[n..].iter_mut().zip(&a[n..]).for_each(|(o, &v)| *o = v as i16);
}

/// Replaces `live` with the depth pairs (`g`: codes `2g`, `2g + 1`) where some row of
/// `block` (rows of `kp` codes) is nonzero, in increasing order: 32 codes of every row OR-ed
/// in a register, the zero pairs masked out, the set bits walked.
#[target_feature(enable = "avx2")]
fn live_pairs(block: &[u8], kp: usize, live: &mut Vec<usize>) {
    live.clear();
    let whole = kp / 32 * 32;
    for d in (0..whole).step_by(32) {
        let mut v = _mm256_setzero_si256();
        for row in block.chunks_exact(kp) {
            // SAFETY: codes d..d + 32 lie inside the row.
            v = _mm256_or_si256(v, unsafe { _mm256_loadu_si256(row.as_ptr().add(d).cast()) });
        }
        // Two mask bits per pair; the even one stands for it.
        let zero = _mm256_movemask_epi8(_mm256_cmpeq_epi16(v, _mm256_setzero_si256())) as u32;
        let mut bits = !zero & 0x5555_5555;
        while bits != 0 {
            live.push(d / 2 + bits.trailing_zeros() as usize / 2);
            bits &= bits - 1;
        }
    }
    let nonzero = |g: usize| block.chunks_exact(kp).any(|r| r[2 * g] | r[2 * g + 1] != 0);
    live.extend((whole / 2..kp / 2).filter(|&g| nonzero(g)));
}

/// The i16 kernel's register block: `R` rows of codes (`kp` each), one panel, the pairs of
/// depths to visit, into 16 columns of `R` rows of sums (row stride `ldc`).
type SparseBlock = unsafe fn(*const i16, usize, *const i16, *mut i32, usize, &[usize]);

/// `R` rows x one panel, over the pairs of depths in `live`. Each pair holds 16 columns x 2
/// i16 weights (two registers); `vpmaddwd` of a row's two codes, broadcast, against them
/// adds both products of each column into its i32 lane.
#[target_feature(enable = "avx2")]
unsafe fn avx2<const R: usize>(a: *const i16, kp: usize, b: *const i16, c: *mut i32, ldc: usize, live: &[usize]) {
    let mut acc = [[_mm256_setzero_si256(); 2]; R];
    for &g in live {
        // SAFETY: the 32 weights of pair g are inside the panel.
        let (w0, w1) = unsafe {
            (_mm256_loadu_si256(b.add(g * 2 * PANEL).cast()), _mm256_loadu_si256(b.add(g * 2 * PANEL + PANEL).cast()))
        };
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: codes 2g and 2g + 1 of row r are inside a.
            let x = _mm256_set1_epi32(unsafe { a.add(r * kp + 2 * g).cast::<i32>().read_unaligned() });
            row[0] = _mm256_add_epi32(row[0], _mm256_madd_epi16(x, w0));
            row[1] = _mm256_add_epi32(row[1], _mm256_madd_epi16(x, w1));
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

/// `R` rows x one panel. A group of 4 depths holds 16 columns x 4 byte weights (two
/// registers, 8 columns each); `vpmaddubsw` of a row's 4 codes, broadcast, against them gives
/// each column two 16-bit pair sums, added in 16 bits over `run` groups, then summed into
/// the column's i32 lane by `vpmaddwd` with ones.
#[target_feature(enable = "avx2")]
unsafe fn maddubs<const R: usize>(a: *const u8, kp: usize, b: *const u8, c: *mut i32, ldc: usize, run: usize) {
    let ones = _mm256_set1_epi16(1);
    let mut tot = [[_mm256_setzero_si256(); 2]; R];
    let groups = kp / 4;
    let mut g0 = 0;
    while g0 < groups {
        let end = groups.min(g0 + run.max(1));
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
