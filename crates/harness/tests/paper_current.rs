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
    // Experiments name their files (an imported model's) relative to the workspace root.
    std::env::set_current_dir(root()).unwrap();
    for (dir, file) in [
        ("paper", "experiments/mnist.toml"),
        ("paper/backends", "experiments/backends-wgpu.toml"),
        ("paper/claims-mixed", "experiments/claims-mixed.toml"),
        ("paper/claims-identity", "experiments/claims-identity.toml"),
        ("paper/claims-adaround", "experiments/claims-adaround.toml"),
        ("paper/onnx-example", "experiments/onnx-example.toml"),
        ("paper/claims-depth", "experiments/claims-depth.toml"),
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

/// The README quotes the committed report's generated summary verbatim (so its answer is the
/// report's, not typed by hand), stays short, and every local link in it and in `docs/`
/// points at a file that exists.
#[test]
fn the_readme_quotes_the_report_and_its_links_resolve() {
    let readme = std::fs::read_to_string(root().join("README.md")).unwrap();
    assert!(readme.lines().count() <= 250, "README.md has {} lines", readme.lines().count());
    let report = std::fs::read_to_string(root().join("paper/REPORT.md")).unwrap();
    let summary = &report[report.find("## Summary").unwrap()..report.find("![Primary claims").unwrap()];
    let want: Vec<&str> = summary.lines().filter(|l| l.starts_with("- ")).collect();
    let begin = readme.find("<!-- generated: the Summary of paper/REPORT.md -->").expect("the generated block");
    let end = readme.find("<!-- end generated -->").expect("its end");
    let got: Vec<&str> = readme[begin..end].lines().filter(|l| l.starts_with("- ")).collect();
    assert!(!want.is_empty());
    assert_eq!(got, want, "README.md's generated block differs from paper/REPORT.md's Summary");
    let mut pages = vec![(root().join("README.md"), readme.clone())];
    for e in std::fs::read_dir(root().join("docs")).unwrap() {
        let path = e.unwrap().path();
        pages.push((path.clone(), std::fs::read_to_string(&path).unwrap()));
    }
    for (page, text) in pages {
        for (i, _) in text.match_indices("](") {
            let target: String = text[i + 2..].chars().take_while(|&c| c != ')' && c != '#').collect();
            if target.is_empty() || target.contains("://") {
                continue;
            }
            let path = page.parent().unwrap().join(&target);
            assert!(path.exists(), "{}: link to {target} does not resolve", page.display());
        }
    }
}
