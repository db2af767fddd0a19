//! Training, written once for every model and backend: burn's autodiff ([`TrainEngine::Burn`])
//! or the host network's fixed-order passes ([`TrainEngine::Host`]), both driven by one
//! seeded loop (shuffles, batches, Adam or SGD, schedule, per-epoch held-out numbers).

mod autodiff;
mod config;
mod host;
mod run_loop;

pub use config::{BURN_VERSION, Optimizer, Schedule, TRAIN_VERSION, TrainConfig, TrainEngine};
pub use run_loop::EpochLog;

use crate::{ModelConfig, ModelError, Net};
use burn::prelude::Device;
use mpq_data::{Images, Split};

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
) -> Result<(Net, Vec<EpochLog>), ModelError> {
    let job = run_loop::Job { model, tc, device, data, split, seed };
    match tc.engine {
        TrainEngine::Host => host::train(&job, progress),
        TrainEngine::Burn if model.batch_norm() => Err(ModelError::Config(format!(
            "{} trains with batch norm, which only the host engine has: set `engine = \"host\"` under [train]",
            model.name()
        ))),
        TrainEngine::Burn => autodiff::train(&job, progress),
    }
}
