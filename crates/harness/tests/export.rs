//! `harness export` on the smoke experiment: the packed file loads back, the integer engine
//! gives the search's integer evaluation bit for bit and the f32 simulation to float error,
//! and storage is a fraction of FP32.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

fn field(text: &str, key: &str) -> f64 {
    let at = text.find(key).unwrap_or_else(|| panic!("no `{key}` in {text}")) + key.len();
    text[at..]
        .trim_start()
        .split(|c: char| !(c.is_ascii_digit() || c == '.' || c == 'e' || c == '-'))
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn exported_plans_match_simulation() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let file = smoke_in(tmp.path(), &out);
    assert!(harness(&[file.to_str().unwrap()]).status.success());
    for (run, method, bits, max_pct) in [
        ("mlp-16-8-flex-r0", "exhaustive", "8", 30.0),
        ("mlp-16-8-flex-r1", "greedy", "4", 20.0),
        ("resmlp-12x2-flex-r0", "nearest", "8", 35.0),
    ] {
        let mpq = tmp.path().join(format!("{run}-{bits}.mpq"));
        let o = harness(&[
            "export",
            file.to_str().unwrap(),
            "--run",
            run,
            "--method",
            method,
            "--bits",
            bits,
            "--out",
            mpq.to_str().unwrap(),
        ]);
        let text = String::from_utf8_lossy(&o.stdout).to_string();
        assert!(o.status.success(), "{text}{}", String::from_utf8_lossy(&o.stderr));
        assert_eq!(field(&text, "argmax agreement"), 1.0, "{text}");
        // The search's integer evaluation is the engine's arithmetic: the same bits. The f32
        // simulation rounds its sums differently, by float error only (about 1e-7 here).
        assert_eq!(field(&text, "integer evaluation: max |logit diff|"), 0.0, "{text}");
        assert!(field(&text, "max |logit diff|") < 1e-4, "{text}");
        assert!(field(&text, "bytes =") < max_pct, "{text}");
        assert!(mpq.exists());
    }
    let o = harness(&["export", file.to_str().unwrap(), "--run", "nope", "--out", "x.mpq"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no run `nope`"));
}
