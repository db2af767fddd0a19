//! Quantization for mpq: uniform integer quantizers (over the grid of [`mpq_net::grid`]) with
//! nearest, floor, ceil and stochastic rounding; layer plans; static calibration of layer inputs; quantized evaluation with
//! prefix-activation reuse; search strategies; baselines (temperature scaling, AdaRound's
//! learned per-element rounding); packing a plan for the integer engine.
//!
//! Works on any [`mpq_models::Net`] through its stage API; knows nothing of TOML, CSV or plots.

pub mod adaround;
pub mod calib;
pub mod error;
pub mod eval;
pub mod export;
pub mod host;
pub mod plan;
pub mod search;
pub mod stats;
pub mod tensor;

pub use error::QuantError;

/// Version of everything after training that determines results: quantizers, calibration,
/// host evaluation, searches, gradients and baselines. Recorded in `paper/provenance.json`;
/// `tests/quant_version.rs` holds what a fixed network and plan set give at this version and
/// fails until both are updated together.
pub const QUANT_VERSION: u32 = 2;
pub use mpq_net::{BitWidth, Rounding};
pub use plan::{Choice, Plan, Target};
