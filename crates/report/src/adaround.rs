//! The report's "Per-layer floor/ceil against AdaRound" section: where the paper's per-layer
//! rounding choice stands against rounding learned per weight element, in words generated
//! from the `search-beats-adaround` claims, and a table of both beside all-nearest.

use crate::{ClaimRow, Method, RunRow};

/// Mean of `v` (0 when empty).
fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// The sentence for one comparison: which side is lower, by how much, and how sure.
fn sentence(c: &ClaimRow) -> String {
    let side = if c.value < 0.0 { "lower" } else { "higher" };
    let verdict = match c.verdict_adjusted.as_str() {
        "reproduced" => "per-layer floor/ceil is better, significant after correction",
        "not reproduced" => "AdaRound is better, significant after correction",
        _ => "no difference after correction",
    };
    format!(
        "- {}: the per-layer search's test loss is {:.4} nats {side} than AdaRound's (95% CI [{:+.4}, {:+.4}]): {verdict}.\n",
        c.setting,
        c.value.abs(),
        c.lo,
        c.hi
    )
}

/// The section, or nothing when no run learned AdaRound's rounding.
pub fn section(rows: &[RunRow], claims: &[ClaimRow]) -> String {
    let ada: Vec<&ClaimRow> = claims.iter().filter(|c| c.claim == "search-beats-adaround").collect();
    if ada.is_empty() {
        return String::new();
    }
    let (better, worse) = (
        ada.iter().filter(|c| c.verdict_adjusted == "reproduced").count(),
        ada.iter().filter(|c| c.verdict_adjusted == "not reproduced").count(),
    );
    let mut s = format!(
        "## Per-layer floor/ceil against AdaRound\n\nAdaRound learns, for every weight element, whether to round down or up, layer by layer on the calibration split (inputs rounded to nearest at the same width). Over {} model and width settings, choosing floor/ceil/nearest per layer is significantly better in {better}, significantly worse in {worse}, and not distinguishable in {} (paired over repeats, test split, Benjamini-Hochberg over the exploratory claims).\n\n",
        ada.len(),
        ada.len() - better - worse
    );
    for c in &ada {
        s.push_str(&sentence(c));
    }
    s.push_str("\n| model | bits | method | mean test ΔL vs FP32 | mean test acc | seconds per run |\n|---|---|---|---|---|---|\n");
    let mut keys: Vec<(String, u32)> =
        rows.iter().filter(|r| r.method == Method::Adaround).map(|r| (r.model.clone(), r.bits)).collect();
    keys.sort();
    keys.dedup();
    for (model, bits) in keys {
        for m in [Method::Exhaustive, Method::Greedy, Method::Nearest, Method::Adaround] {
            let sel: Vec<&RunRow> =
                rows.iter().filter(|r| r.model == model && r.bits == bits && r.method == m).collect();
            if sel.is_empty() {
                continue;
            }
            let col = |f: fn(&RunRow) -> f64| mean(&sel.iter().map(|r| f(r)).collect::<Vec<_>>());
            s.push_str(&format!(
                "| {model} | {bits} | {m} | {:+.4} | {:.4} | {:.2} |\n",
                col(|r| r.delta_test_loss),
                col(|r| r.test_acc),
                col(|r| r.seconds)
            ));
        }
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(setting: &str, value: f64, verdict: &str) -> ClaimRow {
        ClaimRow {
            claim: "search-beats-adaround".into(),
            setting: setting.into(),
            value,
            lo: value - 0.01,
            hi: value + 0.01,
            verdict_adjusted: verdict.into(),
            ..ClaimRow::default()
        }
    }

    #[test]
    fn words_follow_the_verdicts() {
        assert_eq!(section(&[], &[]), "");
        let c = [
            claim("mlp, 4-bit, exhaustive", -0.05, "reproduced"),
            claim("cnn, 4-bit, exhaustive", 0.2, "not reproduced"),
        ];
        let s = section(&[], &c);
        assert!(s.contains("significantly better in 1, significantly worse in 1, and not distinguishable in 0"), "{s}");
        assert!(s.contains("mlp, 4-bit, exhaustive: the per-layer search's test loss is 0.0500 nats lower"), "{s}");
        assert!(s.contains("cnn, 4-bit, exhaustive: the per-layer search's test loss is 0.2000 nats higher"), "{s}");
        assert!(s.contains("AdaRound is better, significant after correction"), "{s}");
    }
}
