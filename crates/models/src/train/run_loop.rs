//! The seeded loop every training engine runs: epochs of shuffles, batches, the schedule's
//! learning rate, and one log row per epoch.

use super::config::TrainConfig;
use crate::{ModelConfig, ModelError, metrics};
use burn::prelude::Device;
use mpq_data::{Images, Split};
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// What one training run is given: the model to build, the training config, the device
/// the trained network is placed on, the data with its split, and the seed.
#[derive(Clone, Copy)]
pub(super) struct Job<'a> {
    /// The architecture to initialize.
    pub model: &'a ModelConfig,
    /// Epochs, batch size, optimizer, schedule and engine.
    pub tc: &'a TrainConfig,
    /// Where the trained network goes.
    pub device: &'a Device,
    /// All examples.
    pub data: &'a Images,
    /// Which of them train, and which give the held-out numbers.
    pub split: &'a Split,
    /// Initialization and shuffling seed.
    pub seed: u64,
}

/// What a training engine does for [`run_loop`], which owns the seeded shuffles, batches,
/// schedule and logs, so every engine trains the same way.
pub(super) trait Steps {
    /// One optimizer step on the batch `x` (flattened pixels), labels `y`, at learning rate
    /// `lr`; returns the batch's mean loss before the step, or the non-finite loss without
    /// stepping.
    fn step(&mut self, x: Vec<f32>, y: Vec<i64>, lr: f64) -> f64;
    /// Loss and accuracy on the calibration split now.
    fn heldout(&mut self) -> metrics::Metrics;
}

/// One epoch of training, as the loop measured it (the pipeline files it under its run).
#[derive(Debug, Clone, PartialEq)]
pub struct EpochLog {
    /// Epoch, 1-based.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Calibration-split loss after the epoch.
    pub heldout_loss: f64,
    /// Calibration-split accuracy after the epoch.
    pub heldout_acc: f64,
    /// Epoch wall time.
    pub seconds: f64,
}

/// The training loop of every engine: epochs of seeded shuffles, batches, the schedule's
/// learning rate, one [`EpochLog`] per epoch; stops with [`ModelError::Diverged`].
pub(super) fn run_loop(
    job: &Job,
    progress: &mut dyn FnMut(usize, usize),
    steps: &mut dyn Steps,
) -> Result<Vec<EpochLog>, ModelError> {
    let Job { tc, data, split, seed, .. } = *job;
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
        logs.push(EpochLog {
            epoch,
            train_loss: sum / per_epoch as f64,
            heldout_loss: m.loss,
            heldout_acc: m.acc,
            seconds: t0.elapsed().as_secs_f64(),
        });
    }
    Ok(logs)
}
