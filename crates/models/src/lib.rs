//! Models for mpq: burn's network ([`Net`]) built from the shared description
//! ([`mpq_net::Arch`]), the MLP, CNN and residual/plain MLP and CNN configs that build it,
//! training (burn's autodiff, or the f32 host executor of [`mpq_host`]) in one seeded loop,
//! metrics and safetensors checkpoints. [`Net::to_host`] hands a network to the host executor.
//!
//! The network runs as a sequence of *stages*, one per quantizable layer, over a rank-4
//! activation, so quantization code can rewrite any layer's weight or input without knowing
//! the architecture. This crate knows nothing of quantization search, configs files or CSV.

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod expm;
pub mod metrics;
pub mod net;
pub mod train;

pub use config::{Imported, ModelConfig, Real};
pub use error::ModelError;
pub use metrics::Metrics;
pub use net::{Carry, LayerInfo, LayerKind, Net, Pool, Weight};
pub use train::{BURN_VERSION, EpochLog, Optimizer, Schedule, TRAIN_VERSION, TrainConfig, TrainEngine};
