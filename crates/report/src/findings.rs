//! The answer first: one generated sentence per primary claim (verdicts after correction and
//! effect sizes), and the rows of the primary-claims forest plot. Written from the claim and
//! summary tables only, never by hand.

use crate::forest::ForestRow;
use crate::{ClaimRow, SummaryRow};

/// What each primary claim says, in the words the summary uses.
const PRIMARY: [(&str, &str); 8] = [
    ("lower-loss", "Lower loss than FP32 (searched floor/ceil/nearest plan)"),
    ("lower-loss-than-fp-temperature", "Lower loss than FP32 with a fitted temperature (paired by repeat)"),
    ("lower-loss-beyond-temperature", "Lower loss than FP32 once both get a fitted temperature"),
    ("input-vs-weight", "Layer-input noise dominates weight noise"),
    (
        "identity-mappings",
        "Identity mappings (residual) resist quantization better than the plain twin (searched plan)",
    ),
    (
        "identity-mappings-nearest",
        "Identity mappings (residual) resist quantization better than the plain twin (all-nearest)",
    ),
    ("mixed-beats-uniform", "Mixed precision (knapsack) beats uniform bits at the same storage"),
    ("mixed-rounding-beats-uniform", "Mixed precision with per-layer floor/ceil beats uniform bits"),
];

/// A claim's setting, short: "model, 8-bit, exhaustive" and "model, 8-bit" become
/// "model 8-bit"; other settings stay as they are.
pub(crate) fn setting(c: &ClaimRow) -> String {
    let parts: Vec<&str> = c.setting.split(", ").collect();
    if (2..=3).contains(&parts.len()) && parts[1].ends_with("-bit") {
        format!("{} {}", parts[0], parts[1])
    } else {
        c.setting.clone()
    }
}

fn range(rows: &[&ClaimRow]) -> String {
    let lo = rows.iter().map(|c| c.value).fold(f64::INFINITY, f64::min);
    let hi = rows.iter().map(|c| c.value).fold(f64::NEG_INFINITY, f64::max);
    if (hi - lo).abs() < 5e-5 { format!("{lo:+.4}") } else { format!("{lo:+.4} to {hi:+.4}") }
}

fn part(label: &str, rows: &[&ClaimRow]) -> Option<String> {
    if rows.is_empty() {
        return None;
    }
    let names: Vec<String> = rows.iter().map(|c| setting(c)).collect();
    Some(format!("{label} for {} (mean {})", names.join("; "), range(rows)))
}

/// The FP32 + temperature effect of `model` (mean test ΔL), if the summary has it.
pub fn temperature_effect(summary: &[SummaryRow], model: &str) -> Option<f64> {
    summary.iter().find(|r| r.model == model && r.method == crate::Method::FpTemp).map(|r| r.delta_mean)
}

/// One markdown bullet per primary claim: where it holds, where the opposite holds, and how
/// many settings are inconclusive, after the multiplicity correction.
pub fn summary_in_words(claims: &[ClaimRow], summary: &[SummaryRow]) -> String {
    let mut s = String::new();
    for (id, words) in PRIMARY {
        let rows: Vec<&ClaimRow> = claims.iter().filter(|c| c.claim == id).collect();
        if rows.is_empty() {
            continue;
        }
        let by = |v: &str| rows.iter().copied().filter(|c| c.verdict_adjusted == v).collect::<Vec<_>>();
        let (yes, no, open) = (by("reproduced"), by("not reproduced"), by("inconclusive"));
        let mut bits: Vec<String> =
            [part("holds", &yes), part("the opposite holds", &no)].into_iter().flatten().collect();
        if !open.is_empty() {
            bits.push(format!("inconclusive in {} of {} settings", open.len(), rows.len()));
        }
        s.push_str(&format!("- **{words}**: {}.", bits.join("; ")));
        if id == "lower-loss" {
            let mut models: Vec<&str> = rows.iter().map(|c| c.setting.split(", ").next().unwrap_or("")).collect();
            models.dedup();
            let t: Vec<String> =
                models.iter().filter_map(|m| temperature_effect(summary, m).map(|d| format!("{m} {d:+.4}"))).collect();
            if !t.is_empty() {
                s.push_str(&format!(" For comparison, FP32 with temperature scaling alone gives ΔL {}.", t.join(", ")));
            }
        }
        s.push_str(" (ΔL in nats; negative is lower loss.)\n");
    }
    s
}

/// Forest-plot rows of the primary claims, with the FP32 + temperature effect beside each
/// lower-loss row.
pub fn forest_rows(claims: &[ClaimRow], summary: &[SummaryRow]) -> Vec<ForestRow> {
    let mut rows = Vec::new();
    for (id, _) in PRIMARY {
        for c in claims.iter().filter(|c| c.claim == id) {
            let model = c.setting.split(", ").next().unwrap_or("");
            let reference = if id == "lower-loss" { temperature_effect(summary, model) } else { None };
            rows.push(ForestRow {
                label: format!("{id}: {}{}", setting(c), if crate::fragile::is_fragile(c) { " [fragile]" } else { "" }),
                mean: c.value,
                lo: c.lo,
                hi: c.hi,
                verdict: c.verdict_adjusted.clone(),
                reference,
            });
        }
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(id: &str, setting: &str, value: f64, verdict: &str) -> ClaimRow {
        ClaimRow {
            claim: id.into(),
            setting: setting.into(),
            value,
            verdict_adjusted: verdict.into(),
            ..ClaimRow::default()
        }
    }

    #[test]
    fn sentences_follow_the_verdicts() {
        let claims = [
            claim("lower-loss", "mlp, 8-bit, exhaustive", -0.02, "reproduced"),
            claim("lower-loss", "mlp, 6-bit, exhaustive", -0.03, "reproduced"),
            claim("lower-loss", "mlp, 4-bit, exhaustive", 0.5, "not reproduced"),
            claim("input-vs-weight", "cnn, 4-bit", 0.1, "inconclusive"),
        ];
        let summary = [SummaryRow {
            model: "mlp".into(),
            method: crate::Method::FpTemp,
            bits: 32,
            delta_mean: -0.04,
            ..SummaryRow::default()
        }];
        let s = summary_in_words(&claims, &summary);
        assert!(s.contains("holds for mlp 8-bit; mlp 6-bit (mean -0.0300 to -0.0200)"), "{s}");
        assert!(s.contains("the opposite holds for mlp 4-bit (mean +0.5000)"), "{s}");
        assert!(s.contains("temperature scaling alone gives ΔL mlp -0.0400"), "{s}");
        assert!(s.contains("inconclusive in 1 of 1 settings"), "{s}");
        let f = forest_rows(&claims, &summary);
        assert_eq!(f.len(), 4);
        assert_eq!(f[0].reference, Some(-0.04));
        assert_eq!(f[3].reference, None);
    }
}
