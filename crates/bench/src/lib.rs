//! `harness bench` as a library: throughput of training, inference and the searches measured
//! side by side in one process, printed as ratios and written to `timing.csv` with the
//! machine in `machine.json`; a second table compares each number with the previous run's in
//! the same folder, so a change that slows something shows. Never a pass/fail threshold.
//!
//! Rows are typed ([`What`], [`Unit`]), and each kind of row names its reference in one
//! function ([`rows::reference`]). Knows nothing of the command line.

pub mod measure;
pub mod rows;
mod suites;

pub use rows::{TimingRow, Unit, What};

use measure::Machine;
use mpq_data::{Split, SplitSizes, shipped};
use mpq_experiment::config::Backend;
use mpq_pipeline::{PipelineError, Result};
use std::path::Path;

/// Runs the benchmark `passes` times on `backends` with `samples` training examples, keeps
/// each row's fastest pass, writes `out/timing.csv` and `out/machine.json`, prints the ratio
/// table and compares with the previous run there.
pub fn bench(backends: &[Backend], samples: usize, out: &Path, passes: usize) -> Result<Vec<TimingRow>> {
    let caller_in_pool = measure::pool_on_this_thread();
    let data = shipped::load()?;
    let split = Split::draw(&data, SplitSizes { train: samples, calib: 1000, test: 1000 }, None, 1)?;
    let machine = Machine::now();
    machine.describe(backends, caller_in_pool);
    // A previous run's table from an older layout is not comparable: it is reported, not fatal.
    let previous: Vec<TimingRow> = match mpq_report::csvio::read(&out.join("timing.csv")) {
        Ok(rows) => rows,
        Err(e) if out.join("timing.csv").exists() => {
            eprintln!("previous run not compared: {e}");
            Vec::new()
        }
        Err(_) => Vec::new(),
    };
    let previous_machine: Option<Machine> =
        std::fs::read_to_string(out.join("machine.json")).ok().and_then(|t| serde_json::from_str(&t).ok());
    let mut rows: Vec<TimingRow> = Vec::new();
    for pass in 1..=passes.max(1) {
        eprintln!("pass {pass} of {passes}");
        let mut this = suites::train_and_search_rows(backends, &data, &split, samples)?;
        this.extend(suites::host_train_rows(&data, &split, samples)?);
        suites::engine_rows(backends, &data, &split, &mut this)?;
        rows::keep_fastest(&mut rows, this);
    }
    std::fs::create_dir_all(out).map_err(PipelineError::io("creating", out))?;
    mpq_report::csvio::write(&out.join("timing.csv"), &rows)?;
    let json = serde_json::to_string_pretty(&machine).unwrap_or_default();
    mpq_pipeline::output::write_atomic(&out.join("machine.json"), json.as_bytes())?;
    rows::print_ratios(&rows);
    let same = previous_machine.as_ref().is_some_and(|p| p.comparable(&machine));
    rows::print_against_previous(&rows, &previous, same);
    eprintln!("wrote {} and machine.json", out.join("timing.csv").display());
    Ok(rows)
}
