//! Training on the host: the seeded loop of [`crate::train`] (initialization, shuffling,
//! batches, Adam or SGD, schedule, per-epoch held-out numbers), with the forward and
//! backward passes of [`super::grad`], whose sums run in a fixed order. The trained weights
//! are therefore the same on every CPU, SIMD level and thread count, unlike burn's, and the
//! CNN trains faster than on burn's CPU backends.

use super::HostNet;
use crate::train::{Optimizer, Steps, TrainConfig, run_loop};
use crate::{ModelConfig, ModelError, Net, metrics};
use burn::prelude::Device;
use mpq_data::{Images, Split};
use mpq_report::TrainRow;

/// Adam's or SGD's state for every parameter, in the order weight 0, bias 0, weight 1, ...
struct Optim {
    kind: Optimizer,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    t: i32,
}

/// burn's Adam defaults (`AdamConfig::new()`), so both engines run the same optimizer.
const BETA1: f32 = 0.9;
const BETA2: f32 = 0.999;
const EPS: f32 = 1e-5;

impl Optim {
    fn new(kind: Optimizer, net: &HostNet) -> Optim {
        let zeros = |v: &Vec<f32>| vec![0f32; v.len()];
        let m: Vec<Vec<f32>> = net.weights.iter().zip(&net.biases).flat_map(|(w, b)| [zeros(w), zeros(b)]).collect();
        Optim { kind, v: m.clone(), m, t: 0 }
    }

    /// One step at learning rate `lr`, with burn's formulas: SGD `p -= lr g`; Adam
    /// `m = β1 m + (1-β1) g`, `v = β2 v + (1-β2) g²`, `p -= lr m c / (√v + ε √(1-β2ᵗ))` with
    /// `c = √(1-β2ᵗ) / (1-β1ᵗ)`. Elementwise and exactly rounded: the same bits everywhere.
    fn step(&mut self, net: &mut HostNet, grads: &super::grad::Grads, lr: f64) {
        self.t += 1;
        let lr = lr as f32;
        let bc2 = (1.0 - BETA2.powi(self.t)).sqrt();
        let (cf, eps) = (bc2 / (1.0 - BETA1.powi(self.t)), EPS * bc2);
        let params = net.weights.iter_mut().zip(net.biases.iter_mut()).flat_map(|(w, b)| [w, b]);
        let gs = grads.weight.iter().zip(&grads.bias).flat_map(|(w, b)| [w, b]);
        for (((p, g), m), v) in params.zip(gs).zip(&mut self.m).zip(&mut self.v) {
            match self.kind {
                Optimizer::Sgd => p.iter_mut().zip(g).for_each(|(p, &g)| *p -= g * lr),
                Optimizer::Adam => {
                    for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
                        *m = *m * BETA1 + g * (1.0 - BETA1);
                        *v = *v * BETA2 + g * g * (1.0 - BETA2);
                        *p -= *m * cf / (v.sqrt() + eps) * lr;
                    }
                }
            }
        }
    }
}

/// Trains `model` as [`crate::train::train`] does (same initialization from `seed`, same
/// shuffles, batches, optimizer and schedule), on the host; the result is placed on
/// `device`.
pub fn train(
    model: &ModelConfig,
    tc: &TrainConfig,
    device: &Device,
    data: &Images,
    split: &Split,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Net, Vec<TrainRow>), ModelError> {
    let init = model.init(device, seed);
    let net = HostNet::from_net(&init);
    let optim = Optim::new(tc.optimizer, &net);
    let mut steps = HostSteps { net, optim, held: (data.gather_f32(&split.calib), data.gather_labels(&split.calib)) };
    let logs = run_loop(tc, data, split, seed, progress, &mut steps)?;
    Ok((steps.net.into_net(init, device)?, logs))
}

/// The host network, its optimizer state and the calibration split (pixels, labels).
struct HostSteps {
    net: HostNet,
    optim: Optim,
    held: (Vec<f32>, Vec<i64>),
}

impl Steps for HostSteps {
    fn step(&mut self, x: Vec<f32>, y: Vec<i64>, lr: f64) -> f64 {
        let (grads, logits) = self.net.backprop(&x, &y, None, false);
        let value = metrics::score(&logits, &y, 1.0).loss;
        if value.is_finite() {
            self.optim.step(&mut self.net, &grads, lr);
        }
        value
    }

    fn heldout(&mut self) -> metrics::Metrics {
        metrics::score(&self.net.forward(&self.held.0), &self.held.1, 1.0)
    }
}

impl HostNet {
    /// `net` (a network of the same architecture) with this network's parameters.
    pub fn into_net(self, net: Net, device: &Device) -> Result<Net, ModelError> {
        let (mut convs, mut linears) = (Vec::new(), Vec::new());
        for ((kind, w), b) in self.kinds.iter().zip(self.weights).zip(self.biases) {
            match kind {
                crate::LayerKind::Conv { .. } => convs.push((w, b)),
                crate::LayerKind::Linear { .. } => linears.push((w, b)),
            }
        }
        let mut values = convs.into_iter().chain(linears).flat_map(|(w, b)| [w, b]);
        let named: Vec<(String, Vec<usize>, Vec<f32>)> =
            net.named_tensors().into_iter().map(|(n, d, _)| (n, d, values.next().unwrap_or_default())).collect();
        net.load_named(&named, device).map_err(|reason| ModelError::Config(format!("host parameters: {reason}")))
    }
}
