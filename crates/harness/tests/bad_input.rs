//! Every malformed experiment under `tests/fixtures/bad/` exits with status 2 and a message
//! that names the file and contains the fixture's `# expect:` text; none panics.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

#[test]
fn bad_config_corpus() {
    let dir = root().join("crates/harness/tests/fixtures/bad");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 25, "corpus has {} files", files.len());
    let mut problems = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let expect = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# expect: "))
            .expect("first line is `# expect: ...`")
            .to_string();
        let o = harness(&["check", f.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        let name = f.file_name().unwrap().to_string_lossy().to_string();
        if o.status.code() != Some(2) || !err.contains(&expect) || err.contains("panicked") {
            problems.push(format!("{name}: status {:?}, stderr: {err}", o.status.code()));
        } else if !err.contains(&name) {
            problems.push(format!("{name}: message does not name the file: {err}"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn missing_file_and_wgpu_without_feature() {
    let o = harness(&["check", "experiments/no-such-file.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no-such-file.toml"));
    if !cfg!(feature = "wgpu") {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path().join("w.toml");
        std::fs::write(&f, "name = \"w\"\nbackends = [\"wgpu\"]\n[[models]]\nkind = \"mlp\"\n").unwrap();
        let o = harness(&[f.to_str().unwrap()]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("--features wgpu"));
    }
}

#[test]
fn read_only_output_fails_before_work() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("file-not-dir");
    std::fs::write(&out, "x").unwrap();
    let file = smoke_in(tmp.path(), &out);
    let o = harness(&[file.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not writable"), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn corrupt_cached_checkpoints_fail_their_runs_and_the_sweep_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let file = smoke_in(tmp.path(), &out);
    assert!(harness(&[file.to_str().unwrap()]).status.success());
    let mut n = 0;
    for e in std::fs::read_dir(out.join("cache")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "safetensors") {
            let bytes = std::fs::read(&p).unwrap();
            std::fs::write(&p, &bytes[..bytes.len() / 3]).unwrap();
            n += 1;
        }
    }
    assert_eq!(n, 6);
    std::fs::remove_file(out.join("smoke/runs/mlp-16-8-flex-r0.json")).unwrap();
    let o = harness(&[file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains("run mlp-16-8-flex-r0 failed") && err.contains("not a readable safetensors"), "{err}");
    let failures = std::fs::read_to_string(out.join("smoke/failures.csv")).unwrap();
    assert!(failures.contains("mlp-16-8-flex-r0") && failures.lines().count() == 2, "{failures}");
    let runs = std::fs::read_to_string(out.join("smoke/runs.csv")).unwrap();
    assert!(
        runs.contains("resmlp-12x2-flex-r0") && !runs.contains("mlp-16-8-flex-r0,"),
        "other runs kept, failed one absent"
    );
}

/// Every config error points at the offending key's line: nested tables, and the second and
/// later `[[models]]` entries (`tests/fixtures/lines/`, first line `# line: N`).
#[test]
fn config_errors_name_the_offending_line() {
    let dir = root().join("crates/harness/tests/fixtures/lines");
    let mut files: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    assert!(files.len() >= 5);
    let mut problems = Vec::new();
    for f in files {
        let text = std::fs::read_to_string(&f).unwrap();
        let line: usize = text.lines().next().and_then(|l| l.strip_prefix("# line: ")).unwrap().parse().unwrap();
        let o = harness(&["check", f.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        let at = format!("{}:{line}:", f.display());
        if o.status.code() != Some(2) || !err.contains(&at) {
            problems.push(format!("expected `{at}`, got status {:?}: {err}", o.status.code()));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
