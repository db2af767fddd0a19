//! A HAWQ-V2-style baseline: each layer's sensitivity is the trace of the loss Hessian with
//! respect to its weights (Hutchinson's estimator, Hessian-vector products by central
//! differences of gradients, since burn has first-order autodiff only), divided by the
//! weight count and multiplied by the squared weight quantization error (nearest).

use super::mixed::LayerOption;
use crate::eval::Evaluator;
use crate::{Choice, Rounding, Target};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use mpq_models::{Net, Weight};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn flat(w: &Weight) -> Vec<f32> {
    match w {
        Weight::Linear(t) => t.clone().into_data().try_to_vec::<f32>().unwrap_or_default(),
        Weight::Conv(t) => t.clone().into_data().try_to_vec::<f32>().unwrap_or_default(),
    }
}

fn with_values(w: &Weight, v: Vec<f32>, device: &Device) -> Weight {
    match w {
        Weight::Linear(t) => Weight::Linear(Tensor::from_data(TensorData::new(v, t.dims()), device)),
        Weight::Conv(t) => Weight::Conv(Tensor::from_data(TensorData::new(v, t.dims()), device)),
    }
}

/// Gradients of the mean cross-entropy on (`x`, `y`) with respect to each layer's weight,
/// evaluated at `weights`, flattened.
pub fn weight_grads(net: &Net, weights: &[Weight], x: &[f32], y: &[i64], device: &Device) -> Vec<Vec<f32>> {
    let n = y.len();
    let adev = device.clone().autodiff();
    let anet = net.clone().fork(&adev);
    let mut h = anet.input(Tensor::<2>::from_data(TensorData::new(x.to_vec(), [n, 784]), &adev));
    let mut leaves = Vec::new();
    for (k, w) in weights.iter().enumerate() {
        let leaf = match w {
            Weight::Linear(t) => Weight::Linear(Tensor::from_data(t.clone().into_data(), &adev).require_grad()),
            Weight::Conv(t) => Weight::Conv(Tensor::from_data(t.clone().into_data(), &adev).require_grad()),
        };
        h = anet.stage(k, h, Some(&leaf));
        leaves.push(leaf);
    }
    let target = Tensor::<1, Int>::from_data(TensorData::new(y.to_vec(), [n]), &adev);
    let grads = CrossEntropyLossConfig::new().init(&adev).forward(anet.logits(h), target).backward();
    leaves
        .iter()
        .map(|l| match l {
            Weight::Linear(t) => t.grad(&grads).map(|g| g.into_data().try_to_vec::<f32>().unwrap_or_default()),
            Weight::Conv(t) => t.grad(&grads).map(|g| g.into_data().try_to_vec::<f32>().unwrap_or_default()),
        })
        .map(Option::unwrap_or_default)
        .collect()
}

/// Hutchinson estimates of each layer's Hessian trace: mean over `samples` Rademacher
/// vectors v of vᵀ(Hv), Hv ≈ (g(W + εv) − g(W − εv)) / 2ε, all layers perturbed at once
/// (cross-layer terms vanish in expectation).
pub fn hessian_traces(
    net: &Net,
    x: &[f32],
    y: &[i64],
    samples: usize,
    eps: f32,
    seed: u64,
    device: &Device,
) -> Vec<f64> {
    let base: Vec<Weight> = (0..net.n_layers()).map(|k| net.weight(k)).collect();
    let vals: Vec<Vec<f32>> = base.iter().map(flat).collect();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut traces = vec![0.0; base.len()];
    for _ in 0..samples.max(1) {
        let v: Vec<Vec<f32>> = vals
            .iter()
            .map(|w| (0..w.len()).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }).collect())
            .collect();
        let shifted = |sign: f32| -> Vec<Weight> {
            base.iter()
                .zip(&vals)
                .zip(&v)
                .map(|((b, w), v)| with_values(b, w.iter().zip(v).map(|(a, d)| a + sign * eps * d).collect(), device))
                .collect()
        };
        let (gp, gm) =
            (weight_grads(net, &shifted(1.0), x, y, device), weight_grads(net, &shifted(-1.0), x, y, device));
        for k in 0..base.len() {
            let vhv: f64 =
                gp[k].iter().zip(&gm[k]).zip(&v[k]).map(|((a, b), d)| ((a - b) / (2.0 * eps)) as f64 * *d as f64).sum();
            traces[k] += vhv / samples.max(1) as f64;
        }
    }
    traces
}

/// The HAWQ-V2 table: Ω(k, b) = trace_k / n_k · ‖Q_b(W_k) − W_k‖² for nearest rounding at each
/// bit width (32 = full precision, Ω = 0), in the shape [`super::mixed::allocate`] takes.
pub fn hawq_table(ev: &Evaluator, traces: &[f64], bits: &[u32]) -> Vec<Vec<LayerOption>> {
    (0..ev.n_layers())
        .map(|k| {
            let wv = flat(&ev.net.weight(k));
            bits.iter()
                .map(|&b| {
                    let choice = Choice { bits: b, rounding: Rounding::Nearest, target: Target::Both };
                    let delta = if b >= 32 {
                        0.0
                    } else {
                        let q = ev.weight(k, choice).map(|q| flat(&q)).unwrap_or_else(|| wv.clone());
                        let err: f64 = q.iter().zip(&wv).map(|(a, c)| ((a - c) as f64).powi(2)).sum();
                        traces[k] / wv.len() as f64 * err
                    };
                    LayerOption { choice, delta }
                })
                .collect()
        })
        .collect()
}
