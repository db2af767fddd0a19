//! `smoke.toml` end to end: golden CSV headers, finite values in range, figures with their
//! series labels, the report's claims table, resume, and determinism.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::*;

const TABLES: [&str; 6] = ["runs", "configs", "train", "sensitivity", "summary", "claims"];

#[test]
fn smoke_end_to_end_resume_and_determinism() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let file = smoke_in(tmp.path(), &out);
    let o = harness(&[file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let res = out.join("smoke");

    for t in TABLES {
        let text = std::fs::read_to_string(res.join(format!("{t}.csv"))).unwrap();
        let golden = std::fs::read_to_string(root().join(format!("crates/harness/tests/golden/{t}.header"))).unwrap();
        assert_eq!(text.lines().next().unwrap(), golden.trim(), "{t}.csv header");
        assert!(text.lines().count() > 1, "{t}.csv has rows");
    }
    let timing = std::fs::read_to_string(res.join("timing.csv")).unwrap();
    let golden = std::fs::read_to_string(root().join("crates/harness/tests/golden/timing.header")).unwrap();
    assert_eq!(timing.lines().next().unwrap(), golden.trim());
    assert_eq!(timing.lines().count(), 1 + 6 * 5, "fp32, two simulated widths and two engine widths per run");
    assert_eq!(timing.lines().filter(|l| l.contains(",engine-") && l.contains(",int4,")).count(), 6, "{timing}");
    let runs = std::fs::read_to_string(res.join("runs.csv")).unwrap();
    let mut rdr = csv::Reader::from_reader(runs.as_bytes());
    let h = rdr.headers().unwrap().clone();
    let col = |n: &str| h.iter().position(|c| c == n).unwrap();
    for rec in rdr.records() {
        let rec = rec.unwrap();
        let loss: f64 = rec[col("test_loss")].parse().unwrap();
        let acc: f64 = rec[col("test_acc")].parse().unwrap();
        assert!(loss.is_finite() && loss > 0.0 && (0.0..=1.0).contains(&acc), "{rec:?}");
    }
    // 2 repeats x 3 models = 6 runs; mlp: fp, fp-temp + per bit (3 uniform + exhaustive + temp + greedy + taylor + random)
    // x 2 bits + 4 mixed-precision rows for the one budget.
    assert_eq!(runs.lines().filter(|l| l.contains("mlp-16-8-flex")).count(), 2 * (2 + 2 * 8 + 4));
    let configs = std::fs::read_to_string(res.join("configs.csv")).unwrap();
    assert_eq!(configs.lines().filter(|l| l.starts_with("mlp-16-8-flex-r0,") && l.contains(",8,")).count(), 27);

    for (stem, label) in [
        ("loss_vs_bits_mlp-16-8", "exhaustive"),
        ("delta_configs_mlp-16-8", "all-nearest"),
        ("taylor_mlp-16-8", "8-bit"),
        ("sensitivity_mlp-16-8", "input only"),
        ("identity_resmlp-12x2", "plainmlp"),
    ] {
        let svg = std::fs::read_to_string(res.join(format!("figures/{stem}.svg"))).unwrap();
        assert!(svg.len() > 1000 && svg.contains(label), "{stem}.svg lacks {label}");
        assert!(std::fs::metadata(res.join(format!("figures/{stem}.png"))).unwrap().len() > 1000);
    }
    let report = std::fs::read_to_string(res.join("REPORT.md")).unwrap();
    assert!(report.contains(
        "| family | claim | setting | measurement | mean | 95% CI | p | verdict | p adjusted | adjusted verdict |"
    ));
    for c in
        ["lower-loss", "lower-loss-beyond-temperature", "search-beats-null", "input-vs-weight", "identity-mappings"]
    {
        assert!(report.contains(&format!("| {c} |")), "report lacks {c}");
        assert!(report.contains(&format!("| primary | {c} |")) != c.starts_with("search"), "family of {c}");
    }

    // Resume: a second run reuses everything; a removed and a torn run file are redone.
    let before = without_timing(&runs);
    let o = harness(&[file.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("6 runs (6 reused, 0 failed)"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    std::fs::remove_file(res.join("runs/mlp-16-8-flex-r1.json")).unwrap();
    let torn = res.join("runs/resmlp-12x2-flex-r0.json");
    let text = std::fs::read(&torn).unwrap();
    std::fs::write(&torn, &text[..text.len() / 2]).unwrap();
    let o = harness(&[file.to_str().unwrap()]);
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("6 runs (4 reused, 0 failed)"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let after = std::fs::read_to_string(res.join("runs.csv")).unwrap();
    assert_eq!(before, without_timing(&after), "resumed rows equal the uninterrupted rows");

    // Determinism: a fresh output folder (no cache) gives the same tables apart from timing.
    let out2 = tmp.path().join("again");
    let dir2 = tmp.path().join("d2");
    std::fs::create_dir_all(&dir2).unwrap();
    let file2 = smoke_in(&dir2, &out2);
    assert!(harness(&[file2.to_str().unwrap()]).status.success());
    for t in TABLES {
        let a = std::fs::read_to_string(res.join(format!("{t}.csv"))).unwrap();
        let b = std::fs::read_to_string(out2.join(format!("smoke/{t}.csv"))).unwrap();
        assert_eq!(without_timing(&a), without_timing(&b), "{t}.csv differs between identical runs");
    }
}

/// Another experiment seed gives other weights and so other losses (not just another
/// printed seed): every run's test loss differs.
#[test]
fn different_seeds_give_different_results() {
    let tmp = tempfile::tempdir().unwrap();
    let losses = |seed: u64| {
        let out = tmp.path().join(format!("r{seed}"));
        let dir = tmp.path().join(format!("d{seed}"));
        std::fs::create_dir_all(&dir).unwrap();
        let file = smoke_in(&dir, &out);
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.contains("seed = 7"));
        std::fs::write(&file, text.replace("seed = 7", &format!("seed = {seed}"))).unwrap();
        let o = harness(&[file.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let runs = std::fs::read_to_string(out.join("smoke/runs.csv")).unwrap();
        let mut rdr = csv::Reader::from_reader(runs.as_bytes());
        let h = rdr.headers().unwrap().clone();
        let (m, l) = (h.iter().position(|c| c == "method").unwrap(), h.iter().position(|c| c == "test_loss").unwrap());
        let rows: Vec<(String, f64)> =
            rdr.records().map(|r| r.unwrap()).map(|r| (r[m].to_string(), r[l].parse().unwrap())).collect();
        rows
    };
    let (a, b) = (losses(7), losses(8));
    assert_eq!(a.len(), b.len());
    let fp: Vec<_> = a.iter().zip(&b).filter(|(x, _)| x.0 == "fp").collect();
    assert!(!fp.is_empty());
    for (x, y) in fp {
        assert_ne!(x.1, y.1, "FP32 test loss is the same under seeds 7 and 8");
    }
}

/// With two backends the report gets a side-by-side table and names each backend's device,
/// and the two CPU backends agree: the same losses to within float noise.
#[test]
#[cfg(feature = "ndarray")]
fn two_backends_get_a_comparison_table() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("results");
    let file = smoke_in(tmp.path(), &out);
    let text =
        std::fs::read_to_string(&file).unwrap().replace("backends = [\"flex\"]", "backends = [\"flex\", \"ndarray\"]");
    assert!(text.contains("\"ndarray\""), "smoke.toml no longer names its backends as expected");
    std::fs::write(&file, text).unwrap();
    let o = harness(&[file.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let report = std::fs::read_to_string(out.join("smoke/REPORT.md")).unwrap();
    assert!(report.contains("- Devices: flex on CPU: ") && report.contains("; ndarray on CPU: "), "{report}");
    let section = &report[report.find("## Backends").expect("a Backends section")..];
    let numbers = |backend: &str| -> Vec<f64> {
        let row = section.lines().find(|l| l.starts_with(&format!("| mlp-16-8 | {backend} |"))).expect("a row");
        let cells: Vec<&str> = row.split('|').map(str::trim).collect();
        // model, backend, train/s, inference/s, FP32 loss, then one loss per width: all numbers.
        let v: Vec<f64> = cells[3..cells.len() - 1].iter().map(|c| c.parse::<f64>().expect(row)).collect();
        assert!(v.iter().all(|&x| x > 0.0), "{row}");
        v
    };
    let (flex, nd) = (numbers("flex"), numbers("ndarray"));
    assert_eq!(flex.len(), nd.len());
    assert!(flex.len() >= 4, "FP32 loss and at least one width");
    for (i, (a, b)) in flex.iter().zip(&nd).enumerate().skip(2) {
        assert!((a - b).abs() <= 2e-3 * a.abs().max(1.0), "loss column {i}: flex {a} vs ndarray {b}");
    }
}

/// Without the `ndarray` feature, an experiment naming that backend stops with a message
/// that says how to rebuild, not a panic.
#[test]
#[cfg(not(feature = "ndarray"))]
fn a_backend_left_out_of_the_build_is_a_clear_error() {
    let tmp = tempfile::tempdir().unwrap();
    let file = smoke_in(tmp.path(), &tmp.path().join("results"));
    let text = std::fs::read_to_string(&file).unwrap().replace("backends = [\"flex\"]", "backends = [\"ndarray\"]");
    std::fs::write(&file, text).unwrap();
    let o = harness(&[file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && o.status.code() != Some(101), "{err}");
    assert!(err.contains("--features ndarray"), "{err}");
}

#[test]
fn overrides_set_repeats_and_shipping_keeps_exactly_the_used_checkpoints() {
    let tmp = tempfile::tempdir().unwrap();
    let ship = tmp.path().join("ship");
    let base = std::fs::read_to_string(smoke_in(tmp.path(), &tmp.path().join("results"))).unwrap();
    let write = |repeats: usize| {
        let text = format!(
            "checkpoints = {:?}\n{base}\n[[overrides]]\nmodels = [\"mlp-16-8\"]\nrepeats = {repeats}\ntest = 150\n",
            ship.display().to_string()
        );
        let f = tmp.path().join("ship.toml");
        std::fs::write(&f, text).unwrap();
        f
    };
    let count = || {
        let names: Vec<String> = std::fs::read_dir(&ship)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
            .filter(|n| n.ends_with(".safetensors"))
            .collect();
        names.len()
    };
    let f = write(3);
    let o = harness(&["train", f.to_str().unwrap(), "--ship"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(count(), 3 + 2 + 2, "mlp-16-8 has 3 repeats, the twins 2 each");
    std::fs::write(ship.join("0123456789abcdef.safetensors"), b"stale").unwrap();
    let f = write(1);
    let o = harness(&["train", f.to_str().unwrap(), "--ship"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(count(), 1 + 2 + 2, "stale and unused checkpoints are removed");
    let sums = std::fs::read_to_string(ship.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), 2 * 5);
    // Runs loaded from the shipped folder (no cache copy) ship again as they are.
    std::fs::remove_dir_all(tmp.path().join("results/cache")).unwrap();
    let o = harness(&["train", f.to_str().unwrap(), "--ship"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert_eq!(std::fs::read_to_string(ship.join("SHA256SUMS")).unwrap(), sums);
}
