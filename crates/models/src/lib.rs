//! Models for mpq: one network type ([`Net`]) built from an architecture description, the
//! MLP, CNN and residual/plain MLP and CNN configs that build it, a seeded training loop, metrics
//! and safetensors checkpoints.
//!
//! The network runs as a sequence of *stages*, one per quantizable layer, over a rank-4
//! activation, so quantization code can rewrite any layer's weight or input without knowing
//! the architecture. This crate knows nothing of quantization search, configs files or CSV.

pub mod checkpoint;
pub mod config;
pub mod error;
pub mod expm;
pub mod host;
pub mod metrics;
pub mod net;
pub mod train;

pub use config::ModelConfig;
pub use error::ModelError;
pub use host::HostNet;
pub use metrics::Metrics;
pub use net::{LayerInfo, LayerKind, Net, Pool, Weight};
pub use train::{BURN_VERSION, Optimizer, Schedule, TRAIN_VERSION, TrainConfig, TrainEngine};
