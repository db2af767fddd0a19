//! Training hyper-parameters and the versions that key trained weights.

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
    /// The host network's fixed-order passes ([`mpq_host`]): the same weights on
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
