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
        }
    }
}

/// Trains `model` on the split's training examples; `progress(done, total)` is called after
/// every batch. The calibration split gives the per-epoch held-out numbers (one `train.csv`
/// row per epoch, its `run_id` left for the caller that names the run); the test split is
/// not touched.
pub fn train(
    model: &ModelConfig,
    tc: &TrainConfig,
    device: &Device,
    data: &Images,
    split: &Split,
    seed: u64,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(Net, Vec<TrainRow>), ModelError> {
    let adev = device.clone().autodiff();
    let mut net = model.init(&adev, seed);
    let mut optim = match tc.optimizer {
        Optimizer::Adam => AdamConfig::new().init(),
        Optimizer::Sgd => SgdConfig::new().init(),
    };
    let loss_fn = CrossEntropyLossConfig::new().init(&adev);
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5EED_F7A1);
    let bs = tc.batch_size.max(1);
    let per_epoch = split.train.len().div_ceil(bs);
    let (held_x, held_y) = (metrics::batches(data, &split.calib, device), data.gather_labels(&split.calib));
    let mut logs = Vec::new();
    let mut order = split.train.clone();
    for epoch in 1..=tc.epochs {
        let t0 = std::time::Instant::now();
        order.shuffle(&mut rng);
        let mut sum = 0.0;
        for (b, chunk) in order.chunks(bs).enumerate() {
            let x = Tensor::<2>::from_data(TensorData::new(data.gather_f32(chunk), [chunk.len(), 784]), &adev);
            let y = Tensor::<1, Int>::from_data(TensorData::new(data.gather_labels(chunk), [chunk.len()]), &adev);
            let loss = loss_fn.forward(net.forward(x), y);
            let value = loss.clone().into_scalar::<f32>();
            if !value.is_finite() {
                return Err(ModelError::Diverged { epoch, batch: b + 1, loss: value });
            }
            sum += value as f64;
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            let step = (epoch - 1) * per_epoch + b;
            net = optim.step(tc.schedule.at(tc.lr, step, tc.epochs * per_epoch), net, grads);
            progress((epoch - 1) * per_epoch + b + 1, tc.epochs * per_epoch);
        }
        let valid = net.valid();
        let logits: Vec<f32> = held_x
            .iter()
            .flat_map(|x| valid.forward(x.clone()).into_data().iter::<f32>().collect::<Vec<_>>())
            .collect();
        let m = metrics::score(&logits, &held_y, 1.0);
        let seconds = t0.elapsed().as_secs_f64();
        logs.push(TrainRow {
            run_id: String::new(),
            epoch,
            train_loss: sum / per_epoch as f64,
            heldout_loss: m.loss,
            heldout_acc: m.acc,
            seconds,
        });
    }
    Ok((net.valid(), logs))
}
