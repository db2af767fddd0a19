//! First-order Taylor prediction of the loss change of each layer's rounding choice.
//!
//! One backward pass on the calibration set gives dL/dW and dL/dX for every layer; the
//! predicted change of a choice is the gradient dotted with that choice's quantization
//! error (weight term plus input term). Predictions add over layers, so the best plan is
//! the per-layer argmin.

use crate::calib::stage_inputs;
use crate::eval::Evaluator;
use crate::{Choice, Plan, Rounding, Target};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::prelude::*;
use mpq_models::Weight;

/// Predicted loss change per layer and rounding (index as [`Rounding::SEARCHED`]).
#[derive(Debug, Clone)]
pub struct TaylorTable {
    /// Weight-noise term of each layer and rounding.
    pub weight: Vec<[f64; 3]>,
    /// Input-noise term of each layer and rounding.
    pub input: Vec<[f64; 3]>,
}

impl TaylorTable {
    /// Predicted loss change of a plan built from searched roundings.
    pub fn predict(&self, plan: &Plan) -> f64 {
        plan.layers
            .iter()
            .enumerate()
            .map(|(k, c)| {
                let r = Rounding::SEARCHED.iter().position(|&r| r == c.rounding).unwrap_or(0);
                let w = if c.target == Target::InputOnly { 0.0 } else { self.weight[k][r] };
                let x = if c.target == Target::WeightOnly { 0.0 } else { self.input[k][r] };
                w + x
            })
            .sum()
    }

    /// The plan with the lowest predicted change.
    pub fn best_plan(&self, bits: u32) -> Plan {
        let r: Vec<Rounding> = (0..self.weight.len())
            .map(|k| {
                let tot = |i: usize| self.weight[k][i] + self.input[k][i];
                let i = (0..3).min_by(|&a, &b| tot(a).total_cmp(&tot(b))).unwrap_or(0);
                Rounding::SEARCHED[i]
            })
            .collect();
        Plan::from_roundings(bits, &r)
    }
}

fn dot<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f64 {
    (a * b).sum().into_scalar::<f32>() as f64
}

/// Builds the table at `bits` from one backward pass over the calibration examples `x`
/// (flattened images on the host) with labels `y`.
pub fn taylor_table(ev: &Evaluator, x: &[f32], y: &[i64], bits: u32, device: &Device) -> TaylorTable {
    let n = y.len();
    let adev = device.clone().autodiff();
    let anet = ev.net.clone().fork(&adev);
    let xa = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [n, 784]), &adev);
    let mut h = anet.input(xa);
    let (mut probes, mut leaves) = (Vec::new(), Vec::new());
    for k in 0..anet.n_layers() {
        let probe = Tensor::<4>::zeros(h.dims(), &adev).require_grad();
        let leaf = match ev.net.weight(k) {
            Weight::Linear(t) => Weight::Linear(Tensor::from_data(t.into_data(), &adev).require_grad()),
            Weight::Conv(t) => Weight::Conv(Tensor::from_data(t.into_data(), &adev).require_grad()),
        };
        h = anet.stage(k, h + probe.clone(), Some(&leaf));
        probes.push(probe);
        leaves.push(leaf);
    }
    let target = Tensor::<1, Int>::from_data(TensorData::new(y.to_vec(), [n]), &adev);
    let loss = CrossEntropyLossConfig::new().init(&adev).forward(anet.logits(h), target);
    let grads = loss.backward();

    let xp = Tensor::<2>::from_data(TensorData::new(x.to_vec(), [n, 784]), device);
    let fp_inputs = stage_inputs(ev.net, xp);
    let (mut wt, mut it) = (Vec::new(), Vec::new());
    for k in 0..ev.n_layers() {
        let gx = probes[k].grad(&grads).map(|g| Tensor::<4>::from_data(g.into_data(), device));
        let (mut wrow, mut irow) = ([0.0; 3], [0.0; 3]);
        for (i, r) in Rounding::SEARCHED.into_iter().enumerate() {
            let c = Choice { bits, rounding: r, target: Target::Both };
            wrow[i] = match (&leaves[k], ev.weight(k, c), ev.net.weight(k)) {
                (Weight::Linear(l), Some(Weight::Linear(q)), Weight::Linear(w)) => {
                    l.grad(&grads).map(|g| dot(Tensor::<2>::from_data(g.into_data(), device), q - w)).unwrap_or(0.0)
                }
                (Weight::Conv(l), Some(Weight::Conv(q)), Weight::Conv(w)) => {
                    l.grad(&grads).map(|g| dot(Tensor::<4>::from_data(g.into_data(), device), q - w)).unwrap_or(0.0)
                }
                _ => 0.0,
            };
            let fp = fp_inputs[k].clone();
            let err = ev.input(k, fp.clone(), c) - fp;
            irow[i] = gx.clone().map(|g| dot(g, err)).unwrap_or(0.0);
        }
        wt.push(wrow);
        it.push(irow);
    }
    TaylorTable { weight: wt, input: it }
}
