//! The wiring behind the `harness` binary: experiment files, the backend-to-device map,
//! sweeps with resume, result files, aggregation, figures and the report. Owns no
//! algorithm: those live in `mpq-data`, `mpq-models`, `mpq-quant` and `mpq-report`.

pub mod backend;
pub mod bench;
pub mod checkpoints;
pub mod claim;
pub mod config;
pub mod dataset;
pub mod export;
pub mod locate;
pub mod output;
pub mod publish;
pub mod replicate;
pub mod run;
pub mod schedule;
pub mod shard;

pub mod sweep;
pub mod validate;
