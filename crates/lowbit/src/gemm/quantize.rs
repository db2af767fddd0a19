//! Layer inputs to u8 codes: `clamp(round(x / scale) + zero, 0, qmax)`, one rounding at a
//! time or nearest, floor and ceil at once, with the same codes on every kernel.

use super::Kernel;
use super::portable::{code_ceil, code_floor, code_nearest};
#[cfg(target_arch = "x86_64")]
use super::x86;
use mpq_net::Rounding;

/// How a layer turns its f32 input into codes: `clamp(round(x / scale) + zero, 0, qmax)`,
/// floor and ceil as in [`mpq_net::grid`]. The engine refuses stochastic rounding when it
/// loads a layer, so `round` is nearest, floor or ceil (stochastic would round to nearest).
#[derive(Debug, Clone, Copy)]
pub struct InputQuant {
    /// Step.
    pub scale: f32,
    /// Zero point (0..=qmax).
    pub zero: i32,
    /// Largest code (at most 255).
    pub qmax: i32,
    /// The plan's rounding.
    pub round: Rounding,
}

/// Codes of `x` into `dst` (same length), vectorized with the kernel's instruction set.
pub fn input_codes(kernel: Kernel, q: &InputQuant, x: &[f32], dst: &mut [u8]) {
    assert!(kernel.supported(), "kernel {} is not supported by this CPU", kernel.name());
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Vnni512 => x86::quantize_avx512(q, x, dst),
        #[cfg(target_arch = "x86_64")]
        Kernel::Avx2 | Kernel::AvxVnni => x86::quantize_avx2(q, x, dst),
        _ => quantize_body(q, x, dst),
    }
}

/// `x` quantized under nearest, floor and ceil at once (`q.round` ignored) into `dst`, each
/// as [`input_codes`] gives it: on x86 with AVX2 one division per value instead of three.
pub fn input_codes3(kernel: Kernel, q: &InputQuant, x: &[f32], dst: [&mut [u8]; 3]) {
    assert!(kernel.supported(), "kernel {} is not supported by this CPU", kernel.name());
    match kernel {
        #[cfg(target_arch = "x86_64")]
        Kernel::Vnni512 | Kernel::Avx2 | Kernel::AvxVnni => x86::quantize3_avx2(q, x, dst),
        _ => {
            for (d, round) in dst.into_iter().zip(Rounding::SEARCHED) {
                input_codes(kernel, &InputQuant { round, ..*q }, x, d);
            }
        }
    }
}

/// Written branch-free per element so the compiler vectorizes it; the clamp happens in f32
/// (exact: `round(x / scale)` is an integer and `zero` is small) before the cast.
#[inline(always)]
pub(super) fn quantize_body(q: &InputQuant, x: &[f32], dst: &mut [u8]) {
    let (s, z, hi) = (q.scale, q.zero as f32, q.qmax as f32);
    let pairs = dst.iter_mut().zip(x);
    match q.round {
        Rounding::Nearest | Rounding::Stochastic => pairs.for_each(|(d, &v)| *d = code_nearest(v / s, z, hi)),
        Rounding::Floor => pairs.for_each(|(d, &v)| *d = code_floor(v / s, z, hi)),
        Rounding::Ceil => pairs.for_each(|(d, &v)| *d = code_ceil(v / s, z, hi)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SIMD quantizers equal the portable one, ties, clamping and NaN included.
    #[test]
    fn quantizers_match_the_portable_one() {
        let mut x: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) / 97.0).collect();
        x.extend((0..=255).map(|p| p as f32 / 255.0));
        x.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.5, 1.5, 2.5, -0.5, 1e9, -1e9, 0.0]);
        for round in Rounding::SEARCHED {
            for (scale, zero, qmax) in [(1.0, 0, 255), (0.25, 3, 15), (0.013, 128, 255)] {
                let q = InputQuant { scale, zero, qmax, round };
                let mut want = vec![0u8; x.len()];
                input_codes(Kernel::Portable, &q, &x, &mut want);
                if scale == 1.0 {
                    // NaN, +inf, -inf, 0.5, 1.5, 2.5 at indices 1256..1262.
                    let halves = match round {
                        Rounding::Nearest | Rounding::Stochastic => [0, 2, 2],
                        Rounding::Floor => [0, 1, 2],
                        Rounding::Ceil => [1, 2, 3],
                    };
                    assert_eq!(&want[1256..1262], &[0, 255, 0, halves[0], halves[1], halves[2]], "{round:?}");
                }
                // Reversed too, so that the special values also meet each kernel's widest step.
                let (rx, mut rwant) = (x.iter().rev().copied().collect::<Vec<f32>>(), vec![0u8; x.len()]);
                input_codes(Kernel::Portable, &q, &rx, &mut rwant);
                for kernel in [Kernel::Avx2, Kernel::Vnni512].into_iter().filter(|k| k.supported()) {
                    for (x, want) in [(&x, &want), (&rx, &rwant)] {
                        let mut got = vec![7u8; x.len()];
                        input_codes(kernel, &q, x, &mut got);
                        assert_eq!(&got, want, "{} {round:?} {scale}", kernel.name());
                    }
                }
            }
        }
    }

    /// The three-at-once quantizer gives each rounding's codes, on every kernel this CPU has,
    /// at lengths that end in each of its steps (32, 8 and single values).
    #[test]
    fn three_at_once_equals_one_at_a_time() {
        let mut x: Vec<f32> = (0..1000).map(|i| (i as f32 - 500.0) / 97.0).collect();
        x.extend((0..=255).map(|p| p as f32 / 255.0));
        x.extend([f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.5, 1.5, 2.5, -0.5, 1e9, -1e9, 0.0]);
        let rounds = Rounding::SEARCHED;
        for kernel in Kernel::ALL.into_iter().filter(|k| k.supported()) {
            for (scale, zero, qmax) in [(1.0, 0, 255), (0.25, 3, 15), (0.013, 128, 255), (1.0 / 255.0, 0, 255)] {
                for len in [x.len(), 45, 7, 0] {
                    let x = &x[x.len() - len..];
                    let q = InputQuant { scale, zero, qmax, round: Rounding::Floor };
                    let mut got = [vec![7u8; len], vec![7u8; len], vec![7u8; len]];
                    let [n, f, c] = &mut got;
                    input_codes3(kernel, &q, x, [n, f, c]);
                    for (g, round) in got.iter().zip(rounds) {
                        let mut want = vec![0u8; len];
                        input_codes(Kernel::Portable, &InputQuant { round, ..q }, x, &mut want);
                        assert_eq!(g, &want, "{} {round:?} {scale} {len}", kernel.name());
                    }
                }
            }
        }
    }
}
