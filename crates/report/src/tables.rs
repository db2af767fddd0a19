//! The result tables of an experiment (`runs.csv`, `configs.csv`, `train.csv`,
//! `sensitivity.csv`, `timing.csv`), written and read together.

use crate::csvio;
use crate::{ConfigRow, ReportError, RunRow, SensitivityRow, TimingRow, TrainRow};
use std::path::Path;

/// All tables of an experiment, merged from its runs in run-id order.
#[derive(Default)]
pub struct Tables {
    /// `runs.csv`.
    pub runs: Vec<RunRow>,
    /// `configs.csv`.
    pub configs: Vec<ConfigRow>,
    /// `train.csv`.
    pub train: Vec<TrainRow>,
    /// `sensitivity.csv`.
    pub sensitivity: Vec<SensitivityRow>,
    /// `timing.csv`.
    pub timing: Vec<TimingRow>,
}

impl Tables {
    /// Writes the four CSV files into `out`.
    pub fn write(&self, out: &Path) -> Result<(), ReportError> {
        csvio::write(&out.join("runs.csv"), &self.runs)?;
        csvio::write(&out.join("configs.csv"), &self.configs)?;
        csvio::write(&out.join("train.csv"), &self.train)?;
        csvio::write(&out.join("sensitivity.csv"), &self.sensitivity)?;
        csvio::write(&out.join("timing.csv"), &self.timing)?;
        Ok(())
    }

    /// Reads the four CSV files back from `out`.
    pub fn read(out: &Path) -> Result<Tables, ReportError> {
        Ok(Tables {
            runs: csvio::read(&out.join("runs.csv"))?,
            configs: csvio::read(&out.join("configs.csv"))?,
            train: csvio::read(&out.join("train.csv"))?,
            sensitivity: csvio::read(&out.join("sensitivity.csv"))?,
            // Results from before timing.csv existed have none; a damaged one is an error.
            timing: match out.join("timing.csv") {
                p if p.exists() => csvio::read(&p)?,
                _ => Vec::new(),
            },
        })
    }
}
