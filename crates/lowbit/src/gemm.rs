//! Integer matrix products for the engine: `C[m][n] = sum_k A[m][k] * B[k][n]` with unsigned
//! 8-bit activation codes `A`, signed 8-bit weight codes `B` and exact i32 sums.
//!
//! Weights are packed once per model into panels of 16 output columns; inside a panel, `k`
//! runs in groups of 4 and each group holds 16 columns x 4 bytes (64 bytes, one AVX-512
//! register). Five kernels give identical sums:
//! - `Vnni512`: AVX-512 VNNI `vpdpbusd` (u8 x i8, four products per i32 lane), a register
//!   block of up to 8 rows x 32 columns;
//! - `AvxVnni`: AVX-VNNI `vpdpbusd` on 256-bit registers (CPUs with AVX-VNNI but no
//!   AVX-512), on the same byte layout: a register block of 6 rows x 16 columns;
//! - `Avx2`: AVX2 on two copies of the weights, i16 pairs of depths per column and the byte
//!   layout (`x86/pairs.rs`, `x86/bytes.rs`). `vpmaddubsw` (u8 x i8, 32 products per
//!   instruction, 16-bit pair sums) wherever no pair sum can saturate: on every code when a
//!   call's largest code allows it (its 16-bit sums then added over as many groups of depths
//!   as stay exact), else on the codes clamped to the largest that cannot saturate (129 for
//!   weights up to 127) with the remainders' products added by `vpmaddwd` over the pairs
//!   where they are nonzero. Long rows that are mostly zero (images) run `vpmaddwd` one row
//!   at a time over their nonzero pairs; what is left, per register block of 6 rows x 16
//!   columns over the pairs where some row is nonzero;
//! - `NeonSdot`: aarch64 NEON `sdot` (i8 x i8, four products per i32 lane) on the same
//!   byte layout, the activation codes' top bit flipped and `128 * colsum` added back
//!   (`neon.rs`): a register block of 4 rows x 16 columns;
//! - `Portable`: the `avx2` kernel's i16 pairs as outer products, 2 rows x 16 columns at a
//!   time, through `wide`'s portable vectors (SSE2 `pmaddwd`, NEON `smull`, plain
//!   arithmetic elsewhere); any CPU.
//!
//! [`Kernel::detect`] picks the fastest one the CPU has at run time; the kernels are named
//! once, in [`mpq_net::simd::Kernel`].

/// Output columns per packed panel.
pub const PANEL: usize = 16;
/// Rows of `A` handled by one call of the SIMD kernels.
const MR: usize = 8;
/// Rows of the `avx2` register block (12 of AVX2's 16 registers hold its sums).
const AVX2_ROWS: usize = 6;
/// Depth from which the `avx2` and `portable` kernels list the depth pairs where codes are
/// nonzero (per block of rows, or per row for images and the `avx2` byte kernel's
/// remainders): below it (a 3x3 convolution over few channels) listing them cost more than
/// it saved (the CNN's search on the `avx2` kernel ran 15% faster).
const SPARSE_DEPTH: usize = 128;
/// Rows of the `neon-sdot` register block (16 of NEON's 32 registers hold its sums).
const SDOT_ROWS: usize = 4;

pub use mpq_net::simd::Kernel;

/// Rows of `A` in one register block of `kernel`: batches split in multiples of it waste no
/// block.
pub fn block_rows(kernel: Kernel) -> usize {
    match kernel {
        Kernel::Vnni512 => MR,
        Kernel::Avx2 | Kernel::AvxVnni => AVX2_ROWS,
        Kernel::NeonSdot => SDOT_ROWS,
        Kernel::Portable => portable::ROWS,
    }
}

/// Rounds `n` up to whole panels.
fn padded_cols(n: usize) -> usize {
    n.div_ceil(PANEL) * PANEL
}

/// How the codes are laid out for the kernel that will read them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layout {
    /// One i8 per code: panels of 16 columns, groups of 4 depths (`vnni512`, `avxvnni`,
    /// `neon-sdot`).
    Bytes,
    /// One i16 per code: panels of 16 columns, pairs of depths, the two depths of a column
    /// adjacent (`avx2`, `portable`).
    Pairs,
    /// Two codes per byte, offset by 8 (`vnni512` at 4 bits or fewer): byte `j` of a 64-byte
    /// block holds group `2h` in its low nibble and group `2h + 1` in its high nibble.
    Nibbles,
}

/// Weight codes packed for one kernel, with the column sums the zero-point correction needs.
pub struct PackedB {
    /// Depth the activation rows must be padded to (zeros).
    pub kp: usize,
    /// Columns padded to whole panels (the row stride of the sums).
    pub np: usize,
    /// `sum_k B[k][n]` per column (padding columns 0).
    pub colsum: Vec<i32>,
    layout: Layout,
    bytes: Vec<u8>,
    wide: Vec<i16>,
    /// Largest weight magnitude: with the activations' largest code it bounds every 16-bit
    /// pair sum of `vpmaddubsw`.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    wmax: i32,
}

impl PackedB {
    /// Packs `w`, stored `[n][k]` (one row per output), as `B = w^T` for `kernel`. Codes of
    /// `bits` <= 4 lie in -8..=7 and stay two per byte for `vnni512` (unpacked in registers);
    /// wider codes must fit in i8.
    pub fn new(kernel: Kernel, w: &[i16], n: usize, k: usize, bits: u32) -> PackedB {
        let layout = match kernel {
            Kernel::Vnni512 if bits <= 4 => Layout::Nibbles,
            Kernel::Vnni512 | Kernel::AvxVnni | Kernel::NeonSdot => Layout::Bytes,
            Kernel::Avx2 | Kernel::Portable => Layout::Pairs,
        };
        let np = padded_cols(n);
        let kp = if layout == Layout::Nibbles { k.div_ceil(8) * 8 } else { k.div_ceil(4) * 4 };
        let mut colsum = vec![0i32; np];
        let (mut bytes, mut wide) = (Vec::new(), Vec::new());
        match layout {
            Layout::Bytes => bytes = vec![0u8; kp * np],
            Layout::Nibbles => bytes = vec![0x88u8; kp * np / 2],
            Layout::Pairs => wide = vec![0i16; kp * np],
        }
        // `avx2` keeps a byte copy too where the codes fit a byte (`vpmaddubsw`).
        let byte_copy = kernel == Kernel::Avx2 && w[..n * k].iter().all(|&v| i8::try_from(v).is_ok());
        if byte_copy {
            bytes = vec![0u8; kp * np];
        }
        for col in 0..n {
            let (panel, c) = (col / PANEL, col % PANEL);
            for kk in 0..k {
                let v = w[col * k + kk];
                colsum[col] += v as i32;
                let (g, j) = (kk / 4, c * 4 + kk % 4);
                match layout {
                    Layout::Bytes => bytes[panel * kp * PANEL + g * 4 * PANEL + j] = v as i8 as u8,
                    Layout::Nibbles => {
                        let at = panel * kp * PANEL / 2 + (g / 2) * 4 * PANEL + j;
                        let shift = 4 * (g % 2);
                        bytes[at] = (bytes[at] & !(0x0F << shift)) | ((((v + 8) as u8) & 0x0F) << shift);
                    }
                    Layout::Pairs => wide[panel * kp * PANEL + (kk / 2) * 2 * PANEL + c * 2 + kk % 2] = v,
                }
                if byte_copy {
                    bytes[panel * kp * PANEL + g * 4 * PANEL + j] = v as i8 as u8;
                }
            }
        }
        let wmax = w[..n * k].iter().map(|&v| (v as i32).abs()).max().unwrap_or(0);
        PackedB { kp, np, colsum, layout, bytes, wide, wmax }
    }
}

/// `c[i * np + j] = sum_k a[i * kp + k] * B[k][j]` for `m` rows; `a` holds `m` rows of `kp`
/// codes (padding zero), `c` holds `m` rows of `np` sums. Panics if `kernel` is unsupported.
pub fn gemm(kernel: Kernel, a: &[u8], m: usize, b: &PackedB, c: &mut [i32]) {
    assert!(a.len() >= m * b.kp && c.len() >= m * b.np, "gemm operands too short");
    assert!(kernel.supported(), "kernel {} is not supported by this CPU", kernel.name());
    let fits = match b.layout {
        Layout::Bytes => matches!(kernel, Kernel::Vnni512 | Kernel::AvxVnni | Kernel::NeonSdot),
        Layout::Pairs => matches!(kernel, Kernel::Avx2 | Kernel::Portable),
        Layout::Nibbles => kernel == Kernel::Vnni512,
    };
    assert!(fits, "weights packed as {:?} cannot run on kernel {}", b.layout, kernel.name());
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Vnni512 => x86::gemm_vnni(a, m, b, c),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => x86::gemm_avx2(a, m, b, c),
        #[cfg(target_arch = "x86_64")]
        Kernel::AvxVnni => x86::gemm_avxvnni(a, m, b, c),
        #[cfg(target_arch = "aarch64")]
        Kernel::NeonSdot => neon::gemm_sdot(a, m, b, c),
        _ => gemm_portable(a, m, b, c),
    }
}

/// One row of a 2x2 max-pool of sums stored pixel-major in rows of `n`: window `w` of `out`
/// (`n` values) is the elementwise max of pixels `2w` and `2w + 1` of `top` and `bottom`.
/// Vectorized with the kernel's instruction set (baseline x86-64 has no 32-bit max).
pub fn max_pool_row(kernel: Kernel, (top, bottom): (&[i32], &[i32]), n: usize, out: &mut [i32]) {
    assert!(kernel.supported(), "kernel {} is not supported by this CPU", kernel.name());
    let windows = out.len() / n.max(1);
    assert!(top.len() >= 2 * windows * n && bottom.len() >= 2 * windows * n, "pool rows too short");
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Vnni512 | Kernel::Avx2 | Kernel::AvxVnni if n.is_multiple_of(8) => {
            x86::max_pool_row_avx2(top, bottom, n, out)
        }
        _ => portable::max_pool_row(top, bottom, n, out),
    }
}

pub mod direct;
mod portable;
mod quantize;
use portable::gemm_portable;
pub use quantize::{InputQuant, input_codes, input_codes3};

#[cfg(target_arch = "x86_64")]
#[allow(unsafe_code)]
mod x86;

#[cfg(target_arch = "aarch64")]
#[allow(unsafe_code)]
mod neon;

/// `(first row, rows)` of register blocks of at most `max` rows covering `m` rows, as even
/// as possible (32 rows by 6: 6, 6, 5, 5, 5, 5, not 5 x 6 + 2): a block of few rows loads
/// each weight for few products.
fn even_blocks(m: usize, max: usize) -> impl Iterator<Item = (usize, usize)> {
    let blocks = m.div_ceil(max);
    let (base, extra) = (m / blocks.max(1), m % blocks.max(1));
    (0..blocks).map(move |k| (k * base + k.min(extra), base + usize::from(k < extra)))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Codes at the byte kernel's limits: pairs of the largest code whose `vpmaddubsw` pair
    /// sums cannot saturate against the largest weights, a few pairs one above it (and a few
    /// at 255), for weights up to 127 and with a -128.
    #[test]
    fn codes_at_the_saturation_limit_stay_exact() {
        let (m, k, n) = (9, 200, 32);
        for (wmax, big) in [(127i32, false), (127, true), (128, false), (128, true)] {
            let top = (i16::MAX as i32 / (2 * wmax)) as u8;
            let w: Vec<i16> = (0..n * k).map(|i| if i % 7 == 3 { -wmax as i16 } else { 127 }).collect();
            let code = |p: usize| match p % 16 {
                3 => top + 1,
                9 if big => 255,
                _ => top,
            };
            let x: Vec<u8> = (0..m * k).map(|i| code(i / 2 + i / k)).collect();
            for kernel in Kernel::ALL.into_iter().filter(|k| k.supported()) {
                let b = PackedB::new(kernel, &w, n, k, 8);
                let mut c = vec![0i32; m * b.np];
                gemm(kernel, &x, m, &b, &mut c);
                for i in 0..m {
                    for j in 0..n {
                        let want: i32 = (0..k).map(|t| x[i * k + t] as i32 * w[j * k + t] as i32).sum();
                        assert_eq!(c[i * b.np + j], want, "{} wmax {wmax} big {big} at ({i},{j})", kernel.name());
                    }
                }
            }
        }
    }

    /// Every supported kernel equals the naive sum on awkward shapes and extreme codes.
    #[test]
    fn kernels_match_naive_sums() {
        let mut seed = 7u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as i64
        };
        for &(m, k, n) in &[
            (1, 1, 1),
            (2, 40, 16),
            (3, 9, 8),
            (8, 72, 16),
            (13, 784, 40),
            (9, 130, 33),
            (17, 64, 64),
            (32, 100, 24),
            (7, 256, 16),
            (40, 784, 100),
            (1, 300, 64),
        ] {
            // Sparsity 0: random codes; 1: zeros in patterns; 2: 85% zeros, as in images
            // (the `avx2` kernel then lists each row's nonzero pairs).
            for (bits, sparse) in [(8u32, 0), (7, 0), (4, 0), (2, 0), (8, 1), (4, 1), (8, 2), (6, 2)] {
                let half = 1i64 << (bits - 1);
                let w: Vec<i16> = (0..n * k).map(|_| (next() % (2 * half) - half) as i16).collect();
                let mut x: Vec<u8> = (0..m * k).map(|i| if i % 5 == 0 { 255 } else { (next() % 256) as u8 }).collect();
                if sparse == 2 {
                    x.iter_mut().for_each(|v| *v = if next() % 100 < 85 { 0 } else { *v });
                }
                if sparse == 1 {
                    // Depths zero in every row, runs of 8 zero in some rows only, and zeros
                    // scattered over the rest, as in images.
                    let zero = |i: usize, t: usize| {
                        t % 6 < 3 || t / 8 % 5 == 1 || (t / 8 + i).is_multiple_of(3) || (i + t).is_multiple_of(4)
                    };
                    x.iter_mut().enumerate().filter(|(at, _)| zero(at / k, at % k)).for_each(|(_, v)| *v = 0);
                }
                for kernel in Kernel::ALL.into_iter().filter(|k| k.supported()) {
                    let b = PackedB::new(kernel, &w, n, k, bits);
                    let mut a = vec![0u8; m * b.kp];
                    for i in 0..m {
                        a[i * b.kp..i * b.kp + k].copy_from_slice(&x[i * k..(i + 1) * k]);
                    }
                    let mut c = vec![-1i32; m * b.np];
                    gemm(kernel, &a, m, &b, &mut c);
                    for i in 0..m {
                        for j in 0..n {
                            let want: i32 = (0..k).map(|t| x[i * k + t] as i32 * w[j * k + t] as i32).sum();
                            let at =
                                format!("{} {bits} bits m{m} k{k} n{n} sparse {sparse} at ({i},{j})", kernel.name());
                            assert_eq!(c[i * b.np + j], want, "{at}");
                        }
                    }
                    let cs: Vec<i32> = (0..n).map(|j| (0..k).map(|t| w[j * k + t] as i32).sum()).collect();
                    assert_eq!(&b.colsum[..n], &cs[..]);
                }
            }
        }
    }
}
