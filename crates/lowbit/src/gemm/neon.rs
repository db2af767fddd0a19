//! The aarch64 kernel: NEON `sdot` (the dot-product extension of ARMv8.2 and later: Apple
//! M1 and later, Graviton 2 and later, Cortex-A55/A76 and later) on the byte layout the
//! x86 VNNI kernels read.
//!
//! `sdot` multiplies signed bytes by signed bytes, and activation codes are unsigned
//! (0..=255). Flipping the top bit turns a code `a` into the signed byte `a - 128`, so the
//! kernel sums `(a - 128) * w` and adds `128 * sum_k w` (the packed column sums) at the end:
//! the same integer, exact (each product is at most 2^14 in magnitude, and the final sum
//! fits i32 as every kernel's does; i32 lanes wrap, so an intermediate that would not fit
//! still ends exact).

use super::{PANEL, PackedB, SDOT_ROWS, even_blocks};
use std::arch::aarch64::*;
use std::arch::asm;

/// A register-block kernel: `R` rows of codes (`kp` each) times one panel of weights and its
/// 16 column sums, into 16 columns of `R` rows of sums (row stride `ldc`).
type Block = unsafe fn(*const u8, usize, *const u8, *const i32, *mut i32, usize);

/// For every panel, register blocks of up to [`SDOT_ROWS`] rows, split evenly.
pub(super) fn gemm_sdot(a: &[u8], m: usize, b: &PackedB, c: &mut [i32]) {
    let (kp, np) = (b.kp, b.np);
    assert!(a.len() >= m * kp && b.bytes.len() >= kp * np && b.colsum.len() >= np && c.len() >= m * np);
    let kernels: [Block; SDOT_ROWS] = [sdot::<1>, sdot::<2>, sdot::<3>, sdot::<4>];
    for p in 0..np / PANEL {
        for (i0, rows) in even_blocks(m, SDOT_ROWS) {
            // SAFETY: the caller checked the CPU has `dotprod`; rows i0..i0+rows of `a`,
            // panel p of the weights, its 16 column sums and those rows' 16 columns of `c` lie
            // inside the lengths asserted above.
            unsafe {
                let (ap, bp) = (a.as_ptr().add(i0 * kp), b.bytes.as_ptr().add(p * kp * PANEL));
                let cp = c.as_mut_ptr().add(i0 * np + p * PANEL);
                kernels[rows - 1](ap, kp, bp, b.colsum.as_ptr().add(p * PANEL), cp, np);
            }
        }
    }
}

/// `acc += ` for each of its 4 lanes, the dot product of that lane's 4 bytes of `w` with the
/// 4 bytes of `x`'s lane `L` (`sdot` by element). Written as assembly: the intrinsic
/// `vdotq_laneq_s32` is not stable Rust.
#[target_feature(enable = "neon,dotprod")]
#[inline]
fn sdot_lane<const L: i32>(mut acc: int32x4_t, w: int8x16_t, x: int8x16_t) -> int32x4_t {
    // SAFETY: the function's target features make its callers check `dotprod`; the
    // instruction reads and writes registers only.
    unsafe {
        asm!(
            "sdot {acc:v}.4s, {w:v}.16b, {x:v}.4b[{l}]",
            acc = inout(vreg) acc, w = in(vreg) w, x = in(vreg) x, l = const L,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// The 64 weight bytes of one group of 4 depths: 4 registers of 4 columns x 4 depths.
///
/// # Safety
/// `b` must point at 64 readable bytes.
#[inline(always)]
unsafe fn group(b: *const u8) -> [int8x16_t; 4] {
    // SAFETY: the caller guarantees 64 readable bytes.
    unsafe { [0, 16, 32, 48].map(|o| vld1q_s8(b.add(o).cast())) }
}

/// `R` rows x one panel. Four groups of depths at a time: one 16-byte load per row (its
/// top bits flipped once) feeds 16 `sdot` by element; leftover groups broadcast a row's 4
/// codes. Each output starts from `128 * colsum`.
#[target_feature(enable = "neon,dotprod")]
unsafe fn sdot<const R: usize>(a: *const u8, kp: usize, b: *const u8, colsum: *const i32, c: *mut i32, ldc: usize) {
    let flip = vdupq_n_u8(0x80);
    let mut acc = [[vdupq_n_s32(0); 4]; R];
    let groups = kp / 4;
    let mut g = 0;
    // SAFETY (all blocks below): rows 0..R of `a` hold `kp` codes each and the panel holds
    // `groups` groups of 64 bytes; `g` stays below `groups`.
    macro_rules! lane {
        ($x:expr, $l:literal) => {
            let w = unsafe { group(b.add((g + $l) * 4 * PANEL)) };
            for (row, x) in acc.iter_mut().zip(&$x) {
                for (s, w) in row.iter_mut().zip(w) {
                    *s = sdot_lane::<$l>(*s, w, *x);
                }
            }
        };
    }
    while g + 4 <= groups {
        let x: [int8x16_t; R] =
            std::array::from_fn(|r| vreinterpretq_s8_u8(veorq_u8(unsafe { vld1q_u8(a.add(r * kp + 4 * g)) }, flip)));
        lane!(x, 0);
        lane!(x, 1);
        lane!(x, 2);
        lane!(x, 3);
        g += 4;
    }
    while g < groups {
        let x: [int8x16_t; R] = std::array::from_fn(|r| {
            let four = unsafe { a.add(r * kp + 4 * g).cast::<u32>().read_unaligned() };
            vreinterpretq_s8_u8(veorq_u8(vreinterpretq_u8_u32(vdupq_n_u32(four)), flip))
        });
        lane!(x, 0);
        g += 1;
    }
    for q in 0..4 {
        // SAFETY: the panel has 16 column sums, and rows 0..R of `c` 16 columns.
        unsafe {
            let base = vshlq_n_s32::<7>(vld1q_s32(colsum.add(4 * q)));
            for (r, row) in acc.iter().enumerate() {
                vst1q_s32(c.add(r * ldc + 4 * q), vaddq_s32(row[q], base));
            }
        }
    }
}
