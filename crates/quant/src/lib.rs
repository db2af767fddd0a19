//! Quantization for mpq: uniform integer quantizers with nearest, floor, ceil and stochastic
//! rounding; layer plans; static calibration of layer inputs; quantized evaluation with
//! prefix-activation reuse; search strategies; baselines and statistics.
//!
//! Works on any [`mpq_models::Net`] through its stage API; knows nothing of TOML, CSV or plots.

pub mod calib;
pub mod error;
pub mod eval;
pub mod plan;
pub mod scalar;
pub mod search;
pub mod stats;
pub mod tensor;

pub use error::QuantError;
pub use plan::{Choice, Plan, Rounding, Target};
