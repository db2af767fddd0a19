//! The committed reports are current: each `provenance.json` under `paper/` names the same
//! training, quantization and report code versions and the same resolved experiment as the
//! code and experiment files of this checkout. A change that moves results (and bumps a
//! version, which the golden tests in `mpq-models` and `mpq-quant` force) fails here until
//! `scripts/regenerate-paper.sh` has regenerated `paper/`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::root;
use harness::publish::Provenance;
use mpq_experiment::config::Experiment;

#[test]
fn committed_reports_come_from_the_current_code_and_experiments() {
    for (dir, file) in [
        ("paper", "experiments/mnist.toml"),
        ("paper/backends", "experiments/backends-wgpu.toml"),
        ("paper/claims-mixed", "experiments/claims-mixed.toml"),
        ("paper/claims-identity", "experiments/claims-identity.toml"),
        ("paper/claims-adaround", "experiments/claims-adaround.toml"),
    ] {
        let path = root().join(dir).join("provenance.json");
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let committed: Provenance = serde_json::from_str(&text).unwrap();
        let exp = Experiment::load(&root().join(file)).unwrap();
        let current = Provenance::current(&exp).unwrap();
        assert_eq!(
            committed, current,
            "{dir}/ was produced by other code or another {file}: regenerate it (scripts/regenerate-paper.sh)"
        );
    }
}
