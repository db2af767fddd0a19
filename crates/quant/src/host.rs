//! Simulated quantization of host slices: the scalar reference ([`crate::scalar`]) applied
//! element by element, so quantized evaluation on the host ([`mpq_models::HostNet`]) gives
//! the same numbers on every CPU.

use crate::Rounding;
use crate::scalar::{self, QParams};
use crate::tensor::Granularity;
use mpq_models::LayerKind;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Quantize-dequantize every value of `x` with `p` and `mode`; `seed` drives the uniform
/// draws of stochastic rounding (one per value, in order).
pub fn fake_slice(x: &[f32], p: QParams, mode: Rounding, seed: u64) -> Vec<f32> {
    if mode == Rounding::Stochastic {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        return x.iter().map(|&v| scalar::fake(v, p, mode, rng.random::<f32>())).collect();
    }
    x.iter().map(|&v| scalar::fake(v, p, mode, 0.0)).collect()
}

/// Largest absolute value (sets a symmetric weight scale).
pub fn max_abs(w: &[f32]) -> f32 {
    w.iter().fold(0f32, |m, v| m.max(v.abs()))
}

/// A layer's weight quantized symmetrically at `bits` with `mode`: one scale for the tensor,
/// or one per output channel (Linear column, conv filter).
pub fn quant_weight(kind: &LayerKind, w: &[f32], bits: u32, mode: Rounding, g: Granularity, seed: u64) -> Vec<f32> {
    match (g, kind) {
        (Granularity::PerTensor, _) => fake_slice(w, QParams::symmetric(max_abs(w), bits), mode, seed),
        (Granularity::PerChannel, LayerKind::Conv { c_out, .. }) => {
            let per = w.len() / c_out;
            (0..*c_out)
                .flat_map(|o| {
                    let f = &w[o * per..(o + 1) * per];
                    fake_slice(f, QParams::symmetric(max_abs(f), bits), mode, seed ^ o as u64)
                })
                .collect()
        }
        (Granularity::PerChannel, LayerKind::Linear { d_in, d_out, .. }) => {
            let mut out = vec![0f32; w.len()];
            for j in 0..*d_out {
                let col: Vec<f32> = (0..*d_in).map(|i| w[i * d_out + j]).collect();
                let q = fake_slice(&col, QParams::symmetric(max_abs(&col), bits), mode, seed ^ j as u64);
                for (i, v) in q.into_iter().enumerate() {
                    out[i * d_out + j] = v;
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor;
    use burn::prelude::*;
    use mpq_models::Weight;

    /// The host quantizer and the burn-tensor one agree on every rounding and granularity.
    #[test]
    fn host_weights_match_tensor_quantizer() {
        let dev = Device::flex();
        let v: Vec<f32> = (0..48).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect();
        let kind = LayerKind::Linear { d_in: 6, d_out: 8, relu: true, residual: false };
        let w = Weight::Linear(Tensor::<2>::from_data(TensorData::new(v.clone(), [6, 8]), &dev));
        for mode in Rounding::SEARCHED {
            for g in [Granularity::PerTensor, Granularity::PerChannel] {
                let want = match g {
                    Granularity::PerTensor => tensor::quant_weight(&w, max_abs(&v), 4, mode, 0),
                    Granularity::PerChannel => tensor::quant_weight_per_channel(&w, 4, mode, 0),
                }
                .to_vec();
                let got = quant_weight(&kind, &v, 4, mode, g, 0);
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-6, "{mode:?} {g:?}: {a} vs {b}");
                }
            }
        }
    }
}
