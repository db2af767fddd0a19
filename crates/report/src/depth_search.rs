//! The depth section's search tables: greedy, beam and Taylor against the exhaustive optimum
//! where the exhaustive search ran (judged on the test split, paired by run), and what each
//! search spent at every depth.

use crate::depth_model::DepthModel;
use crate::stats::t_test;
use crate::{Method, RunRow};
use std::collections::BTreeSet;

/// The searches compared with the exhaustive one (the best-of-N null, drawing as many plans
/// as the exhaustive search scored, is not a search to compare).
const SEARCHES: [Method; 3] = [Method::Greedy, Method::Beam, Method::Taylor];

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// Per run: `method`'s test loss minus the exhaustive plan's, and whether the plans agree.
fn against_exhaustive(rows: &[RunRow], label: &str, bits: u32, method: Method) -> (Vec<f64>, usize) {
    let (mut gaps, mut same) = (Vec::new(), 0);
    for e in rows.iter().filter(|r| r.model == label && r.bits == bits && r.method == Method::Exhaustive) {
        let found =
            rows.iter().find(|r| r.run_id == e.run_id && r.model == label && r.bits == bits && r.method == method);
        if let Some(r) = found {
            gaps.push(r.test_loss - e.test_loss);
            same += usize::from(r.plan == e.plan);
        }
    }
    (gaps, same)
}

/// Both tables; empty when no search ran.
pub fn section(models: &[DepthModel], rows: &[RunRow]) -> String {
    let mut s = String::new();
    let with_exhaustive: Vec<&DepthModel> =
        models.iter().filter(|m| rows.iter().any(|r| r.model == m.label && r.method == Method::Exhaustive)).collect();
    let bits: BTreeSet<u32> = rows.iter().filter(|r| r.method == Method::Exhaustive).map(|r| r.bits).collect();
    if !with_exhaustive.is_empty() {
        s.push_str("### Searches against the exhaustive optimum\n\nWhere every one of the 3^L rounding configs was scored (the plan with the lowest calibration loss is the exhaustive one), each search's test loss minus the exhaustive plan's, paired by run (95% interval), and the runs in which it found the same plan. Negative gaps are possible: the exhaustive plan is optimal on the calibration split, not the test split.\n\n| depth | network | weights | bits | search | test loss − exhaustive's [95% CI] | same plan |\n|---|---|---|---|---|---|---|\n");
        for m in &with_exhaustive {
            for &b in bits.iter().rev() {
                for method in SEARCHES {
                    let (gaps, same) = against_exhaustive(rows, &m.label, b, method);
                    if gaps.is_empty() {
                        continue;
                    }
                    let t = t_test(&gaps, 0.0, 0.95);
                    s.push_str(&format!(
                        "| {} | {} | {} | {b} | {method} | {:+.4} [{:+.4}, {:+.4}] | {same} of {} |\n",
                        m.depth,
                        if m.residual { "residual" } else { "plain" },
                        m.granularity,
                        t.mean,
                        t.lo,
                        t.hi,
                        gaps.len()
                    ));
                }
            }
        }
        s.push('\n');
    }
    s.push_str(&cost_table(models, rows));
    s
}

/// What each search spent, per depth and network: whole plans scored on the calibration
/// split and wall seconds, means over widths, granularities and repeats.
fn cost_table(models: &[DepthModel], rows: &[RunRow]) -> String {
    let mut s = String::from(
        "### What the searches cost\n\nWhole plans scored on the calibration split (*evaluations*; Taylor scores one plan after a gradient pass) and wall seconds per search, means over widths, granularities and repeats, on the machine that ran the sweep. Where the exhaustive search ran, greedy and the best-of-N null look their plans up in its table (their seconds there are lookups); the beam scores its own.\n\n| depth | network | search | evaluations | seconds |\n|---|---|---|---|---|\n",
    );
    let keys: BTreeSet<(usize, bool)> = models.iter().map(|m| (m.depth, !m.residual)).collect();
    let mut any = false;
    for (depth, plain) in keys {
        let labels: Vec<&str> =
            models.iter().filter(|m| m.depth == depth && m.residual != plain).map(|m| m.label.as_str()).collect();
        for method in [Method::Exhaustive].into_iter().chain(SEARCHES) {
            let sel: Vec<&RunRow> =
                rows.iter().filter(|r| r.method == method && labels.contains(&r.model.as_str())).collect();
            if sel.is_empty() {
                continue;
            }
            any = true;
            let evals = mean(&sel.iter().map(|r| r.evaluations as f64).collect::<Vec<_>>());
            let secs = mean(&sel.iter().map(|r| r.seconds).collect::<Vec<_>>());
            let net = if plain { "plain" } else { "residual" };
            s.push_str(&format!("| {depth} | {net} | {method} | {evals:.0} | {secs:.2} |\n"));
        }
    }
    if !any {
        return String::new();
    }
    s.push('\n');
    s
}
