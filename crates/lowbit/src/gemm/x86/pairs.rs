//! The `avx2` kernel on i16 codes (`vpmaddwd`, pairs of depths), exact for every width.
//! Two drivers: register blocks of up to `AVX2_ROWS` rows over every pair of depths (short
//! depths: 3x3 convolutions over few channels), and one row at a time over only the pairs
//! where that row is nonzero (long depths: images are mostly zero pixels, and activations
//! after a ReLU half zero). Safety as in the parent module.
use super::super::{AVX2_ROWS, PANEL, PackedB, even_blocks};
use crate::scratch;
use std::arch::x86_64::*;
use std::cell::RefCell;

/// Rows whose nonzero pairs are listed at once: their lists stay in cache while every
/// panel of weights is visited (a panel of a 784-deep layer, 25 KB, stays in L1 meanwhile).
const ROW_GROUP: usize = 16;

/// Panels one pass over a row's list visits: each entry's codes broadcast once for 64
/// columns.
const ROW_PANELS: usize = 4;

thread_local! {
    /// The nonzero pairs of a group of rows: each pair's offset in a panel of `b.wide`
    /// (i16 values)...
    static OFFSETS: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// ...and its two codes as the low and high i16 of an i32, ready to broadcast.
    static CODES: RefCell<Vec<i32>> = const { RefCell::new(Vec::new()) };
    static LIVE: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
    static WIDE: RefCell<Vec<i16>> = const { RefCell::new(Vec::new()) };
}

/// For each mask of 8 lanes, the lanes whose bit is set, in order (then zeros): the
/// permutation that packs a vector's nonzero pairs to its front.
static PACK: [[u32; 8]; 256] = pack_table();

/// [`PACK`], built at compile time.
const fn pack_table() -> [[u32; 8]; 256] {
    let mut t = [[0u32; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let (mut lane, mut n) = (0, 0);
        while lane < 8 {
            if m & (1 << lane) != 0 {
                t[m][n] = lane as u32;
                n += 1;
            }
            lane += 1;
        }
        m += 1;
    }
    t
}

/// Register blocks of up to `AVX2_ROWS` rows, split evenly, over the pairs of depths where
/// some row of the block is nonzero (listed where `sparse`, else every pair).
pub(in crate::gemm) fn gemm_blocks(a: &[u8], m: usize, b: &PackedB, c: &mut [i32], sparse: bool) {
    let (kp, np) = (b.kp, b.np);
    assert!(a.len() >= m * kp && b.wide.len() >= kp * np && c.len() >= m * np);
    let kernels: [BlockKernel; AVX2_ROWS] = [avx2::<1>, avx2::<2>, avx2::<3>, avx2::<4>, avx2::<5>, avx2::<6>];
    // One block's codes widened at a time: they stay in cache for every panel.
    scratch::with(&LIVE, kp / 2, 0, |live| {
        scratch::with(&WIDE, AVX2_ROWS * kp, 0, |a16| {
            let mut n_live = kp / 2;
            if !sparse {
                live.iter_mut().enumerate().for_each(|(g, v)| *v = g);
            }
            for (i0, rows) in even_blocks(m, AVX2_ROWS) {
                let block = &a[i0 * kp..(i0 + rows) * kp];
                if sparse {
                    // SAFETY: the features were checked by the caller.
                    n_live = unsafe { live_pairs(block, kp, live) };
                }
                // SAFETY: as above.
                unsafe { widen(block, &mut a16[..rows * kp]) };
                for p in 0..np / PANEL {
                    // SAFETY: the features were checked by the caller; the block's `rows`
                    // rows of `a16`, panel p of `b.wide` and its 16 columns of those rows of
                    // `c` lie inside the lengths asserted above, and every listed pair is
                    // below kp / 2.
                    unsafe {
                        let (bp, cp) = (b.wide.as_ptr().add(p * kp * PANEL), c.as_mut_ptr().add(i0 * np + p * PANEL));
                        kernels[rows - 1](a16.as_ptr(), kp, bp, cp, np, &live[..n_live]);
                    }
                }
            }
        })
    })
}

/// Replaces the start of `live` with the depth pairs (`g`: codes `2g`, `2g + 1`) where some
/// row of `block` (rows of `kp` codes) is nonzero, in increasing order, and returns how many:
/// 32 codes of every row OR-ed in a register, the zero pairs masked out, the set bits walked.
#[target_feature(enable = "avx2")]
fn live_pairs(block: &[u8], kp: usize, live: &mut [usize]) -> usize {
    let mut n = 0;
    let whole = kp / 32 * 32;
    for d in (0..whole).step_by(32) {
        let mut v = _mm256_setzero_si256();
        for row in block.chunks_exact(kp) {
            // SAFETY: codes d..d + 32 lie inside the row.
            v = _mm256_or_si256(v, unsafe { _mm256_loadu_si256(row.as_ptr().add(d).cast()) });
        }
        let mut bits = nonzero_pair_bits(v);
        while bits != 0 {
            live[n] = d / 2 + bits.trailing_zeros() as usize / 2;
            n += 1;
            bits &= bits - 1;
        }
    }
    for g in whole / 2..kp / 2 {
        if block.chunks_exact(kp).any(|r| r[2 * g] | r[2 * g + 1] != 0) {
            live[n] = g;
            n += 1;
        }
    }
    n
}

/// What [`gemm_rows`] does with its sums.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Rows {
    /// Writes them, unless more than half of the first rows' pairs are nonzero
    /// (activations after a ReLU): there the register blocks are faster.
    IfSparse,
    /// Adds them to what `c` holds (the remainders of the byte kernel's split).
    Add,
}

/// One row at a time over the pairs of depths where that row is nonzero, `ROW_PANELS`
/// panels per pass: each weight load serves one row only, but a row of an image visits half
/// the pairs that a block of six rows has to (where any of the six is nonzero). Returns
/// whether it computed the sums (see [`Rows`]).
pub(super) fn gemm_rows(a: &[u8], m: usize, b: &PackedB, c: &mut [i32], mode: Rows) -> bool {
    let (kp, np) = (b.kp, b.np);
    assert!(a.len() >= m * kp && b.wide.len() >= kp * np && c.len() >= m * np);
    let group = ROW_GROUP.min(m);
    // SAFETY: the features were checked by the caller.
    if mode == Rows::IfSparse && 2 * unsafe { count_nonzero_pairs(&a[..group * kp]) } > group * kp / 2 {
        return false;
    }
    // Room for a group's pairs and the 8 lanes the last store may write past them.
    let room = group * kp / 2 + 8;
    scratch::with(&OFFSETS, room, 0, |offsets| {
        scratch::with(&CODES, room, 0, |codes| {
            let mut starts = [0usize; ROW_GROUP + 1];
            for i0 in (0..m).step_by(ROW_GROUP) {
                let rows = ROW_GROUP.min(m - i0);
                for (r, row) in a[i0 * kp..(i0 + rows) * kp].chunks_exact(kp).enumerate() {
                    let at = starts[r];
                    // SAFETY: the features were checked by the caller; a row has kp / 2
                    // pairs, and 8 more fit.
                    starts[r + 1] = at + unsafe { nonzero_pairs(row, &mut offsets[at..], &mut codes[at..]) };
                }
                for p in (0..np / PANEL).step_by(ROW_PANELS) {
                    let take = ROW_PANELS.min(np / PANEL - p);
                    let panels = &b.wide[p * kp * PANEL..(p + take) * kp * PANEL];
                    for r in 0..rows {
                        let at = (i0 + r) * np + p * PANEL;
                        let span = starts[r]..starts[r + 1];
                        let pairs = (&offsets[span.clone()], &codes[span]);
                        let out = &mut c[at..at + take * PANEL];
                        // SAFETY: as above; every offset lies inside each panel (below
                        // kp * PANEL - 2 * PANEL + 1), and `take` panels of sums of the row
                        // lie inside c.
                        unsafe { row_kernel(take, mode)(pairs, panels.as_ptr(), kp * PANEL, out) };
                    }
                }
            }
            true
        })
    })
}

/// A row's nonzero pairs (offsets, codes) x `P` panels of weights (stride), into `16 * P`
/// sums.
type RowKernel = unsafe fn((&[u32], &[i32]), *const i16, usize, &mut [i32]);

/// The row kernel for `take` panels (1 to `ROW_PANELS`) that writes or adds its sums.
fn row_kernel(take: usize, mode: Rows) -> RowKernel {
    match (take, mode) {
        (4, Rows::IfSparse) => avx2_row::<4, false>,
        (3, Rows::IfSparse) => avx2_row::<3, false>,
        (2, Rows::IfSparse) => avx2_row::<2, false>,
        (_, Rows::IfSparse) => avx2_row::<1, false>,
        (4, Rows::Add) => avx2_row::<4, true>,
        (3, Rows::Add) => avx2_row::<3, true>,
        (2, Rows::Add) => avx2_row::<2, true>,
        (_, Rows::Add) => avx2_row::<1, true>,
    }
}

/// One bit per nonzero pair of the 32 codes in `v`: bit `2j` for codes `2j`, `2j + 1`.
#[target_feature(enable = "avx2")]
fn nonzero_pair_bits(v: __m256i) -> u32 {
    // Two mask bits per pair; the even one stands for it.
    !(_mm256_movemask_epi8(_mm256_cmpeq_epi16(v, _mm256_setzero_si256())) as u32) & 0x5555_5555
}

/// How many pairs of codes (`2g`, `2g + 1`) of `codes` are nonzero.
#[target_feature(enable = "avx2")]
pub(super) fn count_nonzero_pairs(codes: &[u8]) -> usize {
    let whole = codes.len() / 32 * 32;
    let mut n = 0;
    for d in (0..whole).step_by(32) {
        // SAFETY: codes d..d + 32 lie inside the slice.
        let v = unsafe { _mm256_loadu_si256(codes.as_ptr().add(d).cast()) };
        n += nonzero_pair_bits(v).count_ones() as usize;
    }
    n + codes[whole..].chunks_exact(2).filter(|p| p[0] | p[1] != 0).count()
}

/// Writes `row`'s nonzero pairs at the start of `offsets` and `codes` (room for
/// `row.len() / 2 + 8`) and returns how many: 16 codes at a time widened to 8 pairs of
/// i16 (one i32 lane each), the nonzero lanes packed to the front by a permutation from
/// [`PACK`] and stored whole, the count advanced by how many there were.
#[target_feature(enable = "avx2")]
fn nonzero_pairs(row: &[u8], offsets: &mut [u32], codes: &mut [i32]) -> usize {
    assert!(offsets.len() >= row.len() / 2 + 8 && codes.len() >= row.len() / 2 + 8);
    let (mut n, whole) = (0, row.len() / 16 * 16);
    let lanes = _mm256_setr_epi32(0, 32, 64, 96, 128, 160, 192, 224);
    for d in (0..whole).step_by(16) {
        // SAFETY: codes d..d + 16 lie inside the row; 8 lanes from n fit both outputs (n is
        // at most d / 2).
        unsafe {
            let v = _mm256_cvtepu8_epi16(_mm_loadu_si128(row.as_ptr().add(d).cast()));
            let zero = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(v, _mm256_setzero_si256())));
            let live = !zero as usize & 0xFF;
            let order = _mm256_loadu_si256(PACK[live].as_ptr().cast());
            let off = _mm256_add_epi32(lanes, _mm256_set1_epi32((d / 2 * 2 * PANEL) as i32));
            _mm256_storeu_si256(codes.as_mut_ptr().add(n).cast(), _mm256_permutevar8x32_epi32(v, order));
            _mm256_storeu_si256(offsets.as_mut_ptr().add(n).cast(), _mm256_permutevar8x32_epi32(off, order));
            n += live.count_ones() as usize;
        }
    }
    for g in whole / 2..row.len() / 2 {
        if row[2 * g] | row[2 * g + 1] != 0 {
            (offsets[n], codes[n]) = ((g * 2 * PANEL) as u32, row[2 * g] as i32 | (row[2 * g + 1] as i32) << 16);
            n += 1;
        }
    }
    n
}

/// One row x `P` panels over its nonzero pairs: each pair's codes broadcast once against
/// the pair's two registers of 8 columns x 2 weights in each panel. The sums are added to `c`
/// where `ADD`, else written.
///
/// # Safety
/// AVX2 is available, `panel` holds `P` panels of `kp * PANEL` weights (stride `stride`)
/// with every offset below `kp * PANEL - 2 * PANEL + 1`, and `c` holds `16 * P` sums.
#[target_feature(enable = "avx2")]
unsafe fn avx2_row<const P: usize, const ADD: bool>(
    (offsets, codes): (&[u32], &[i32]),
    panel: *const i16,
    stride: usize,
    c: &mut [i32],
) {
    let mut acc = [[_mm256_setzero_si256(); 2]; P];
    for (&off, &v) in offsets.iter().zip(codes) {
        let x = _mm256_set1_epi32(v);
        for (p, a) in acc.iter_mut().enumerate() {
            // SAFETY: the caller keeps off + 2 * PANEL within each of the P panels.
            let (w0, w1) = unsafe {
                let at = panel.add(p * stride + off as usize);
                (_mm256_loadu_si256(at.cast()), _mm256_loadu_si256(at.add(PANEL).cast()))
            };
            a[0] = _mm256_add_epi32(a[0], _mm256_madd_epi16(x, w0));
            a[1] = _mm256_add_epi32(a[1], _mm256_madd_epi16(x, w1));
        }
    }
    assert!(c.len() >= P * PANEL);
    for (p, a) in acc.iter().enumerate() {
        // SAFETY: 16 sums of panel p inside c (asserted).
        unsafe {
            let (lo, hi) = (c.as_mut_ptr().add(p * PANEL), c.as_mut_ptr().add(p * PANEL + 8));
            let (mut s0, mut s1) = (a[0], a[1]);
            if ADD {
                s0 = _mm256_add_epi32(s0, _mm256_loadu_si256(lo.cast()));
                s1 = _mm256_add_epi32(s1, _mm256_loadu_si256(hi.cast()));
            }
            _mm256_storeu_si256(lo.cast(), s0);
            _mm256_storeu_si256(hi.cast(), s1);
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

/// The i16 kernel's register block: `R` rows of codes (`kp` each), one panel, the pairs of
/// depths to visit, into 16 columns of `R` rows of sums (row stride `ldc`).
type BlockKernel = unsafe fn(*const i16, usize, *const i16, *mut i32, usize, &[usize]);

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
