//! The direct single-channel 3x3 convolution with its 2x2 max-pool: the weights' form and a
//! portable reference (the AVX2 kernel is in `x86/direct.rs`). What a first layer over one
//! input channel runs instead of im2col, the GEMM and the pooling of its sums, with the same
//! exact integer sums and maxima.

use super::Kernel;

/// Pairs of taps per output channel: taps (0, 1), (2, 3), (4, 5), (6, 7) and (8, none).
pub const TAP_PAIRS: usize = 5;

/// Row stride of the sums for an output of side `o`: whole pairs of registers of 8.
pub fn out_stride(o: usize) -> usize {
    o.div_ceil(16) * 16
}

/// Weight codes `[c_out][9]` (tap `ky * 3 + kx`) as pairs: taps `2p` and `2p + 1` as the low
/// and high i16 of an i32 (the tenth tap zero), the form `vpmaddwd` multiplies.
pub fn tap_pairs(codes: &[i16], c_out: usize) -> Vec<i32> {
    let tap = |c: usize, t: usize| if t < 9 { codes[c * 9 + t] } else { 0 };
    (0..c_out)
        .flat_map(|c| {
            (0..TAP_PAIRS).map(move |p| (tap(c, 2 * p) as u16 as u32 | (tap(c, 2 * p + 1) as u16 as u32) << 16) as i32)
        })
        .collect()
}

/// The 2x2 max-pool (floor) of the sums of one single-channel image (`img`: `[side][side]`,
/// 16 bytes of slack after it) on `kernel`, into `out` `[c_out][p][p]` (`p = (side - 2) / 2`),
/// with `rows` (`c_out * out_stride(side - 2)` sums) as scratch; false where `kernel` has no
/// direct kernel (the caller then runs im2col and the GEMM).
pub fn single_channel_pooled(
    kernel: Kernel,
    img: &[u8],
    side: usize,
    taps: &[i32],
    c_out: usize,
    (rows, out): (&mut [i32], &mut [i32]),
) -> bool {
    assert!(kernel.supported(), "kernel {} is not supported by this CPU", kernel.name());
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 => {
            super::x86::single_channel_pooled_avx2(img, side, taps, c_out, rows, out);
            true
        }
        _ => false,
    }
}

/// Whether `kernel` runs [`single_channel_pooled`].
pub fn has_single_channel(kernel: Kernel) -> bool {
    cfg!(target_arch = "x86_64") && kernel == Kernel::Avx2
}

/// [`single_channel_pooled`] value by value: the reference the kernel is tested against.
pub fn single_channel_pooled_reference(img: &[u8], side: usize, taps: &[i32], c_out: usize, out: &mut [i32]) {
    let p = (side - 2) / 2;
    for c in 0..c_out {
        let w = |t: usize| {
            let v = taps[c * TAP_PAIRS + t / 2];
            (if t.is_multiple_of(2) { v as i16 } else { (v >> 16) as i16 }) as i32
        };
        let sum = |y: usize, x: usize| (0..9).map(|t| img[(y + t / 3) * side + x + t % 3] as i32 * w(t)).sum::<i32>();
        for (py, px) in (0..p).flat_map(|y| (0..p).map(move |x| (y, x))) {
            let (y, x) = (2 * py, 2 * px);
            out[(c * p + py) * p + px] = sum(y, x).max(sum(y, x + 1)).max(sum(y + 1, x)).max(sum(y + 1, x + 1));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The kernel's pooled sums equal the reference's, and the reference's the pooled
    /// plain 3x3 convolution of the codes, at extreme codes and odd and even sides.
    #[test]
    fn direct_sums_are_the_pooled_convolution() {
        let mut seed = 9u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as i32
        };
        for (side, c_out) in [(28, 8), (30, 5), (9, 16), (4, 1), (13, 3), (35, 2)] {
            let (o, p) = (side - 2, (side - 2) / 2);
            let mut img: Vec<u8> =
                (0..side * side).map(|_| [0, 255, (next() % 256) as u8][(next() % 3) as usize]).collect();
            img.extend([0u8; 16]);
            let codes: Vec<i16> =
                (0..c_out * 9).map(|_| [-128, 127, (next() % 255 - 127) as i16][(next() % 3) as usize]).collect();
            let taps = tap_pairs(&codes, c_out);
            let mut want = vec![0i32; c_out * p * p];
            single_channel_pooled_reference(&img, side, &taps, c_out, &mut want);
            let conv = |c: usize, y: usize, x: usize| -> i32 {
                (0..9).map(|t| img[(y + t / 3) * side + x + t % 3] as i32 * codes[c * 9 + t] as i32).sum()
            };
            for (c, py, px) in (0..c_out).flat_map(|c| (0..p).flat_map(move |y| (0..p).map(move |x| (c, y, x)))) {
                let m = [(0, 0), (0, 1), (1, 0), (1, 1)].map(|(dy, dx)| conv(c, 2 * py + dy, 2 * px + dx));
                assert_eq!(want[(c * p + py) * p + px], m.into_iter().max().unwrap_or(0), "o {o}");
            }
            for kernel in Kernel::ALL.into_iter().filter(|k| k.supported() && has_single_channel(*k)) {
                let (mut rows, mut got) = (vec![0i32; c_out * out_stride(o)], vec![0i32; want.len()]);
                assert!(single_channel_pooled(kernel, &img, side, &taps, c_out, (&mut rows, &mut got)));
                assert_eq!(got, want, "side {side}, {c_out} channels, {}", kernel.name());
            }
        }
    }
}
