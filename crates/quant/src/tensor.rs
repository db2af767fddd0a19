//! Simulated quantization of burn tensors: the same arithmetic as [`mpq_net::grid`], on any
//! backend.

use crate::Rounding;
use burn::prelude::*;
use mpq_models::Weight;
use mpq_net::grid::QParams;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Uniform [0, 1) draws of `shape` from `seed`, for stochastic rounding.
pub fn uniform_noise<const D: usize>(shape: [usize; D], seed: u64, device: &Device) -> Tensor<D> {
    let n: usize = shape.iter().product();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let v: Vec<f32> = (0..n).map(|_| rng.random::<f32>()).collect();
    Tensor::from_data(TensorData::new(v, shape), device)
}

/// How many scales a weight gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Granularity {
    /// One scale for the whole tensor (`per-tensor`, or `tensor`).
    #[default]
    #[serde(alias = "tensor")]
    PerTensor,
    /// One scale per output channel (Linear column, conv filter; `per-channel`, or `channel`).
    #[serde(alias = "channel")]
    PerChannel,
}

fn round_with<const D: usize>(s: Tensor<D>, mode: Rounding, seed: u64) -> Tensor<D> {
    match mode {
        Rounding::Nearest => s.round(),
        Rounding::Floor | Rounding::Ceil => {
            // As `mpq_net::grid`: quotients on the grid keep their integer.
            let r = s.clone().round();
            let tol = r.clone().abs().clamp_min(1.0).mul_scalar(mpq_net::grid::GRID_TOL);
            let on = (s.clone() - r.clone()).abs().lower_equal(tol);
            let plain = if mode == Rounding::Floor { s.floor() } else { s.ceil() };
            plain.mask_where(on, r)
        }
        Rounding::Stochastic => {
            let noise = uniform_noise(s.dims(), seed, &s.device());
            (s + noise).floor()
        }
    }
}

/// Quantize-dequantize `x` with `p` and `mode`; `seed` drives stochastic rounding only.
pub fn fake_quant<const D: usize>(x: Tensor<D>, p: QParams, mode: Rounding, seed: u64) -> Tensor<D> {
    let r = round_with(x.div_scalar(p.scale), mode, seed);
    let zp = p.zero_point as f32;
    r.add_scalar(zp).clamp(p.qmin as f32, p.qmax as f32).sub_scalar(zp).mul_scalar(p.scale)
}

/// Largest absolute value of a burn layer weight (sets its symmetric scale; the host
/// slices' is [`mpq_net::grid::max_abs`]).
pub fn weight_max_abs(w: &Weight) -> f32 {
    match w {
        Weight::Linear(t) => t.clone().abs().max().into_scalar::<f32>(),
        Weight::Conv(t) => t.clone().abs().max().into_scalar::<f32>(),
    }
}

/// Symmetric per-tensor quantization of a layer weight at `bits` with `mode`.
pub fn quant_tensor_weight(w: &Weight, max_abs: f32, bits: u32, mode: Rounding, seed: u64) -> Weight {
    let p = QParams::symmetric(max_abs, bits);
    match w {
        Weight::Linear(t) => Weight::Linear(fake_quant(t.clone(), p, mode, seed)),
        Weight::Conv(t) => Weight::Conv(fake_quant(t.clone(), p, mode, seed)),
    }
}

/// Symmetric quantization of `[rows, channels]` with one scale per column.
fn per_column(t: Tensor<2>, bits: u32, mode: Rounding, seed: u64) -> Tensor<2> {
    let qmax = ((1i32 << (bits - 1)) - 1) as f32;
    let scale = t.clone().abs().max_dim(0).clamp_min(1e-30).div_scalar(qmax);
    round_with(t / scale.clone(), mode, seed).clamp(-qmax, qmax) * scale
}

/// Symmetric per-output-channel quantization of a layer weight (Linear columns, conv filters).
pub fn quant_tensor_weight_per_channel(w: &Weight, bits: u32, mode: Rounding, seed: u64) -> Weight {
    match w {
        Weight::Linear(t) => Weight::Linear(per_column(t.clone(), bits, mode, seed)),
        Weight::Conv(t) => {
            let [o, i, h, k] = t.dims();
            let cols = t.clone().reshape([o, i * h * k]).transpose();
            Weight::Conv(per_column(cols, bits, mode, seed).transpose().reshape([o, i, h, k]))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mpq_net::grid as scalar;
    use rand::{Rng, SeedableRng};

    #[test]
    fn tensor_matches_scalar_reference() {
        let mut rng = ChaCha8Rng::seed_from_u64(4);
        let dev = Device::flex();
        for _ in 0..32 {
            let n = rng.random_range(1..64);
            let v: Vec<f32> = (0..n).map(|_| rng.random_range(-4f32..4.0)).collect();
            let (bits, mode) = (rng.random_range(2u32..=8), Rounding::SEARCHED[rng.random_range(0..3)]);
            for p in
                [QParams::symmetric(3.0, bits), QParams::for_range(-1.0, 3.5, bits), QParams::for_range(0.0, 2.0, bits)]
            {
                let t = Tensor::<1>::from_data(TensorData::new(v.clone(), [n]), &dev);
                let got = fake_quant(t, p, mode, 0).into_data().try_to_vec::<f32>().unwrap();
                for (g, &x) in got.iter().zip(&v) {
                    let want = scalar::fake(x, p, mode, 0.0);
                    assert!((g - want).abs() <= 1e-5, "x={x} got={g} want={want}");
                }
            }
        }
    }

    #[test]
    fn per_channel_matches_scalar_reference_per_column() {
        let dev = Device::flex();
        let v: Vec<f32> = (0..12).map(|i| ((i * 37 % 11) as f32 - 5.0) * if i % 3 == 0 { 0.1 } else { 1.0 }).collect();
        let w = Weight::Linear(Tensor::<2>::from_data(TensorData::new(v.clone(), [4, 3]), &dev));
        for mode in Rounding::SEARCHED {
            let Weight::Linear(q) = quant_tensor_weight_per_channel(&w, 4, mode, 0) else { unreachable!() };
            let q = q.into_data().try_to_vec::<f32>().unwrap();
            for c in 0..3 {
                let col: Vec<f32> = (0..4).map(|r| v[r * 3 + c]).collect();
                let p = QParams::symmetric(col.iter().fold(0f32, |m, x| m.max(x.abs())), 4);
                for r in 0..4 {
                    assert!((q[r * 3 + c] - scalar::fake(col[r], p, mode, 0.0)).abs() < 1e-6, "{mode:?} r{r} c{c}");
                }
            }
        }
        let conv = Weight::Conv(Tensor::<4>::from_data(TensorData::new(v.clone(), [2, 2, 1, 3]), &dev));
        let Weight::Conv(q) = quant_tensor_weight_per_channel(&conv, 8, Rounding::Nearest, 0) else { unreachable!() };
        let q = q.into_data().try_to_vec::<f32>().unwrap();
        for o in 0..2 {
            let f = &v[o * 6..(o + 1) * 6];
            let p = QParams::symmetric(f.iter().fold(0f32, |m, x| m.max(x.abs())), 8);
            for j in 0..6 {
                assert!((q[o * 6 + j] - scalar::fake(f[j], p, Rounding::Nearest, 0.0)).abs() < 1e-6);
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
