//! Which instruction set the host kernels run with, chosen once at run time. Every path runs
//! the same Rust code (the same operations in the same order; Rust never fuses a multiply
//! and an add), so results are bit-identical and only speed differs: the compiler merely
//! uses wider vectors across independent output elements. The level comes from
//! [`mpq_net::simd::level`] (`MPQ_HOST_SIMD=portable` forces the baseline x86-64 path, to
//! show the results do not change).
// Safety: the only unsafe code calls `#[target_feature(enable = "avx2")]` functions, and only
// after `mpq_net::simd::level()` (which only reports what the CPU has) confirmed AVX2.
#![allow(unsafe_code)]

/// An instruction-set path of the host kernels: [`Path::Avx2`] or [`Path::Portable`] of the
/// kernels named in [`mpq_net::simd::Kernel`].
pub use mpq_net::simd::Kernel as Path;

/// The path in use: AVX2 where [`mpq_net::simd::level`] has it.
pub fn path() -> Path {
    if Path::Avx2.supported() { Path::Avx2 } else { Path::Portable }
}

/// [`super::kernels::linear_body`] on `path` (falls back to portable where unsupported).
pub fn linear_on(path: Path, x: &[f32], w: &[f32], b: &[f32], d_in: usize, d_out: usize, out: &mut [f32]) {
    #[cfg(target_arch = "x86_64")]
    if path == Path::Avx2 && path.supported() {
        // SAFETY: AVX2 was detected just above.
        return unsafe { linear_avx2(x, w, b, d_in, d_out, out) };
    }
    let _ = path;
    super::kernels::linear_body(x, w, b, d_in, d_out, out)
}

/// [`super::kernels::conv3x3_body`] on `path` (falls back to portable where unsupported).
pub fn conv3x3_on(path: Path, img: &[f32], w: &[f32], b: &[f32], c_in: usize, c_out: usize, side: usize) -> Vec<f32> {
    #[cfg(target_arch = "x86_64")]
    if path == Path::Avx2 && path.supported() {
        // SAFETY: AVX2 was detected just above.
        return unsafe { conv3x3_avx2(img, w, b, c_in, c_out, side) };
    }
    let _ = path;
    super::kernels::conv3x3_body(img, w, b, c_in, c_out, side)
}

/// `f()` compiled for `path` (it is inlined into an AVX2 function there): for loops of
/// exactly rounded operations whose order is written out, such as the gradients' sums,
/// which then give the same bits on every path.
pub fn run_on<R>(path: Path, f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    if path == Path::Avx2 && path.supported() {
        // SAFETY: AVX2 was detected just above.
        return unsafe { run_avx2(f) };
    }
    let _ = path;
    f()
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn run_avx2<R>(f: impl FnOnce() -> R) -> R {
    f()
}

/// `out[i] = f(x[i])` on `path`. `f` must be made of exactly rounded operations (arithmetic,
/// comparisons, floor, ceil, rounding): those give the same bits in any vector width, and
/// on the AVX2 path rounding compiles to an instruction instead of a libm call per value.
pub fn map_on(path: Path, x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32 + Copy) {
    #[cfg(target_arch = "x86_64")]
    if path == Path::Avx2 && path.supported() {
        // SAFETY: AVX2 was detected just above.
        return unsafe { map_avx2(x, out, f) };
    }
    let _ = path;
    map_body(x, out, f)
}

#[inline(always)]
fn map_body(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32 + Copy) {
    out.iter_mut().zip(x).for_each(|(o, &v)| *o = f(v));
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn map_avx2(x: &[f32], out: &mut [f32], f: impl Fn(f32) -> f32 + Copy) {
    map_body(x, out, f)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn linear_avx2(x: &[f32], w: &[f32], b: &[f32], d_in: usize, d_out: usize, out: &mut [f32]) {
    super::kernels::linear_body(x, w, b, d_in, d_out, out)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn conv3x3_avx2(img: &[f32], w: &[f32], b: &[f32], c_in: usize, c_out: usize, side: usize) -> Vec<f32> {
    use super::conv_avx2::{CHANNELS, tiles4};
    // The closure inherits this function's AVX2 feature, so it calls `tiles4` directly.
    let group = |s: &[f32], w: &[f32], b: &[f32], g, co, z: &mut [f32]| tiles4(s, w, b, g, co, z);
    super::kernels::conv3x3_with::<CHANNELS>(img, w, b, (c_in, c_out, side), group)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both paths give bit-identical outputs (a fifth of the values zero, negatives and
    /// awkward sizes included).
    #[test]
    fn paths_agree_bit_for_bit() {
        let covered = [("portable", true), ("avx2", Path::Avx2.supported())];
        mpq_net::simd::coverage("paths_agree_bit_for_bit", &covered).unwrap();
        let v = crate::tests::pattern;
        for (rows, d_in, d_out) in [(7, 13, 5), (4, 784, 37), (9, 64, 64)] {
            let (x, w, b) = (v(rows * d_in, 3), v(d_in * d_out, 5), v(d_out, 7));
            let (mut a, mut c) = (vec![0f32; rows * d_out], vec![0f32; rows * d_out]);
            linear_on(Path::Portable, &x, &w, &b, d_in, d_out, &mut a);
            linear_on(Path::Avx2, &x, &w, &b, d_in, d_out, &mut c);
            assert!(a.iter().zip(&c).all(|(p, q)| p.to_bits() == q.to_bits()), "linear {rows}x{d_in}x{d_out}");
        }
        // Whole groups of 4 channels, leftovers, rows shorter and longer than one tile.
        for (c_in, c_out, side) in [(3, 4, 15), (1, 8, 28), (8, 16, 13), (2, 6, 20), (5, 3, 9), (2, 9, 35)] {
            let (img, w, b) = (v(c_in * side * side, 3), v(c_out * c_in * 9, 5), v(c_out, 7));
            let a = conv3x3_on(Path::Portable, &img, &w, &b, c_in, c_out, side);
            let c = conv3x3_on(Path::Avx2, &img, &w, &b, c_in, c_out, side);
            assert!(a.iter().zip(&c).all(|(p, q)| p.to_bits() == q.to_bits()), "conv {c_in}->{c_out}, side {side}");
        }
    }
}
