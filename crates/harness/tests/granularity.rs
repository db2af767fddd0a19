//! An experiment that quantizes every run per tensor and per channel: one trained model and
//! one input calibration per run, rows labelled `<model>-tensor` / `<model>-channel`, the
//! identity claims paired within a granularity, per-model strategies from `[[overrides]]`,
//! no throughput timing when `throughput = false`, plans scored on the integer engine and the
//! method saying so, and `harness export --granularity`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

const EXPERIMENT: &str = r#"
name = "granular"
seed = 3
repeats = 2
[data]
train = 400
calib = 100
test = 100
[train]
epochs = 1
[[models]]
kind = "res-mlp"
width = 8
depth = 2
[[models]]
kind = "plain-mlp"
width = 8
depth = 2
[[models]]
kind = "mlp"
hidden = [12]
[[overrides]]
models = ["mlp-12"]
strategies = ["exhaustive", "beam"]
[quant]
bits = [4]
strategies = ["greedy"]
granularity = ["per-tensor", "per-channel"]
evaluation = "integer"
sensitivity = false
throughput = false
configs_on_test = false
"#;

#[test]
fn every_run_quantizes_per_tensor_and_per_channel() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let file = tmp.path().join("granular.toml");
    std::fs::write(&file, format!("output = {:?}\n{EXPERIMENT}", out.display().to_string())).unwrap();
    let o = harness(&[file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let res = out.join("granular");
    let runs: Vec<mpq_report::RunRow> =
        csv::Reader::from_path(res.join("runs.csv")).unwrap().deserialize().map(Result::unwrap).collect();
    let of = |model: &str, method: mpq_report::Method| -> Vec<&mpq_report::RunRow> {
        runs.iter().filter(|r| r.model == model && r.method == method).collect()
    };
    use mpq_report::Method::*;
    for m in ["resmlp-8x2", "plainmlp-8x2", "mlp-12"] {
        let (t, c) = (format!("{m}-tensor"), format!("{m}-channel"));
        assert!(runs.iter().all(|r| r.model != m), "a bare label {m} with two granularities");
        // One trained model: the same FP32 numbers under both labels, run by run.
        for (a, b) in of(&t, Fp).iter().zip(of(&c, Fp)) {
            assert_eq!((&a.run_id, a.test_loss), (&b.run_id, b.test_loss));
        }
        // The quantized weights differ: 4-bit all-nearest is not the same model.
        let (nt, nc) = (of(&t, Nearest), of(&c, Nearest));
        assert_eq!((nt.len(), nc.len()), (2, 2));
        assert!(nt.iter().zip(&nc).any(|(a, b)| a.test_loss != b.test_loss), "per channel changed nothing");
    }
    // Per-model strategies: the MLP's exhaustive search and beam, the twins' greedy.
    assert_eq!(of("mlp-12-channel", Exhaustive).len(), 2);
    assert_eq!(of("mlp-12-tensor", Beam).len(), 2);
    assert!(of("mlp-12-tensor", Greedy).is_empty() && of("resmlp-8x2-tensor", Exhaustive).is_empty());
    assert_eq!(of("resmlp-8x2-channel", Greedy).len(), 2);
    // configs_on_test = false: no configs rows; throughput = false: no timing rows.
    for t in ["configs", "timing"] {
        let text = std::fs::read_to_string(res.join(format!("{t}.csv"))).unwrap();
        assert!(text.lines().count() <= 1, "{t}.csv has rows: {text}");
    }
    let claims = std::fs::read_to_string(res.join("claims.csv")).unwrap();
    for g in ["tensor", "channel"] {
        let pair = format!("resmlp-8x2-{g} vs plainmlp-8x2-{g}, 4-bit");
        assert!(claims.lines().any(|l| l.starts_with("identity-mappings,") && l.contains(&pair)), "{pair}");
    }
    let report = std::fs::read_to_string(res.join("REPORT.md")).unwrap();
    assert!(report.contains("weights per-tensor and per-channel, each run quantized under each"), "{report}");
    // The method says how plans were scored and weights quantized.
    let scored = format!("quantization, {} (so results do not depend on the CPU;", mpq_report::claims::INTEGER);
    let weights = "layer's weight (symmetric, per-tensor and per-channel, each in its own rows) and input";
    assert!(report.contains(&scored) && report.contains(weights), "{report}");

    let mpq = tmp.path().join("c.mpq");
    let (f, m) = (file.to_str().unwrap(), mpq.to_str().unwrap());
    let args = ["export", f, "--run", "mlp-12-flex-r1", "--method", "exhaustive", "--bits", "4", "--out", m];
    let o = harness(&[&args[..], &["--granularity", "channel"]].concat());
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{text}{}", String::from_utf8_lossy(&o.stderr));
    assert!(
        text.contains("per-channel weights") && text.contains("integer evaluation: max |logit diff| 0.00e0"),
        "{text}"
    );
}
