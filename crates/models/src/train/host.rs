//! Training on the host: the seeded loop of [`crate::train`] (initialization, shuffling,
//! batches, Adam or SGD, schedule, per-epoch held-out numbers), with the forward and
//! backward passes of [`mpq_host`], whose sums run in a fixed order. The trained weights
//! are therefore the same on every CPU, SIMD level and thread count, unlike burn's, and the
//! CNN trains faster than on burn's CPU backends.

use super::config::Optimizer;
use super::run_loop::{EpochLog, Job, Steps, run_loop};
use crate::{ModelError, Net, metrics};
use mpq_host::batchnorm::BatchNorm;
use mpq_host::bn_net::BnGrads;
use mpq_host::optim::{Adam, sgd_step};
use mpq_host::{BnNet, Grads, HostNet};

/// The optimizer's state for every parameter, in the order weight 0, bias 0, weight 1, ...:
/// burn's Adam (its defaults and its form), or SGD, so both engines run the same optimizer.
struct Optim {
    kind: Optimizer,
    adam: Vec<Adam>,
}

impl Optim {
    /// State for `net`'s weights and biases, then the scale and shift of each batch norm in
    /// `bns`.
    fn new(kind: Optimizer, net: &HostNet, bns: &BnNet) -> Optim {
        let params = net.weights.iter().zip(&net.biases).flat_map(|(w, b)| [w.len(), b.len()]);
        let norms = bns.bns.iter().flatten().flat_map(|bn| [bn.gamma.len(), bn.beta.len()]);
        Optim { kind, adam: params.chain(norms).map(Adam::burn).collect() }
    }

    /// One step at learning rate `lr` (elementwise and exactly rounded: the same bits
    /// everywhere), of `net`'s weights and biases and then of `norms`' scales and shifts.
    fn step(&mut self, net: &mut HostNet, grads: &Grads, norms: Option<(&mut [Option<BatchNorm>], &BnGrads)>, lr: f64) {
        let lr = lr as f32;
        let params = net.weights.iter_mut().zip(net.biases.iter_mut()).flat_map(|(w, b)| [w, b]);
        let gs = grads.weight.iter().zip(&grads.bias).flat_map(|(w, b)| [w, b]);
        let (mut np, mut ng) = (Vec::new(), Vec::new());
        if let Some((bn, bg)) = norms {
            for ((n, gg), gb) in bn.iter_mut().zip(&bg.gamma).zip(&bg.beta) {
                if let Some(n) = n {
                    np.extend([&mut n.gamma, &mut n.beta]);
                    ng.extend([gg, gb]);
                }
            }
        }
        for ((p, g), adam) in params.chain(np).zip(gs.chain(ng)).zip(&mut self.adam) {
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
    // Batch norm after every convolution where the model asks for it; none otherwise.
    let bn = BnNet::new(HostNet::default(), |_| false);
    let bn = if model.batch_norm() { BnNet::new(net.clone(), |_| true) } else { bn };
    let optim = Optim::new(tc.optimizer, &net, &bn);
    let held = (data.gather_f32(&split.calib), data.gather_labels(&split.calib));
    let mut steps = HostSteps { net, bn, optim, held };
    let logs = run_loop(job, progress, &mut steps)?;
    let trained = if model.batch_norm() { steps.bn.folded() } else { steps.net };
    Ok((init.with_host(trained, device)?, logs))
}

/// The host network (or, for a model with batch norm, the network with its batch norms),
/// its optimizer state and the calibration split (pixels, labels).
struct HostSteps {
    net: HostNet,
    bn: BnNet,
    optim: Optim,
    held: (Vec<f32>, Vec<i64>),
}

impl Steps for HostSteps {
    fn step(&mut self, x: Vec<f32>, y: Vec<i64>, lr: f64) -> f64 {
        if self.bn.bns.iter().any(Option::is_some) {
            let (grads, bg, logits) = self.bn.train_backprop(&x, &y);
            let value = metrics::score(&logits, &y, 1.0).loss;
            if value.is_finite() {
                let BnNet { net, bns } = &mut self.bn;
                self.optim.step(net, &grads, Some((bns, &bg)), lr);
            }
            return value;
        }
        let (grads, logits) = self.net.backprop(&x, &y, None, false);
        let value = metrics::score(&logits, &y, 1.0).loss;
        if value.is_finite() {
            self.optim.step(&mut self.net, &grads, None, lr);
        }
        value
    }

    /// Held-out numbers of the deployed network (batch norm folded, running statistics).
    fn heldout(&mut self) -> metrics::Metrics {
        let logits = if self.bn.bns.iter().any(Option::is_some) {
            self.bn.folded().forward(&self.held.0)
        } else {
            self.net.forward(&self.held.0)
        };
        metrics::score(&logits, &self.held.1, 1.0)
    }
}
