//! One struct per CSV file; field order is column order (documented in `results/README.md`).

use crate::Method;
use serde::{Deserialize, Serialize};

/// A row of `runs.csv`: one plan or baseline of one run at one bit width.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct RunRow {
    /// Stable run id (model, backend, seed).
    pub run_id: String,
    /// Dataset name.
    pub dataset: String,
    /// Model name.
    pub model: String,
    /// Backend name.
    pub backend: String,
    /// Run seed.
    pub seed: u64,
    /// Bit width of the plan (32 for full precision).
    pub bits: u32,
    /// Method (see [`Method`] for the names).
    pub method: Method,
    /// Compact plan code.
    pub plan: String,
    /// Weight-count-weighted average bits.
    pub avg_bits: f64,
    /// Model weight bytes under the plan.
    pub model_bytes: f64,
    /// Calibration loss (what the search saw).
    pub calib_loss: f64,
    /// Calibration accuracy.
    pub calib_acc: f64,
    /// Test loss (held out from everything).
    pub test_loss: f64,
    /// Test accuracy.
    pub test_acc: f64,
    /// Full-precision test loss of the same run.
    pub fp_test_loss: f64,
    /// test_loss - fp_test_loss.
    pub delta_test_loss: f64,
    /// Temperature dividing the logits (1 unless a -temp method).
    pub temperature: f64,
    /// Full-plan evaluations the method performed on the calibration split.
    pub evaluations: usize,
    /// Wall time of the method in seconds (timing column, excluded from determinism checks).
    pub seconds: f64,
}

/// A row of `configs.csv`: one rounding configuration of an exhaustive search.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ConfigRow {
    /// Run id.
    pub run_id: String,
    /// Model name.
    pub model: String,
    /// Seed.
    pub seed: u64,
    /// Bit width.
    pub bits: u32,
    /// Plan code.
    pub plan: String,
    /// Calibration loss.
    pub calib_loss: f64,
    /// Test loss.
    pub test_loss: f64,
    /// Test accuracy.
    pub test_acc: f64,
    /// Calibration loss minus full-precision calibration loss.
    pub delta_calib: f64,
    /// Test loss minus full-precision test loss.
    pub delta_test: f64,
    /// First-order Taylor prediction of delta_calib.
    pub taylor_pred: f64,
}

/// A row of `train.csv`: one epoch of one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TrainRow {
    /// Run id.
    pub run_id: String,
    /// Epoch, 1-based.
    pub epoch: usize,
    /// Mean training loss.
    pub train_loss: f64,
    /// Calibration-split loss after the epoch.
    pub heldout_loss: f64,
    /// Calibration-split accuracy after the epoch.
    pub heldout_acc: f64,
    /// Epoch wall time (timing column).
    pub seconds: f64,
}

/// A row of `sensitivity.csv`: the test loss change from quantizing one tensor of one layer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SensitivityRow {
    /// Run id.
    pub run_id: String,
    /// Model name.
    pub model: String,
    /// Seed.
    pub seed: u64,
    /// Bit width.
    pub bits: u32,
    /// Layer index.
    pub layer: usize,
    /// Layer name.
    pub layer_name: String,
    /// Test loss change with only this layer's input quantized (nearest).
    pub delta_input: f64,
    /// Test loss change with only this layer's weight quantized (nearest).
    pub delta_weight: f64,
}

/// A row of `summary.csv`: one method at one bit width of one model, over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct SummaryRow {
    /// Model name.
    pub model: String,
    /// Backend.
    pub backend: String,
    /// Bit width.
    pub bits: u32,
    /// Method.
    pub method: Method,
    /// Seeds aggregated.
    pub seeds: usize,
    /// Mean test loss.
    pub test_loss: f64,
    /// Mean test accuracy.
    pub test_acc: f64,
    /// Mean paired test loss change against full precision.
    pub delta_mean: f64,
    /// 95% Student-t interval over seeds, lower.
    pub delta_lo: f64,
    /// 95% Student-t interval over seeds, upper.
    pub delta_hi: f64,
    /// Fraction of seeds with a negative change.
    pub frac_negative: f64,
}

/// A row of `claims.csv`: one paper claim, our measurement and the verdict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct ClaimRow {
    /// Short id (lower-loss, input-vs-weight, identity-mappings, ...).
    pub claim: String,
    /// The claim as the paper states it, in one line.
    pub statement: String,
    /// The setting measured (model, bits, method).
    pub setting: String,
    /// What was measured, in words.
    pub measurement: String,
    /// Point estimate.
    pub value: f64,
    /// 95% interval, lower.
    pub lo: f64,
    /// 95% interval, upper.
    pub hi: f64,
    /// reproduced / not reproduced / inconclusive, from this claim's interval alone.
    pub verdict: String,
    /// `primary` (the paper's own claims, corrected together with Holm's method) or
    /// `exploratory` (corrected with Benjamini-Hochberg among themselves).
    pub family: String,
    /// Two-sided p-value of a one-sample t-test against the null value.
    pub p_value: f64,
    /// The p-value after the family's multiplicity correction.
    pub p_adjusted: f64,
    /// The verdict at 5% after the correction: what to read first.
    pub verdict_adjusted: String,
    /// Nadeau–Bengio inflation of the standard error, √(1 + n·n_test/n_train) for n repeats
    /// whose training sets overlap (1 where the model's split sizes are unknown).
    pub se_factor: f64,
    /// 95% interval with the inflated standard error, lower.
    pub lo_nb: f64,
    /// 95% interval with the inflated standard error, upper.
    pub hi_nb: f64,
    /// The p-value with the inflated standard error, after the family's correction.
    pub p_adjusted_nb: f64,
    /// The adjusted verdict with the inflated standard error: where it differs from
    /// `verdict_adjusted`, the verdict is fragile to the training data the repeats share.
    pub verdict_nb: String,
    /// How many per-seed values the estimate rests on: what turns the interval back into a
    /// standard error when two replications are compared. In memory only, not a column.
    #[serde(skip)]
    pub seeds: usize,
}

/// A row of `timing.csv`: inference throughput of one run's model on its backend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct TimingRow {
    /// Run id.
    pub run_id: String,
    /// Model name.
    pub model: String,
    /// Backend.
    pub backend: String,
    /// `fp32`, `sim-<b>bit` for simulated quantization (all-nearest) at b bits, or `int<b>` for
    /// the integer engine (backend `engine-<kernel>`) on the same plan.
    pub precision: String,
    /// Bit width (32 for fp32).
    pub bits: u32,
    /// Examples per forward batch.
    pub batch: usize,
    /// Examples per second (best of 3 passes over the test split).
    pub samples_per_s: f64,
}
