//! The study on an imported ONNX model (`experiments/onnx-example.toml`): `harness check`
//! names its layers and the ONNX nodes they came from; the sweep runs without training, its
//! FP32 rows are ONNX Runtime's network (accuracy on digits it never saw), and `harness
//! export` packs a searched plan that the integer engine runs exactly as the search scored it.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

/// The example with its results in `out`, and fewer repeats (the test needs the path through
/// the code, not the intervals).
fn example_in(dir: &std::path::Path, out: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(root().join("experiments/onnx-example.toml")).unwrap();
    let text = text
        .replace("repeats = 10", "repeats = 2")
        .replace("\"greedy\", \"taylor\"", "\"greedy\", \"beam\", \"taylor\"");
    let text = format!("output = {:?}\n{text}", out.display().to_string());
    let file = dir.join("onnx-example.toml");
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn an_imported_model_runs_the_whole_study() {
    let o = harness(&["check", "experiments/onnx-example.toml"]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{text}{}", String::from_utf8_lossy(&o.stderr));
    for line in [
        "onnx-cnn imported from crates/onnx/tests/fixtures/cnn.onnx: 4 layers",
        "← /0/Conv + /1/Relu + /2/MaxPool",
        "← /7/Gemm + /8/Relu",
    ] {
        assert!(text.contains(line), "{line}\n{text}");
    }
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let file = example_in(tmp.path(), &out);
    let o = harness(&[file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let runs = std::fs::read_to_string(out.join("onnx-example/runs.csv")).unwrap();
    let header: Vec<&str> = runs.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let fp: Vec<Vec<&str>> =
        runs.lines().skip(1).map(|l| l.split(',').collect::<Vec<_>>()).filter(|r| r[col("method")] == "fp").collect();
    assert_eq!(fp.len(), 2);
    for r in &fp {
        let acc: f64 = r[col("test_acc")].parse().unwrap();
        assert!(acc > 0.9, "the imported CNN reaches {acc} on digits it never saw");
        assert!(r[col("dataset")].contains("odd-half"), "{r:?}");
    }
    // The beam search (4 layers: its 8 kept prefixes are every prefix but the last layer's)
    // finds the exhaustive optimum on the calibration digits.
    let rows: Vec<Vec<&str>> = runs.lines().skip(1).map(|l| l.split(',').collect()).collect();
    let calib = |run: &str, bits: &str, method: &str| -> f64 {
        let r = rows.iter().find(|r| r[0] == run && r[col("bits")] == bits && r[col("method")] == method);
        r.unwrap_or_else(|| panic!("no {method} row for {run} at {bits} bits"))[col("calib_loss")].parse().unwrap()
    };
    for run in ["onnx-cnn-flex-r0", "onnx-cnn-flex-r1"] {
        for bits in ["8", "6", "4"] {
            assert_eq!(calib(run, bits, "beam"), calib(run, bits, "exhaustive"), "{run} {bits}");
        }
    }
    let mpq = tmp.path().join("cnn-8.mpq");
    let o = harness(&[
        "export",
        file.to_str().unwrap(),
        "--run",
        "onnx-cnn-flex-r1",
        "--method",
        "exhaustive",
        "--bits",
        "8",
        "--out",
        mpq.to_str().unwrap(),
    ]);
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(o.status.success(), "{text}{}", String::from_utf8_lossy(&o.stderr));
    assert!(text.contains("integer evaluation: max |logit diff| 0.00e0"), "{text}");
    // No checkpoints: nothing was trained or cached for the imported model.
    assert!(!out.join("cache").exists() || std::fs::read_dir(out.join("cache")).unwrap().next().is_none());
}
