//! Simulated quantization of burn tensors: the same arithmetic as [`crate::scalar`], on any
//! backend.

use crate::Rounding;
use crate::scalar::QParams;
use burn::prelude::*;
use mpq_models::Weight;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Uniform [0, 1) draws of `shape` from `seed`, for stochastic rounding.
pub fn uniform_noise<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let n: usize = shape.iter().product();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// Quantize-dequantize `x` with `p` and `mode`; `seed` drives stochastic rounding only.
pub fn fake_quant<const D: usize>(x: Tensor<D>, p: QParams, mode: Rounding, seed: u64) -> Tensor<D> {
    let s = x.div_scalar(p.scale);
    let r = match mode {
        Rounding::Nearest => s.round(),
        Rounding::Floor => s.floor(),
        Rounding::Ceil => s.ceil(),
        Rounding::Stochastic => {
            let noise = uniform_noise(s.dims(), seed, &s.device());
            (s + noise).floor()
        }
    };
    let zp = p.zero_point as f32;
    r.add_scalar(zp).clamp(p.qmin as f32, p.qmax as f32).sub_scalar(zp).mul_scalar(p.scale)
}

/// Largest absolute value of a layer weight (sets its symmetric scale).
pub fn max_abs(w: &Weight) -> f32 {
    match w {
        Weight::Linear(t) => t.clone().abs().max().into_scalar::<f32>(),
        Weight::Conv(t) => t.clone().abs().max().into_scalar::<f32>(),
    }
}

/// Symmetric per-tensor quantization of a layer weight at `bits` with `mode`.
pub fn quant_weight(w: &Weight, max_abs: f32, bits: u32, mode: Rounding, seed: u64) -> Weight {
    let p = QParams::symmetric(max_abs, bits);
    match w {
        Weight::Linear(t) => Weight::Linear(fake_quant(t.clone(), p, mode, seed)),
        Weight::Conv(t) => Weight::Conv(fake_quant(t.clone(), p, mode, seed)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scalar;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]
        #[test]
        fn tensor_matches_scalar_reference(v in proptest::collection::vec(-4f32..4.0, 1..64), bits in 2u32..=8, m in 0usize..3) {
            let mode = Rounding::SEARCHED[m];
            let dev = Device::flex();
            let n = v.len();
            for p in [QParams::symmetric(3.0, bits), QParams::for_range(-1.0, 3.5, bits), QParams::for_range(0.0, 2.0, bits)] {
                let t = Tensor::<1>::from_data(TensorData::new(v.clone(), [n]), &dev);
                let got = fake_quant(t, p, mode, 0).into_data().try_to_vec::<f32>().unwrap();
                for (g, &x) in got.iter().zip(&v) {
                    let want = scalar::fake(x, p, mode, 0.0);
                    prop_assert!((g - want).abs() <= 1e-5, "x={} got={} want={}", x, g, want);
                }
            }
        }
    }

    #[test]
    fn burn_round_breaks_ties_to_even() {
        let dev = Device::flex();
        let t = Tensor::<1>::from_data(TensorData::new(vec![0.5f32, 1.5, 2.5, -0.5, -2.5], [5]), &dev);
        assert_eq!(t.round().into_data().try_to_vec::<f32>().unwrap(), vec![0.0, 2.0, 2.0, -0.0, -2.0]);
    }
}
