//! Scaling out: runs at once in one process (`--jobs`), two processes on one results folder,
//! and a sweep sharded over processes, one of them killed and resubmitted. Every way ends
//! with the rows of a plain one-process run.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const TABLES: [&str; 6] = ["runs", "configs", "train", "sensitivity", "summary", "claims"];

/// A smoke experiment writing into `<tmp>/<name>`; returns the file.
fn setup(tmp: &Path, name: &str) -> PathBuf {
    let dir = tmp.join(format!("{name}-exp"));
    std::fs::create_dir_all(&dir).unwrap();
    smoke_in(&dir, &tmp.join(name))
}

fn spawn(args: &[&str]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_harness"))
        .args(args)
        .current_dir(root())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn assert_same_tables(reference: &Path, other: &Path, what: &str) {
    for t in TABLES {
        let a = std::fs::read_to_string(reference.join(format!("smoke/{t}.csv"))).unwrap();
        let b = std::fs::read_to_string(other.join(format!("smoke/{t}.csv"))).unwrap();
        assert_eq!(without_timing(&a), without_timing(&b), "{t}.csv: {what}");
    }
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn reference(tmp: &Path) -> PathBuf {
    let f = setup(tmp, "ref");
    let o = harness(&[f.to_str().unwrap(), "--jobs", "1"]);
    assert!(o.status.success(), "{}", stderr(&o));
    tmp.join("ref")
}

#[test]
fn jobs_two_processes_and_shards_give_the_rows_of_one_process() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = reference(tmp.path());

    // --jobs 2: two runs at once, one thread each.
    let f = setup(tmp.path(), "jobs");
    let o = harness(&[f.to_str().unwrap(), "--jobs", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("2 jobs at once"), "{}", stderr(&o));
    assert_same_tables(&reference, &tmp.path().join("jobs"), "--jobs 2");

    // Two processes started at once on one folder: every run is done exactly once.
    let f = setup(tmp.path(), "twice");
    let children = [spawn(&[f.to_str().unwrap()]), spawn(&[f.to_str().unwrap()])];
    let outputs: Vec<Output> = children.into_iter().map(|c| c.wait_with_output().unwrap()).collect();
    let logs: String = outputs.iter().map(stderr).collect();
    for o in &outputs {
        assert!(o.status.success(), "{logs}");
    }
    let ids: Vec<String> = std::fs::read_dir(tmp.path().join("twice/smoke/runs"))
        .unwrap()
        .map(|e| e.unwrap().path().file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(ids.len(), 6, "{ids:?}");
    for id in &ids {
        let done = logs.lines().filter(|l| l.starts_with(&format!("run {id} (")) && l.ends_with(" ok")).count();
        assert_eq!(done, 1, "run {id} done {done} times:\n{logs}");
    }
    assert_same_tables(&reference, &tmp.path().join("twice"), "two processes at once");
    assert_no_leftovers(&tmp.path().join("twice/smoke"));
}

/// No claim, takeover lock or temporary file is left in a finished results folder.
fn assert_no_leftovers(dir: &Path) {
    for entry in walk(dir) {
        let name = entry.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            !(name.ends_with(".claim") || name.ends_with(".takeover") || name.contains(".tmp")),
            "left behind: {}",
            entry.display()
        );
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten() {
        let p = e.unwrap().path();
        if p.is_dir() { out.extend(walk(&p)) } else { out.push(p) }
    }
    out
}

#[test]
fn a_killed_shard_resubmitted_completes_the_sweep() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = reference(tmp.path());
    let f = setup(tmp.path(), "sharded");
    let file = f.to_str().unwrap();
    let res = tmp.path().join("sharded/smoke");

    // Nothing yet: gather lists every run with its shard and exits 1.
    let o = harness(&["gather", file, "--shards", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("6 of 6 runs have no results") && stderr(&o).contains("(shard 1/2)"), "{}", stderr(&o));

    // Shard 1 runs to the end, through the SLURM array variables.
    let o = Command::new(env!("CARGO_BIN_EXE_harness"))
        .args([file])
        .env("SLURM_ARRAY_TASK_ID", "11")
        .env("SLURM_ARRAY_TASK_MIN", "10")
        .env("SLURM_ARRAY_TASK_COUNT", "2")
        .current_dir(root())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(stderr(&o).contains("shard 1/2:"), "{}", stderr(&o));
    assert!(!res.join("runs.csv").exists(), "a shard builds no tables");

    // Shard 0 is killed while it holds a claim on a run.
    let mut child = spawn(&[file, "--shard", "0/2"]);
    let claims = res.join("claims");
    let t0 = Instant::now();
    let held = loop {
        let found =
            std::fs::read_dir(&claims).into_iter().flatten().filter_map(|e| e.ok().map(|e| e.path())).find(|p| {
                p.extension().is_some_and(|x| x == "claim") && std::fs::metadata(p).is_ok_and(|m| m.len() > 0)
            });
        if let Some(p) = found {
            break p;
        }
        assert!(t0.elapsed() < Duration::from_secs(60), "shard 0 never claimed a run");
        std::thread::sleep(Duration::from_millis(2));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(held.exists(), "the killed shard's claim stays behind");
    let o = harness(&["gather", file, "--shards", "2"]);
    assert_eq!(o.status.code(), Some(1), "{}", stderr(&o));
    assert!(stderr(&o).contains("(shard 0/2)") && !stderr(&o).contains("(shard 1/2)"), "{}", stderr(&o));

    // Resubmitted, shard 0 takes over its dead claim and finishes; gather completes.
    let o = harness(&[file, "--shard", "0/2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let o = harness(&["gather", file, "--shards", "2"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_same_tables(&reference, &tmp.path().join("sharded"), "killed and resubmitted shards");
    assert_no_leftovers(&res);
}
