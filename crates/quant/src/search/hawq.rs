//! A HAWQ-V2-style baseline: each layer's sensitivity is the trace of the loss Hessian with
//! respect to its weights (Hutchinson's estimator, Hessian-vector products by central
//! differences of host gradients: [`HostNet::gradients`]), divided by the
//! weight count and multiplied by the squared weight quantization error (nearest).

use super::mixed::LayerOption;
use crate::eval::Evaluator;
use crate::{BitWidth, Choice, Rounding, Target};
use mpq_host::HostNet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Hutchinson estimates of each layer's Hessian trace: mean over `samples` Rademacher
/// vectors v of vᵀ(Hv), Hv ≈ (g(W + εv) − g(W − εv)) / 2ε, all layers perturbed at once
/// (cross-layer terms vanish in expectation).
pub fn hessian_traces(host: &HostNet, x: &[f32], y: &[i64], samples: usize, eps: f32, seed: u64) -> Vec<f64> {
    let vals = &host.weights;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut traces = vec![0.0; vals.len()];
    for _ in 0..samples.max(1) {
        let v: Vec<Vec<f32>> = vals
            .iter()
            .map(|w| (0..w.len()).map(|_| if rng.random::<bool>() { 1.0 } else { -1.0 }).collect())
            .collect();
        let shifted = |sign: f32| -> Vec<Vec<f32>> {
            vals.iter().zip(&v).map(|(w, v)| w.iter().zip(v).map(|(a, d)| a + sign * eps * d).collect()).collect()
        };
        let (gp, gm) =
            (host.gradients(x, y, Some(&shifted(1.0))).weight, host.gradients(x, y, Some(&shifted(-1.0))).weight);
        for k in 0..vals.len() {
            let vhv: f64 =
                gp[k].iter().zip(&gm[k]).zip(&v[k]).map(|((a, b), d)| ((a - b) / (2.0 * eps)) as f64 * *d as f64).sum();
            traces[k] += vhv / samples.max(1) as f64;
        }
    }
    traces
}

/// The HAWQ-V2 table: Ω(k, b) = trace_k / n_k · ‖Q_b(W_k) − W_k‖² for nearest rounding at each
/// bit width (32 = full precision, Ω = 0), in the shape [`super::mixed::allocate`] takes.
pub fn hawq_table(ev: &Evaluator, traces: &[f64], bits: &[BitWidth]) -> Vec<Vec<LayerOption>> {
    (0..ev.n_layers())
        .map(|k| {
            let wv = &ev.host.weights[k];
            bits.iter()
                .map(|&b| {
                    let choice = Choice { bits: b, rounding: Rounding::Nearest, target: Target::Both };
                    let delta = if b >= 32 {
                        0.0
                    } else {
                        let err: f64 = ev
                            .weight(k, choice)
                            .map_or(0.0, |q| q.iter().zip(wv).map(|(a, c)| ((a - c) as f64).powi(2)).sum());
                        traces[k] / wv.len() as f64 * err
                    };
                    LayerOption { choice, delta }
                })
                .collect()
        })
        .collect()
}
