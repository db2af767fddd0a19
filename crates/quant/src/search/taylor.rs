//! First-order Taylor prediction of the loss change of each layer's rounding choice.
//!
//! One backward pass (on the host, CPU-independent) on the calibration set gives dL/dW and dL/dX for every layer; the
//! predicted change of a choice is the gradient dotted with that choice's quantization
//! error (weight term plus input term). Predictions add over layers, so the best plan is
//! the per-layer argmin.

use crate::eval::Evaluator;
use crate::{BitWidth, Choice, Plan, Rounding, Target};

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
    pub fn best_plan(&self, bits: BitWidth) -> Plan {
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

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter().zip(b).map(|(&x, &y)| x as f64 * y as f64).sum()
}

/// One backward pass (on the host, full precision) over the calibration examples: what
/// every width's and granularity's [`TaylorTable`] is built from, so a run computes it once.
pub struct Gradients {
    /// dL/dW and dL/dx of every layer.
    grads: mpq_host::Grads,
    /// Each layer's full-precision input.
    inputs: Vec<Vec<f32>>,
    /// Wall seconds the pass took (part of the Taylor search's cost at every width).
    pub seconds: f64,
}

/// The backward pass over the calibration examples `x` (flattened images) with labels `y`.
pub fn gradients(ev: &Evaluator, x: &[f32], y: &[i64]) -> Gradients {
    let t0 = std::time::Instant::now();
    // The backward pass keeps each layer's input: the same bits as a separate forward pass.
    let (grads, _, inputs) = ev.host.backprop_kept(x, y, None, true);
    Gradients { grads, inputs, seconds: t0.elapsed().as_secs_f64() }
}

/// Builds the table at `bits` from one backward pass (on the host) over the calibration
/// examples `x` (flattened images) with labels `y`.
pub fn taylor_table(ev: &Evaluator, x: &[f32], y: &[i64], bits: BitWidth) -> TaylorTable {
    table_from(ev, &gradients(ev, x, y), bits)
}

/// The table at `bits` from gradients of the same network on the same examples (`ev`'s
/// granularity quantizes the weights).
pub fn table_from(ev: &Evaluator, g: &Gradients, bits: BitWidth) -> TaylorTable {
    let (grads, fp_inputs) = (&g.grads, &g.inputs);
    let (mut wt, mut it) = (Vec::new(), Vec::new());
    for (k, fp) in fp_inputs.iter().enumerate() {
        let w = &ev.host.weights[k];
        let (mut wrow, mut irow) = ([0.0; 3], [0.0; 3]);
        for (i, r) in Rounding::SEARCHED.into_iter().enumerate() {
            let c = Choice { bits, rounding: r, target: Target::Both };
            wrow[i] = ev.weight(k, c).map_or(0.0, |q| {
                let dw: Vec<f32> = q.iter().zip(w).map(|(a, b)| a - b).collect();
                dot(&grads.weight[k], &dw)
            });
            irow[i] = ev.input(k, fp, c).map_or(0.0, |q| {
                let dx: Vec<f32> = q.iter().zip(fp).map(|(a, b)| a - b).collect();
                dot(&grads.input[k], &dx)
            });
        }
        wt.push(wrow);
        it.push(irow);
    }
    TaylorTable { weight: wt, input: it }
}
