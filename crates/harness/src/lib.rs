//! The wiring behind the `harness` binary: experiment files and their checks, the
//! backend-to-device map, the data and checkpoints of runs, executing runs (sharded, claimed,
//! several at once) with resume, result files, and writing the tables, figures and report
//! that `mpq-report` computes. Owns no algorithm: those live in `mpq-data`, `mpq-models`,
//! `mpq-quant`, `mpq-lowbit` and `mpq-report`.

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
