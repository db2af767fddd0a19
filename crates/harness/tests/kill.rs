//! A sweep killed at 20 points (SIGKILL and SIGINT alternating, seeded delays) and then run
//! to completion ends with exactly the rows of an uninterrupted run: none missing, none
//! duplicated, no torn lines.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

#[test]
fn killed_sweeps_resume_to_identical_rows() {
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("ref");
    let ref_dir = tmp.path().join("a");
    std::fs::create_dir_all(&ref_dir).unwrap();
    let f = smoke_in(&ref_dir, &reference);
    assert!(harness(&[f.to_str().unwrap()]).status.success());

    let out = tmp.path().join("killed");
    let dir = tmp.path().join("b");
    std::fs::create_dir_all(&dir).unwrap();
    let file = smoke_in(&dir, &out);
    // A small linear congruential generator keeps the kill points reproducible.
    let mut state: u64 = 0x9E37_79B9;
    for i in 0..20 {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let delay = 20 + (state >> 33) % 900;
        let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg(&file)
            .current_dir(root())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay));
        let signal = if i % 2 == 0 { "-KILL" } else { "-INT" };
        let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
        let _ = child.wait();
        // Whatever was left must parse: every present run file is whole or absent.
        for e in std::fs::read_dir(out.join("smoke/runs")).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") {
                let text = std::fs::read_to_string(&p).unwrap();
                assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok(), "torn run file {}", p.display());
            }
        }
    }
    let o = harness(&[file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for t in ["runs", "configs", "train", "sensitivity", "summary", "claims"] {
        let a = std::fs::read_to_string(reference.join(format!("smoke/{t}.csv"))).unwrap();
        let b = std::fs::read_to_string(out.join(format!("smoke/{t}.csv"))).unwrap();
        assert_eq!(without_timing(&a), without_timing(&b), "{t}.csv after interruptions");
        let lines: Vec<&str> = b.lines().collect();
        let mut uniq = lines.clone();
        uniq.sort();
        uniq.dedup();
        assert_eq!(uniq.len(), lines.len(), "{t}.csv has duplicated rows");
    }
}
