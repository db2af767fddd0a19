//! AdaRound (Nagel et al., ICML 2020): per weight element, learn whether to round down or
//! up by minimising the layer's output reconstruction error on calibration data, with a
//! soft rounding variable and a regulariser that anneals it to 0 or 1.
//!
//! Layer by layer, in forward order: the layer's input is what the quantized network so far
//! gives, quantized to nearest at the plan's width (as the plans quantize inputs); the target
//! is the full-precision network's output of that layer. Each weight is
//! `w_floor + h(V) (w_ceil - w_floor)` with `h(V) = clamp(sigmoid(V) (ζ - γ) + γ, 0, 1)`,
//! where `w_floor`, `w_ceil` are the weight rounded down and up on the plan's grid, so the
//! final choice (`h ≥ 0.5`) is a floor or ceil per element. The loss is the squared output
//! error (summed over an example's outputs, averaged over the batch) plus
//! `λ Σ (1 - |2h - 1|^β)` over the weights, with `β` annealed from 20 to 2 after a warm-up
//! (the first fifth of the steps) without the regulariser; `V` is updated by Adam on the host. The gradients come from
//! burn's autodiff through the layer's own stage ([`Net::stage`]), on the flex backend.

use crate::eval::{EvalSet, Evaluator};
use crate::{BitWidth, Choice, QuantError, Rounding, Target};
use burn::prelude::*;
use burn::tensor::activation::sigmoid;
use mpq_host::{Adam, AdamForm};
use mpq_models::{LayerKind, Net, Weight};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Stretch of the rectified sigmoid (the paper's ζ and γ).
const ZETA: f32 = 1.1;
const GAMMA: f32 = -0.1;

/// How long and how hard each layer is optimised.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdaRoundConfig {
    /// Adam steps per layer (the paper uses 10,000 of batch 32).
    #[serde(default = "default_iters")]
    pub iters: usize,
    /// Calibration examples per step.
    #[serde(default = "default_batch")]
    pub batch: usize,
    /// Weight of the rounding regulariser (the paper's λ): the loss is the squared output
    /// error summed over a example's outputs, averaged over the batch, plus λ times the
    /// regulariser summed over the weights.
    #[serde(default = "default_lambda")]
    pub lambda: f32,
}

fn default_iters() -> usize {
    1000
}
fn default_batch() -> usize {
    64
}
fn default_lambda() -> f32 {
    0.01
}

impl Default for AdaRoundConfig {
    fn default() -> Self {
        AdaRoundConfig { iters: default_iters(), batch: default_batch(), lambda: default_lambda() }
    }
}

/// One layer's learned rounding.
#[derive(Debug, Clone)]
pub struct LearnedLayer {
    /// The weight on the grid, in the layer's own layout, each element its floor or ceil.
    pub weight: Vec<f32>,
    /// Mean squared output error on the calibration inputs with the learned rounding.
    pub error: f64,
    /// The same with every weight rounded to nearest.
    pub error_nearest: f64,
}

/// The layer's rows `x` as the rank-4 input its stage takes.
fn stage_input(kind: &LayerKind, x: &[f32], rows: usize, dev: &Device) -> Tensor<4> {
    let shape = match *kind {
        _ if kind.input_width() != kind.own_input_width() => [rows, 1, 1, kind.input_width()],
        LayerKind::Conv { c_in, side_in, .. } => [rows, c_in, side_in, side_in],
        LayerKind::Linear { d_in, .. } => [rows, 1, 1, d_in],
    };
    Tensor::from_data(TensorData::new(x.to_vec(), shape), dev)
}

/// The weight tensor of layer `k` of `net` from host values.
fn weight_of(net: &Net, k: usize, w: Tensor<1>) -> Weight {
    match net.weight(k) {
        Weight::Linear(t) => Weight::Linear(w.reshape(t.dims())),
        Weight::Conv(t) => Weight::Conv(w.reshape(t.dims())),
    }
}

/// Mean squared error of layer `k` (of `net`, on `dev`) with weight `w` on inputs `x`
/// against `target`.
fn layer_error(net: &Net, k: usize, w: &[f32], x: &Tensor<4>, target: &Tensor<2>) -> f64 {
    let dev = x.device();
    let wt = Tensor::<1>::from_data(TensorData::new(w.to_vec(), [w.len()]), &dev);
    let y = net.stage(k, x.clone(), Some(&weight_of(net, k, wt)));
    let y: Tensor<2> = y.reshape(target.dims());
    (y - target.clone()).powf_scalar(2.0).mean().into_scalar::<f32>() as f64
}

/// `V` whose soft rounding `h(V)` equals the fractional position `r` of each weight between
/// its floor and ceil.
fn init_v(w: &[f32], lo: &[f32], hi: &[f32]) -> Vec<f32> {
    w.iter()
        .zip(lo.iter().zip(hi))
        .map(|(&v, (&a, &b))| {
            let r = if b > a { ((v - a) / (b - a)).clamp(0.01, 0.99) } else { 0.5 };
            let s = (r - GAMMA) / (ZETA - GAMMA);
            (s / (1.0 - s)).ln()
        })
        .collect()
}

/// Learns the rounding of layer `k` of `net` at `bits` from its quantized calibration inputs
/// `x` (rows of the layer's input width) and the full-precision outputs `target` (rows of its
/// output width). `granularity`-aware floor and ceil weights come from `ev`.
pub fn learn_layer(
    ev: &Evaluator,
    k: usize,
    bits: BitWidth,
    x: &[f32],
    target: &[f32],
    cfg: &AdaRoundConfig,
    seed: u64,
) -> Result<LearnedLayer, QuantError> {
    let dev = Device::flex().autodiff();
    let net = Net::new(ev.net.arch().clone(), &dev, 0)
        .load_named(&ev.net.named_tensors(), &dev)
        .map_err(QuantError::Export)?;
    let kind = &ev.host.kinds[k];
    let (wi, wo) = (kind.input_width(), kind.output_width());
    let rows = x.len() / wi;
    let choice = |rounding| Choice { bits, rounding, target: Target::Both };
    let lo = ev.weight(k, choice(Rounding::Floor)).map(|w| w.to_vec()).unwrap_or_default();
    let hi = ev.weight(k, choice(Rounding::Ceil)).map(|w| w.to_vec()).unwrap_or_default();
    let near = ev.weight(k, choice(Rounding::Nearest)).map(|w| w.to_vec()).unwrap_or_default();
    let w = &ev.host.weights[k];
    let x_all = stage_input(kind, x, rows, &dev);
    let t_all = Tensor::<2>::from_data(TensorData::new(target.to_vec(), [rows, wo]), &dev);
    let error_nearest = layer_error(&net, k, &near, &x_all, &t_all);
    let n = w.len();
    let (lo_t, step_t) = (
        Tensor::<1>::from_data(TensorData::new(lo.clone(), [n]), &dev),
        Tensor::<1>::from_data(TensorData::new(hi.iter().zip(&lo).map(|(b, a)| b - a).collect::<Vec<_>>(), [n]), &dev),
    );
    let mut v = init_v(w, &lo, &hi);
    // The AdaRound reference's Adam: learning rate 0.01, β1 0.9, β2 0.999, ε 1e-8, textbook form.
    let mut adam = Adam::new(n, AdamForm::Textbook, 0.9, 0.999, 1e-8);
    let lambda = cfg.lambda;
    let warm = cfg.iters / 5;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let batch = cfg.batch.min(rows).max(1);
    for it in 0..cfg.iters {
        let idx: Vec<i64> = (0..batch).map(|_| rng.random_range(0..rows) as i64).collect();
        let sel = Tensor::<1, Int>::from_data(TensorData::new(idx, [batch]), &dev);
        let (xb, tb) = (x_all.clone().select(0, sel.clone()), t_all.clone().select(0, sel));
        let vt = Tensor::<1>::from_data(TensorData::new(v.clone(), [n]), &dev).require_grad();
        let h = (sigmoid(vt.clone()) * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0);
        let wq = lo_t.clone() + h.clone() * step_t.clone();
        let y: Tensor<2> = net.stage(k, xb, Some(&weight_of(&net, k, wq))).reshape([batch, wo]);
        let mut loss = (y - tb).powf_scalar(2.0).sum().div_scalar(batch as f32);
        if it >= warm {
            let frac = (it - warm) as f32 / (cfg.iters - warm).max(1) as f32;
            let beta = 20.0 + (2.0 - 20.0) * frac;
            let reg = (h.mul_scalar(2.0).sub_scalar(1.0).abs().powf_scalar(beta).neg().add_scalar(1.0)).sum();
            loss = loss + reg.mul_scalar(lambda);
        }
        let grads = loss.backward();
        let g: Vec<f32> = vt.grad(&grads).map(|t| t.into_data().iter::<f32>().collect()).unwrap_or_default();
        adam.step(&mut v, &g, 1e-2);
    }
    let weight: Vec<f32> = (0..n)
        .map(|j| {
            let h = (1.0 / (1.0 + (-v[j]).exp()) * (ZETA - GAMMA) + GAMMA).clamp(0.0, 1.0);
            if h >= 0.5 { hi[j] } else { lo[j] }
        })
        .collect();
    let error = layer_error(&net, k, &weight, &x_all, &t_all);
    Ok(LearnedLayer { weight, error, error_nearest })
}

/// AdaRound at `bits` for every layer of `ev`'s network, learned on `calib`: per layer the
/// learned weight, or the nearest-rounded one where learning did not lower the layer's
/// calibration reconstruction error (reported in the second value, per layer).
pub fn adaround(
    ev: &Evaluator,
    calib: &EvalSet,
    bits: BitWidth,
    cfg: &AdaRoundConfig,
    seed: u64,
) -> Result<(Vec<Vec<f32>>, Vec<LearnedLayer>), QuantError> {
    let nearest = Choice { bits, rounding: Rounding::Nearest, target: Target::Both };
    let (mut h_q, mut h_fp) = (calib.x.clone(), calib.x.clone());
    let (mut weights, mut learned) = (Vec::new(), Vec::new());
    for k in 0..ev.n_layers() {
        let x = ev.input(k, &h_q, nearest).unwrap_or_else(|| h_q.clone());
        let target = ev.host.stage(k, &h_fp, None);
        let l = learn_layer(ev, k, bits, &x, &target, cfg, seed ^ ((k as u64) << 20))?;
        let w = if l.error <= l.error_nearest {
            l.weight.clone()
        } else {
            ev.weight(k, nearest).map(|w| w.to_vec()).unwrap_or_default()
        };
        h_q = ev.host.stage(k, &x, Some(&w));
        h_fp = target;
        weights.push(w);
        learned.push(l);
    }
    Ok((weights, learned))
}
