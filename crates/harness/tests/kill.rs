//! A sweep killed at up to 20 points (SIGKILL and SIGINT alternating, seeded points; the harness
//! installs no SIGINT handler, so both end it where it stands) and then run to completion
//! ends with exactly the rows of an uninterrupted run: none missing, none duplicated, no torn
//! lines. The test checks that kills landed while runs were half done.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;
use std::os::unix::process::ExitStatusExt;
use std::process::Command;
use std::time::Duration;

/// `smoke.toml` with 8 repeats (24 runs) writing into `out`, so that a sweep lasts long
/// enough to be killed in the middle.
fn longer_smoke(dir: &std::path::Path, out: &std::path::Path) -> std::path::PathBuf {
    std::fs::create_dir_all(dir).unwrap();
    let file = smoke_in(dir, out);
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("repeats = 2"), "smoke.toml no longer sets repeats = 2");
    std::fs::write(&file, text.replace("repeats = 2", "repeats = 8")).unwrap();
    file
}

/// Whether this process ignores SIGINT, as a shell's background jobs (and `nohup`) do; the
/// harness it spawns inherits that, so the test then sends SIGTERM (no handler either) in
/// SIGINT's place.
fn sigint_ignored() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let mask = status.lines().find_map(|l| l.strip_prefix("SigIgn:")).map(|m| m.trim().to_string());
    mask.and_then(|m| u64::from_str_radix(&m, 16).ok()).is_some_and(|m| m & (1 << 1) != 0)
}

#[test]
fn killed_sweeps_resume_to_identical_rows() {
    let polite = if sigint_ignored() { "-TERM" } else { "-INT" };
    if polite == "-TERM" {
        eprintln!("SIGINT is ignored in this process (a background job?): sending SIGTERM in its place");
    }
    let tmp = tempfile::tempdir().unwrap();
    let reference = tmp.path().join("ref");
    let f = longer_smoke(&tmp.path().join("a"), &reference);
    let t0 = std::time::Instant::now();
    assert!(harness(&[f.to_str().unwrap()]).status.success());
    let t_ref = t0.elapsed().as_secs_f64();
    let run_files = |dir: &std::path::Path| {
        std::fs::read_dir(dir.join("smoke/runs")).into_iter().flatten().filter(|e| e.is_ok()).count()
    };
    let total = run_files(&reference);
    assert_eq!(total, 24);

    let out = tmp.path().join("killed");
    let file = longer_smoke(&tmp.path().join("b"), &out);
    // A small linear congruential generator keeps the kill points reproducible. Each kill
    // waits until the sweep has written 1 to 4 more run files (so kills spread over the whole
    // sweep, whatever the machine's speed and however long the tables and report at the end
    // take), then a random share of one run's time, so that it lands inside the next run.
    let mut state: u64 = 0x9E37_79B9;
    let mut draw = || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64
    };
    let (mut tries, mut landed, mut mid_run) = (0, 0, 0);
    for i in 0..20 {
        let done = run_files(&out);
        if done + 1 >= total {
            break;
        }
        let target = done + 1 + (draw() * (total - done - 1).min(4) as f64) as usize;
        let extra = Duration::from_secs_f64(draw() * t_ref / total as f64);
        tries += 1;
        let mut child = Command::new(env!("CARGO_BIN_EXE_harness"))
            .arg(&file)
            .current_dir(root())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let start = std::time::Instant::now();
        while run_files(&out) < target.min(total - 1)
            && child.try_wait().unwrap().is_none()
            && start.elapsed() < Duration::from_secs(120)
        {
            std::thread::sleep(Duration::from_millis(1));
        }
        std::thread::sleep(extra);
        let signal = if i % 2 == 0 { "-KILL" } else { polite };
        let _ = Command::new("kill").args([signal, &child.id().to_string()]).status();
        let status = child.wait().unwrap();
        if status.signal().is_some() {
            landed += 1;
            // Some but not all run files written: the kill landed mid-sweep.
            mid_run += usize::from((1..total).contains(&run_files(&out)));
        }
        // Whatever was left must parse: every present run file is whole or absent.
        for e in std::fs::read_dir(out.join("smoke/runs")).into_iter().flatten() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "json") {
                let text = std::fs::read_to_string(&p).unwrap();
                assert!(serde_json::from_str::<serde_json::Value>(&text).is_ok(), "torn run file {}", p.display());
            }
        }
    }
    eprintln!("{tries} kills sent, {landed} found the sweep running, {mid_run} with some runs done");
    assert!(landed >= tries / 2 && landed >= 5, "only {landed} of {tries} kills found the harness still running");
    assert!(mid_run >= 3, "only {mid_run} kills landed between the first and the last run file");
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
