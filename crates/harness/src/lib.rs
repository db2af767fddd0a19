//! The wiring behind the `harness` binary: scheduling an experiment's runs (several at once,
//! with resume and progress), writing the tables, figures and report, and the `export` and
//! `replicate` commands. Owns no algorithm: experiment files live in `mpq-experiment`, shards
//! and claims in `mpq-cluster`, one run in `mpq-pipeline`, the statistics, tables and figures
//! in `mpq-report`, and the benchmark in `mpq-bench`.

pub mod export;
pub mod publish;
pub mod replicate;
pub mod schedule;
pub mod sweep;
