//! `harness replicate` in both modes on the smoke design: on a disjoint pool (the two halves
//! `harness halves` writes) its report says seed and data varied and gives κ and every
//! setting's z; a pool that repeats the experiment's digits is refused; the seed-only mode
//! says what it cannot detect.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;
use common::{harness, smoke_in};
use std::path::Path;

/// The smoke design on the even half of the shipped digits, writing into `out`.
fn on_even_half(dir: &Path, halves: &Path, out: &Path) -> String {
    let file = smoke_in(dir, out);
    let text = std::fs::read_to_string(&file).unwrap();
    let data = format!(
        "[data]\ndataset = \"idx\"\nimages = {:?}\nlabels = {:?}\n",
        halves.join("even-images-idx3-ubyte").display().to_string(),
        halves.join("even-labels-idx1-ubyte").display().to_string()
    );
    assert!(text.contains("[data]\n"));
    std::fs::write(&file, text.replace("[data]\n", &data)).unwrap();
    file.display().to_string()
}

#[test]
fn replication_on_a_disjoint_pool_and_under_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let halves = tmp.path().join("halves");
    let o = harness(&["halves", "--out", halves.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    for name in ["even", "odd"] {
        let bytes = std::fs::read(halves.join(format!("{name}-labels-idx1-ubyte"))).unwrap();
        assert_eq!(bytes.len(), 8 + 5000, "{name} half");
    }
    let file = on_even_half(tmp.path(), &halves, &tmp.path().join("results"));
    let odd = |kind: &str| halves.join(format!("odd-{kind}")).display().to_string();
    let (images, labels) = (odd("images-idx3-ubyte"), odd("labels-idx1-ubyte"));
    let rep = tmp.path().join("pool");
    let o = harness(&["replicate", &file, "--pool", &images, &labels, "--out", rep.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(rep.join("REPLICATION.md")).unwrap();
    for want in [
        "Varied: seed and data",
        "Cohen's κ",
        "## Every setting",
        "(5000 digits, ",
        "experiment seed 8",
        "Time of each replication",
    ] {
        assert!(text.contains(want), "{want:?} missing from\n{text}");
    }
    assert!(text.contains("| primary | lower-loss | mlp-16-8, 8-bit, exhaustive |"), "{text}");
    assert!(rep.join("agreement.csv").exists() && rep.join("consistency.csv").exists());

    // The experiment's own digits as the pool: refused, nothing written.
    let same = tmp.path().join("same");
    let even = |kind: &str| halves.join(format!("even-{kind}")).display().to_string();
    let o = harness(&[
        "replicate",
        &file,
        "--pool",
        &even("images-idx3-ubyte"),
        &even("labels-idx1-ubyte"),
        "--out",
        same.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("5000 of the pool's 5000 images also occur") && err.contains("disjoint"), "{err}");
    assert!(!same.exists());

    // A pool file that does not exist: exit 2, naming it.
    let o = harness(&["replicate", &file, "--pool", "no/such-images", &labels, "--out", same.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("no/such-images"), "{err}");

    let seeds = tmp.path().join("seeds");
    let o = harness(&["replicate", &file, "--seeds", "3,4", "--out", seeds.to_str().unwrap()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let text = std::fs::read_to_string(seeds.join("REPLICATION.md")).unwrap();
    assert!(text.contains("Varied: seed only") && text.contains("cannot detect"), "{text}");
    assert!(text.contains("seed 3: mean [95% CI], verdict"), "{text}");
}
