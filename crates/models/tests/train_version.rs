//! Guards [`TRAIN_VERSION`]: a tiny training run must give the weights recorded for the
//! current version. A change to initialization, the training loop or the data pipeline
//! fails here until the version is bumped and these values are updated together, so cached
//! and shipped checkpoints of older code are never taken for new ones.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::prelude::*;
use mpq_data::{Split, SplitSizes, shipped};
use mpq_models::{BURN_VERSION, ModelConfig, TRAIN_VERSION, TrainConfig, TrainEngine, train::train};

/// (version, first 6 weights of fc1, sum of |w| over every parameter) at that version.
/// Loose enough for float kernels of other CPUs (differences near 1e-7 here), far tighter
/// than any change to training moves them.
const GOLDEN: (u32, [f32; 6], f64) =
    (2, [-0.02571405, -0.024443142, -0.022710359, -0.023715055, -0.016422188, 0.01459115], 137.793946);

#[test]
fn tiny_training_run_gives_the_weights_of_this_version() {
    let data = shipped::load().unwrap();
    let split = Split::draw(&data, SplitSizes { train: 256, calib: 64, test: 64 }, None, 1).unwrap();
    let tc = TrainConfig { epochs: 2, batch_size: 32, lr: 3e-3, ..TrainConfig::default() };
    let (net, _) =
        train(&ModelConfig::Mlp { hidden: vec![8] }, &tc, &Device::flex(), &data, &split, 7, &mut |_, _| {}).unwrap();
    let named = net.named_tensors();
    let first: Vec<f32> = named[0].2[..6].to_vec();
    let sum: f64 = named.iter().flat_map(|t| t.2.iter()).map(|v| v.abs() as f64).sum();
    let msg = format!(
        "training now gives first weights {first:?} and sum |w| {sum:.6}; recorded for version {}: {:?}, {:.6}. \
         If training changed on purpose, bump TRAIN_VERSION (now {TRAIN_VERSION}) and record these values",
        GOLDEN.0, GOLDEN.1, GOLDEN.2
    );
    assert_eq!(GOLDEN.0, TRAIN_VERSION, "{msg}");
    for (g, w) in first.iter().zip(GOLDEN.1) {
        assert!((g - w).abs() <= 1e-5, "{msg}");
    }
    assert!((sum - GOLDEN.2).abs() <= 1e-5 * GOLDEN.2.abs().max(1.0), "{msg}");
}

/// The host engine's (version, bits of the first 6 weights of conv1, bits of sum |w| as f64)
/// for a tiny CNN run. Exact: the host engine's sums run in a fixed order, so every CPU, SIMD
/// path and thread count gives these bits.
const GOLDEN_HOST: (u32, [u32; 6], u64) =
    (2, [3194522298, 3195522158, 3194323296, 3193802061, 3188741070, 1041154740], 4640044969382123904);

/// Environment variable set on the rerun of [`host_training_gives_the_exact_weights_of_this_version`].
const RERUN: &str = "MPQ_TRAIN_VERSION_RERUN";

#[test]
fn host_training_gives_the_exact_weights_of_this_version() {
    let data = shipped::load().unwrap();
    let split = Split::draw(&data, SplitSizes { train: 256, calib: 64, test: 64 }, None, 1).unwrap();
    let tc = TrainConfig { epochs: 2, batch_size: 32, lr: 3e-3, engine: TrainEngine::Host, ..TrainConfig::default() };
    let cfg = ModelConfig::Cnn { channels: [4, 8], hidden: 16 };
    let (net, _) = train(&cfg, &tc, &Device::flex(), &data, &split, 7, &mut |_, _| {}).unwrap();
    let named = net.named_tensors();
    let first: Vec<u32> = named[0].2[..6].iter().map(|v| v.to_bits()).collect();
    let sum: f64 = named.iter().flat_map(|t| t.2.iter()).map(|v| v.abs() as f64).sum();
    let path = mpq_host::simd::path().name();
    assert_eq!(
        (GOLDEN_HOST.0, GOLDEN_HOST.1.to_vec(), GOLDEN_HOST.2),
        (TRAIN_VERSION, first, sum.to_bits()),
        "host training on the {path} path gives other weights than those recorded for version {}. If training \
         changed on purpose, bump TRAIN_VERSION (now {TRAIN_VERSION}) and record these values",
        GOLDEN_HOST.0
    );
    // The same bits on the baseline path: this test again, in a child process that forces it.
    if std::env::var_os(RERUN).is_none() && path != "portable" {
        let out = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "host_training_gives_the_exact_weights_of_this_version", "--test-threads", "1"])
            .env(RERUN, "1")
            .env("MPQ_HOST_SIMD", "portable")
            .env("RAYON_NUM_THREADS", "1")
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success() && text.contains("1 passed"), "on the portable path, one thread:\n{text}");
    }
}

#[test]
fn burn_version_matches_the_lock_file() {
    let lock = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../Cargo.lock")).unwrap();
    let at = lock.find("name = \"burn\"\nversion = \"").expect("burn in Cargo.lock");
    let version = lock[at..].lines().nth(1).unwrap().trim_start_matches("version = ").trim_matches('"');
    assert_eq!(version, BURN_VERSION, "BURN_VERSION must name the burn in Cargo.lock");
}
