//! The exponential the loss uses, `libm::exp` (FreeBSD's `e_exp.c`, pure Rust, the same on
//! every CPU), with its branches turned into selects so that the values of a row of logits
//! are computed side by side in vector registers. Each value goes through the same exactly
//! rounded operations as in `libm`, so the bits are `libm`'s (`matches_libm_bit_for_bit`);
//! arguments `libm` treats specially (|x| ≥ 708.39, NaN) are handed to it.

use mpq_host::simd;

// `libm`'s constants, by their bits.

const LN2HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000);
const LN2LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76);
const INVLN2: f64 = f64::from_bits(0x3ff7_1547_652b_82fe);
const P1: f64 = f64::from_bits(0x3fc5_5555_5555_553e);
const P2: f64 = f64::from_bits(0xbf66_c16c_16be_bd93);
const P3: f64 = f64::from_bits(0x3f11_566a_af25_de2c);
const P4: f64 = f64::from_bits(0xbebb_bd41_c5d2_6bf1);
const P5: f64 = f64::from_bits(0x3e66_3769_72be_a4d0);
/// 2^52: added to a small integral float, leaves that integer in the low mantissa bits.
const TWO_52: f64 = 4_503_599_627_370_496.0;

/// High word of |x| from which `libm` takes its special-case path (|x| ≥ 708.39...).
const SPECIAL: u32 = 0x4086_232b;

/// Whether `libm` computes `exp(x)` on its ordinary path (what [`exp_select`] reproduces).
#[inline(always)]
fn ordinary(x: f64) -> bool {
    ((x.to_bits() >> 32) as u32 & 0x7fff_ffff) < SPECIAL
}

/// `libm::exp(x)` for |x| < 708.39 (not NaN), without branches.
#[inline(always)]
fn exp_select(x: f64) -> f64 {
    let hx = ((x.to_bits() >> 32) as u32) & 0x7fff_ffff;
    let neg = x.is_sign_negative();
    // `libm`'s k: `(INVLN2 * x ± 0.5) as i32` (truncation) from 1.5 ln2, ±1 from 0.5 ln2,
    // else 0 (where `libm` takes hi = x, lo = 0, which the same formulas give exactly).
    let big = (INVLN2 * x + if neg { -0.5 } else { 0.5 }).trunc();
    let k = if hx >= 0x3ff0_a2b2 {
        big
    } else if hx > 0x3fd6_2e42 {
        if neg { -1.0 } else { 1.0 }
    } else {
        0.0
    };
    let hi = x - k * LN2HI;
    let lo = k * LN2LO;
    let r = hi - lo;
    let xx = r * r;
    let c = r - xx * (P1 + xx * (P2 + xx * (P3 + xx * (P4 + xx * P5))));
    let y = 1.0 + (r * c / (2.0 - c) - lo + hi);
    // `scalbn(y, k)` for k in [-1022, 1022]: one multiplication by 2^k (y * 1 when k = 0).
    let scale = f64::from_bits((k + 1023.0 + TWO_52).to_bits() << 52);
    // Below 2^-28 `libm` returns 1 + x.
    if hx <= 0x3e30_0000 { 1.0 + x } else { y * scale }
}

/// `out[i] = libm::exp(x[i])`, bit for bit, on the host's SIMD path.
pub fn exp_into(x: &[f64], out: &mut [f64]) {
    if x.iter().all(|&v| ordinary(v)) {
        simd::run_on(simd::path(), || out.iter_mut().zip(x).for_each(|(o, &v)| *o = exp_select(v)));
    } else {
        out.iter_mut().zip(x).for_each(|(o, &v)| *o = libm::exp(v));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every branch of `libm::exp` and its edges, and a sweep of the softmax's range.
    #[test]
    fn matches_libm_bit_for_bit() {
        let covered = [("portable", true), ("avx2", simd::Path::Avx2.supported())];
        mpq_net::simd::coverage("matches_libm_bit_for_bit", &covered).unwrap();
        let mut x: Vec<f64> = vec![0.0, -0.0, 1e-300, -1e-300, 5e-324, f64::MIN_POSITIVE];
        for e in [0x3e30_0000u64, 0x3fd6_2e42, 0x3ff0_a2b2, 0x4086_232b] {
            for d in [-2i64, -1, 0, 1, 2] {
                let v = f64::from_bits(((e as i64 + d) as u64) << 32);
                let w = f64::from_bits(v.to_bits() | 0xffff_ffff);
                x.extend([v, -v, w, -w]);
            }
        }
        x.extend([-708.39, -708.396_418_532_264, -709.0, -745.1, -746.0, 709.0, 710.0, 0.5, -0.5]);
        x.extend([f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.346_573_590_279_972_6, -1.039_720_770_839_917_9]);
        let mut seed = 11u64;
        for _ in 0..400_000 {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
            x.extend([-u * u * 720.0, (u - 0.5) * 4.0, -u * 1e-7]);
        }
        let plain: Vec<f64> = x.iter().copied().filter(|&v| ordinary(v)).collect();
        for path in [simd::Path::Portable, simd::Path::Avx2] {
            let mut got = vec![0f64; plain.len()];
            simd::run_on(path, || got.iter_mut().zip(&plain).for_each(|(o, &v)| *o = exp_select(v)));
            for (v, g) in plain.iter().zip(&got) {
                assert_eq!(g.to_bits(), libm::exp(*v).to_bits(), "{path:?}: exp({v:e})");
            }
        }
        let mut got = vec![0f64; x.len()];
        for (xs, os) in x.chunks(10).zip(got.chunks_mut(10)) {
            exp_into(xs, os);
        }
        for (v, g) in x.iter().zip(&got) {
            assert_eq!(g.to_bits(), libm::exp(*v).to_bits(), "exp_into: exp({v:e})");
        }
    }
}
