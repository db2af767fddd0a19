//! Training on the host: the seeded loop of [`crate::train`] (initialization, shuffling,
//! batches, Adam or SGD, schedule, per-epoch held-out numbers), with the forward and
//! backward passes of [`mpq_host`], whose sums run in a fixed order. The trained weights
//! are therefore the same on every CPU, SIMD level and thread count, unlike burn's, and the
//! CNN trains faster than on burn's CPU backends.

use super::config::Optimizer;
use super::run_loop::{EpochLog, Job, Steps, run_loop};
use crate::{ModelError, Net, metrics};
use mpq_host::optim::{Adam, sgd_step};
use mpq_host::{Grads, HostNet};

/// The optimizer's state for every parameter, in the order weight 0, bias 0, weight 1, ...:
/// burn's Adam (its defaults and its form), or SGD, so both engines run the same optimizer.
struct Optim {
    kind: Optimizer,
    adam: Vec<Adam>,
}

impl Optim {
    fn new(kind: Optimizer, net: &HostNet) -> Optim {
        let params = net.weights.iter().zip(&net.biases).flat_map(|(w, b)| [w.len(), b.len()]);
        Optim { kind, adam: params.map(Adam::burn).collect() }
    }

    /// One step at learning rate `lr` (elementwise and exactly rounded: the same bits
    /// everywhere).
    fn step(&mut self, net: &mut HostNet, grads: &Grads, lr: f64) {
        let lr = lr as f32;
        let params = net.weights.iter_mut().zip(net.biases.iter_mut()).flat_map(|(w, b)| [w, b]);
        let gs = grads.weight.iter().zip(&grads.bias).flat_map(|(w, b)| [w, b]);
        for ((p, g), adam) in params.zip(gs).zip(&mut self.adam) {
            match self.kind {
                Optimizer::Sgd => sgd_step(p, g, lr),
                Optimizer::Adam => adam.step(p, g, lr),
            }
        }
    }
}

/// Trains `model` as [`super::train`] does (same initialization from `seed`, same
/// shuffles, batches, optimizer and schedule), on the host; the result is placed on
/// `device`.
pub(super) fn train(job: &Job, progress: &mut dyn FnMut(usize, usize)) -> Result<(Net, Vec<EpochLog>), ModelError> {
    let Job { model, tc, device, data, split, seed } = *job;
    let init = model.init(device, seed);
    let net = init.to_host();
    let optim = Optim::new(tc.optimizer, &net);
    let mut steps = HostSteps { net, optim, held: (data.gather_f32(&split.calib), data.gather_labels(&split.calib)) };
    let logs = run_loop(job, progress, &mut steps)?;
    Ok((init.with_host(steps.net, device)?, logs))
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
