//! Helpers shared by the harness integration tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Runs the harness binary from the workspace root.
pub fn harness(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_harness")).args(args).current_dir(root()).output().expect("harness runs")
}

/// A copy of `experiments/smoke.toml` writing into `out`; returns the file path.
pub fn smoke_in(dir: &Path, out: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("experiments/smoke.toml")).unwrap();
    let text = format!("output = {:?}\n{text}", out.display().to_string());
    let file = dir.join("smoke.toml");
    std::fs::write(&file, text).unwrap();
    file
}

/// CSV text with the named timing columns removed.
pub fn without_timing(text: &str) -> String {
    let mut lines = text.lines();
    let header: Vec<&str> = lines.next().unwrap_or("").split(',').collect();
    let keep: Vec<usize> = (0..header.len()).filter(|&i| header[i] != "seconds").collect();
    let pick = |l: &str| {
        let cells: Vec<&str> = l.split(',').collect();
        keep.iter().map(|&i| cells.get(i).copied().unwrap_or("")).collect::<Vec<_>>().join(",")
    };
    std::iter::once(pick(&header.join(","))).chain(lines.map(pick)).collect::<Vec<_>>().join("\n")
}
