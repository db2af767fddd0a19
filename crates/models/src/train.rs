//! The seeded training loop (Adam or SGD), written once for every model and backend.

use crate::{ModelConfig, ModelError, Net, metrics};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams, SgdConfig};
use burn::prelude::*;
use mpq_data::{Images, Split};
use mpq_report::TrainRow;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// Version of everything besides configs, data and seed that determines trained weights:
/// initialization, the training loop, batching and the data pipeline. Part of every
/// checkpoint's cache key, so a change here never reuses old checkpoints. Bump it with any
/// such change: `tests/train_version.rs` holds the weights a tiny training run gives at this
/// version and fails until both are updated together.
pub const TRAIN_VERSION: u32 = 2;

/// The burn release trained weights come from, read from `Cargo.lock` when this crate is
/// built (`build.rs`); part of the checkpoint cache key.
pub const BURN_VERSION: &str = env!("MPQ_BURN_VERSION");

/// Which optimizer trains the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Optimizer {
    /// Adam with burn's default betas.
    #[default]
    Adam,
    /// Plain SGD.
    Sgd,
}

/// Training hyper-parameters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// Passes over the training split.
    #[serde(default = "default_epochs")]
    pub epochs: usize,
    /// Examples per step.
    #[serde(default = "default_batch")]
    pub batch_size: usize,
    /// Learning rate.
    #[serde(default = "default_lr")]
    pub lr: f64,
    /// Optimizer.
    #[serde(default)]
    pub optimizer: Optimizer,
    /// Learning-rate schedule over all steps.
    #[serde(default)]
    pub schedule: Schedule,
    /// Which code computes the training steps. Left out of the serialized config (and so of
    /// checkpoint cache keys) when it is the default, so burn-trained checkpoints keep
    /// their keys.
    #[serde(default, skip_serializing_if = "TrainEngine::is_burn")]
    pub engine: TrainEngine,
}

/// Which code computes the forward and backward passes of training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum TrainEngine {
    /// burn's autodiff on the run's backend: its float kernels, so the weights depend on
    /// the CPU's SIMD level.
    #[default]
    Burn,
    /// The host network's fixed-order passes ([`crate::host::train`]): the same weights on
    /// every CPU and thread count, and several times faster for the CNN.
    Host,
}

impl TrainEngine {
    /// Whether this is the default engine (for `skip_serializing_if`).
    pub fn is_burn(&self) -> bool {
        *self == TrainEngine::Burn
    }
}

/// How the learning rate changes over training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Schedule {
    /// Cosine decay from `lr` to 0 over all steps (stable final weights).
    #[default]
    Cosine,
    /// The same `lr` throughout.
    Constant,
}

impl Schedule {
    /// The learning rate at `step` of `total`.
    pub fn at(self, lr: f64, step: usize, total: usize) -> f64 {
        match self {
            Schedule::Constant => lr,
            Schedule::Cosine => lr * 0.5 * (1.0 + (std::f64::consts::PI * step as f64 / total.max(1) as f64).cos()),
        }
    }
}

fn default_epochs() -> usize {
    5
}
fn default_batch() -> usize {
    64
}
fn default_lr() -> f64 {
    1e-3
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            epochs: default_epochs(),
            batch_size: default_batch(),
            lr: default_lr(),
            optimizer: Optimizer::Adam,
            schedule: Schedule::Cosine,
            engine: TrainEngine::Burn,
        }
    }
}

/// Trains `model` on the split's training examples; `progress(done, total)` is called after
/// every batch. The calibration split gives the per-epoch held-out numbers (one `train.csv`
/// row per epoch, its `run_id` left for the caller that names the run); the test split is
/// not touched. [`TrainConfig::engine`] says which code runs the steps.
pub fn train(
    model: &ModelConfig,
    tc: &TrainConfig,
    device: &Device,
    data: &Images,
    split: &Split,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Net, Vec<TrainRow>), ModelError> {
    if tc.engine == TrainEngine::Host {
        return crate::host::train::train(model, tc, device, data, split, seed, progress);
    }
    let adev = device.clone().autodiff();
    let optim = match tc.optimizer {
        Optimizer::Adam => AdamConfig::new().init(),
        Optimizer::Sgd => SgdConfig::new().init(),
    };
    let held = (metrics::batches(data, &split.calib, device), data.gather_labels(&split.calib));
    let (net, loss) = (Some(model.init(&adev, seed)), CrossEntropyLossConfig::new().init(&adev));
    let mut steps = BurnSteps { net, optim, loss, held, dev: adev };
    let logs = run_loop(tc, data, split, seed, progress, &mut steps)?;
    Ok((steps.net.map(|n| n.valid()).unwrap_or_else(|| model.init(device, seed)), logs))
}

/// What a training engine does for [`run_loop`], which owns the seeded shuffles, batches,
/// schedule and logs, so every engine trains the same way.
pub(crate) trait Steps {
    /// One optimizer step on the batch `x` (flattened pixels), labels `y`, at learning rate
    /// `lr`; returns the batch's mean loss before the step, or the non-finite loss without
    /// stepping.
    fn step(&mut self, x: Vec<f32>, y: Vec<i64>, lr: f64) -> f64;
    /// Loss and accuracy on the calibration split now.
    fn heldout(&mut self) -> metrics::Metrics;
}

/// The training loop of every engine: epochs of seeded shuffles, batches, the schedule's
/// learning rate, one `TrainRow` per epoch; stops with [`ModelError::Diverged`].
pub(crate) fn run_loop(
    tc: &TrainConfig,
    data: &Images,
    split: &Split,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
    steps: &mut dyn Steps,
) -> Result<Vec<TrainRow>, ModelError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_F7A1);
    let bs = tc.batch_size.max(1);
    let (per_epoch, mut logs, mut order) = (split.train.len().div_ceil(bs), Vec::new(), split.train.clone());
    for epoch in 1..=tc.epochs {
        let t0 = std::time::Instant::now();
        order.shuffle(&mut rng);
        let mut sum = 0.0;
        for (b, chunk) in order.chunks(bs).enumerate() {
            let step = (epoch - 1) * per_epoch + b;
            let lr = tc.schedule.at(tc.lr, step, tc.epochs * per_epoch);
            let value = steps.step(data.gather_f32(chunk), data.gather_labels(chunk), lr);
            if !value.is_finite() {
                return Err(ModelError::Diverged { epoch, batch: b + 1, loss: value as f32 });
            }
            sum += value;
            progress(step + 1, tc.epochs * per_epoch);
        }
        let m = steps.heldout();
        logs.push(TrainRow {
            run_id: String::new(),
            epoch,
            train_loss: sum / per_epoch as f64,
            heldout_loss: m.loss,
            heldout_acc: m.acc,
            seconds: t0.elapsed().as_secs_f64(),
        });
    }
    Ok(logs)
}

/// burn's autodiff on the run's backend.
struct BurnSteps {
    /// The network being trained (taken out and put back by each optimizer step).
    net: Option<Net>,
    optim: burn::optim::ModuleOptimizer,
    loss: burn::nn::loss::CrossEntropyLoss,
    /// The calibration split as input batches, and its labels.
    held: (Vec<Tensor<2>>, Vec<i64>),
    /// The autodiff device the batches go to.
    dev: Device,
}

impl Steps for BurnSteps {
    fn step(&mut self, x: Vec<f32>, y: Vec<i64>, lr: f64) -> f64 {
        let Some(net) = self.net.take() else { return f64::NAN };
        let (dev, n) = (&self.dev, y.len());
        let x = Tensor::<2>::from_data(TensorData::new(x, [n, 784]), dev);
        let y = Tensor::<1, Int>::from_data(TensorData::new(y, [n]), dev);
        let loss = self.loss.forward(net.forward(x), y);
        let value = loss.clone().into_scalar::<f32>();
        if !value.is_finite() {
            self.net = Some(net);
            return value as f64;
        }
        let grads = GradientsParams::from_grads(loss.backward(), &net);
        self.net = Some(self.optim.step(lr, net, grads));
        value as f64
    }

    fn heldout(&mut self) -> metrics::Metrics {
        let Some(net) = &self.net else { return metrics::Metrics { loss: f64::NAN, acc: 0.0 } };
        let valid = net.valid();
        let logits: Vec<f32> = self
            .held
            .0
            .iter()
            .flat_map(|x| valid.forward(x.clone()).into_data().iter::<f32>().collect::<Vec<_>>())
            .collect();
        metrics::score(&logits, &self.held.1, 1.0)
    }
}
