//! The report's "Mixed-precision allocations: cost" section: what each allocation spent to
//! find its plan, so an allocation that scores whole plans can be weighed against ones that
//! add single-layer numbers.

use crate::{Method, RunRow};

/// Per model and mixed-precision method: plans (or single-layer tables' entries) scored and
/// seconds spent per budget, means over budgets and repeats, with the mean test loss change
/// against FP32. Empty when no mixed-precision rows exist.
pub fn section(rows: &[RunRow]) -> String {
    let mixed: Vec<&RunRow> = rows.iter().filter(|r| r.method.is_mixed()).collect();
    if mixed.is_empty() {
        return String::new();
    }
    let mut s = String::from(
        "## Mixed-precision allocations: cost\n\nPer budget, means over budgets and repeats. *Evaluations* counts scored whole plans for `mixed-search` and the greedy refinement, and the single-layer loss changes measured for the knapsack (`mixed-dp`, whose table is shared by all budgets and counted once per budget); `mixed-hawq` spends Hessian-vector products instead (its seconds), `mixed-uniform` nothing. Seconds are wall time on the machine that ran the sweep (the knapsack's table time is included in each of its budgets).\n\n| model | method | budgets | evaluations per budget | seconds per budget | mean test ΔL vs FP32 |\n|---|---|---|---|---|---|\n",
    );
    let models: std::collections::BTreeSet<&str> = mixed.iter().map(|r| r.model.as_str()).collect();
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    for model in models {
        for m in Method::ALL.into_iter().filter(|m| m.is_mixed()) {
            let sel: Vec<&&RunRow> = mixed.iter().filter(|r| r.model == model && r.method == m).collect();
            if sel.is_empty() {
                continue;
            }
            let mut budgets: Vec<u32> = sel.iter().map(|r| r.bits).collect();
            budgets.sort();
            budgets.dedup();
            let evals = mean(&sel.iter().map(|r| r.evaluations as f64).collect::<Vec<_>>());
            let secs = mean(&sel.iter().map(|r| r.seconds).collect::<Vec<_>>());
            let delta = mean(&sel.iter().map(|r| r.delta_test_loss).collect::<Vec<_>>());
            let budgets = budgets.iter().map(u32::to_string).collect::<Vec<_>>().join(", ");
            s.push_str(&format!("| {model} | {m} | {budgets} | {evals:.0} | {secs:.2} | {delta:+.4} |\n"));
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(method: Method, bits: u32, evaluations: usize, seconds: f64) -> RunRow {
        RunRow { model: "m".into(), method, bits, evaluations, seconds, delta_test_loss: 0.5, ..RunRow::default() }
    }

    #[test]
    fn one_line_per_model_and_allocation_with_means_over_budgets() {
        assert!(section(&[row(Method::Nearest, 4, 1, 1.0)]).is_empty(), "no mixed rows, no section");
        let rows = [
            row(Method::MixedSearch, 3, 100, 2.0),
            row(Method::MixedSearch, 4, 300, 4.0),
            row(Method::MixedDp, 3, 29, 1.0),
            row(Method::Nearest, 4, 1, 1.0),
        ];
        let s = section(&rows);
        assert!(s.contains("| m | mixed-dp | 3 | 29 | 1.00 | +0.5000 |"), "{s}");
        assert!(s.contains("| m | mixed-search | 3, 4 | 200 | 3.00 | +0.5000 |"), "{s}");
        assert_eq!(s.lines().filter(|l| l.starts_with("| m |")).count(), 2);
    }
}
