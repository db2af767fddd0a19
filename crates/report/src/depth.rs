//! The report's "Depth" section: residual networks against their plain twins at several
//! depths and weight granularities. A figure of test ΔL against depth per bit width, a table
//! per width, the searches against the exhaustive optimum where it ran, and two paragraphs
//! written from the claims by rules (identity mappings at depth; lower-than-FP32 loss at
//! depth), so a changed verdict changes the sentence.

pub use crate::depth_model::DepthModel;

use crate::analysis::search_of;
use crate::figures::Figure;
use crate::plots::{Series, line_chart};
use crate::stats::t_test;
use crate::{ClaimRow, Method, ReportError, RunRow};
use std::collections::BTreeSet;
use std::path::Path;

/// Per-run test ΔL (against the run's FP32) of `method` at `bits` for `label`.
fn deltas(rows: &[RunRow], label: &str, bits: u32, method: Method) -> Vec<f64> {
    rows.iter()
        .filter(|r| r.model == label && r.bits == bits && r.method == method)
        .map(|r| r.delta_test_loss)
        .collect()
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// "+0.0123 [+0.0010, +0.0236]" over the values, or "–" for none.
fn ci_text(v: &[f64]) -> String {
    if v.is_empty() {
        return "–".into();
    }
    let t = t_test(v, 0.0, 0.95);
    format!("{:+.4} [{:+.4}, {:+.4}]", t.mean, t.lo, t.hi)
}

/// Mean test accuracy of `method` at `bits` for `label`.
fn acc(rows: &[RunRow], label: &str, bits: u32, method: Method) -> f64 {
    mean(
        &rows
            .iter()
            .filter(|r| r.model == label && r.bits == bits && r.method == method)
            .map(|r| r.test_acc)
            .collect::<Vec<_>>(),
    )
}

/// The quantized widths the rows hold, widest first.
fn widths(rows: &[RunRow]) -> Vec<u32> {
    let set: BTreeSet<u32> = rows.iter().filter(|r| r.bits < 32 && !r.method.is_mixed()).map(|r| r.bits).collect();
    set.into_iter().rev().collect()
}

/// The section and its figures (for the report's figure list); empty when fewer than two
/// depths are studied.
pub fn section(
    models: &[DepthModel],
    rows: &[RunRow],
    claims: &[ClaimRow],
    dir: &Path,
) -> Result<(String, Vec<Figure>), ReportError> {
    let depths: BTreeSet<usize> = models.iter().map(|m| m.depth).collect();
    if depths.len() < 2 {
        return Ok((String::new(), Vec::new()));
    }
    let mut s = String::from(
        "## Depth: residual networks against their plain twins\n\nEach row: means over the repeats of one network at one weight granularity, test split. *Searched* is the exhaustive search where it ran (the shallowest depth), else greedy descent; ΔL is against the same run's FP32 (batch norm folded) with its 95% Student-t interval.\n\n",
    );
    s.push_str(&identity_text(models, claims));
    s.push_str(&lower_loss_text(models, claims));
    let mut figures = Vec::new();
    for bits in widths(rows) {
        s.push_str(&width_table(models, rows, bits));
        figures.extend(depth_figure(models, rows, bits, dir)?);
    }
    s.push_str(&crate::depth_search::section(models, rows));
    Ok((s, figures))
}

/// One width's table: FP32 accuracy, the searched plan's and all-nearest's ΔL and accuracy.
fn width_table(models: &[DepthModel], rows: &[RunRow], bits: u32) -> String {
    let mut s = format!(
        "### {bits}-bit\n\n| depth | network | weights | FP32 test acc | searched ΔL [95% CI] | searched acc | all-nearest ΔL [95% CI] | all-nearest acc |\n|---|---|---|---|---|---|---|---|\n"
    );
    for m in ordered(models) {
        let search = search_of(rows, &m.label);
        s.push_str(&format!(
            "| {} | {} | {} | {:.4} | {} ({search}) | {:.4} | {} | {:.4} |\n",
            m.depth,
            if m.residual { "residual" } else { "plain" },
            m.granularity,
            acc(rows, &m.label, 32, Method::Fp),
            ci_text(&deltas(rows, &m.label, bits, search)),
            acc(rows, &m.label, bits, search),
            ci_text(&deltas(rows, &m.label, bits, Method::Nearest)),
            acc(rows, &m.label, bits, Method::Nearest),
        ));
    }
    s.push('\n');
    s
}

/// Models by depth, then residual first, then granularity.
fn ordered(models: &[DepthModel]) -> Vec<&DepthModel> {
    let mut v: Vec<&DepthModel> = models.iter().collect();
    v.sort_by(|a, b| (a.depth, !a.residual, &a.granularity).cmp(&(b.depth, !b.residual, &b.granularity)));
    v
}

/// Test ΔL of the searched plan against depth at one width: a line per network and
/// granularity, 95% intervals as error bars.
fn depth_figure(models: &[DepthModel], rows: &[RunRow], bits: u32, dir: &Path) -> Result<Option<Figure>, ReportError> {
    let names: BTreeSet<String> = models.iter().map(DepthModel::series).collect();
    let mut series = Vec::new();
    for name in names {
        let mut points = Vec::new();
        for m in ordered(models).into_iter().filter(|m| m.series() == name) {
            let d = deltas(rows, &m.label, bits, search_of(rows, &m.label));
            if !d.is_empty() {
                let t = t_test(&d, 0.0, 0.95);
                points.push((m.depth as f64, t.mean, t.lo, t.hi));
            }
        }
        if !points.is_empty() {
            series.push(Series { label: name, points });
        }
    }
    if series.is_empty() {
        return Ok(None);
    }
    let stem = format!("depth_{bits}bit");
    let title = format!("Test ΔL of the searched plan against depth, {bits}-bit (95% CI)");
    line_chart(
        &dir.join(&stem),
        &title,
        "depth (layers with weights)",
        "test ΔL vs FP32 (nats)",
        &series,
        Some(("FP32", 0.0)),
    )?;
    Ok(Some((stem, title)))
}

/// The claims of one id whose setting names a model of the study, with the model.
fn claims_of<'a>(claims: &'a [ClaimRow], id: &str, models: &'a [DepthModel]) -> Vec<(&'a DepthModel, &'a ClaimRow)> {
    claims
        .iter()
        .filter(|c| c.claim == id)
        .filter_map(|c| {
            let m = models.iter().find(|m| {
                c.setting.starts_with(&format!("{} vs ", m.label)) || c.setting.starts_with(&format!("{}, ", m.label))
            })?;
            Some((m, c))
        })
        .collect()
}

/// "k of n" with the settings where the adjusted verdict is `verdict`, e.g. "2 of 6 (depth 20 per-tensor 4-bit −0.12 [−0.2, −0.04])".
fn tally(found: &[(&DepthModel, &ClaimRow)], verdict: &str) -> String {
    let hit: Vec<String> = found
        .iter()
        .filter(|(_, c)| c.verdict_adjusted == verdict)
        .map(|(m, c)| {
            let bits = c.setting.split(", ").find(|p| p.ends_with("-bit")).unwrap_or("");
            let net = if m.residual { "residual" } else { "plain" };
            format!("depth {} {net} {} {bits} {:+.4} [{:+.4}, {:+.4}]", m.depth, m.granularity, c.value, c.lo, c.hi)
        })
        .collect();
    match hit.len() {
        0 => format!("none of {}", found.len()),
        k => format!("{k} of {} ({})", found.len(), hit.join("; ")),
    }
}

/// The identity-mapping paragraph: where the residual network lost less than its plain
/// twin (Holm-adjusted), where more, for the searched plan and for all-nearest.
fn identity_text(models: &[DepthModel], claims: &[ClaimRow]) -> String {
    let mut s = String::new();
    for (id, what) in
        [("identity-mappings", "the searched plan"), ("identity-mappings-nearest", "all-nearest rounding")]
    {
        let found = claims_of(claims, id, models);
        if found.is_empty() {
            continue;
        }
        let (less, more) = (tally(&found, "reproduced"), tally(&found, "not reproduced"));
        let verdict = match (
            found.iter().any(|(_, c)| c.verdict_adjusted == "reproduced"),
            found.iter().any(|(_, c)| c.verdict_adjusted == "not reproduced"),
        ) {
            (false, false) => {
                "No setting is decisive: at these depths the data neither support nor refute that identity mappings resist quantization."
            }
            (true, false) => {
                "Where a setting is decisive, identity mappings help: the claim holds there, not in general."
            }
            (false, true) => {
                "Where a setting is decisive, the residual network suffers more: the evidence goes against the claim."
            }
            (true, true) => "The direction depends on the setting: the claim does not hold in general.",
        };
        s.push_str(&format!(
            "**Identity mappings at depth ({what}).** Residual minus plain test ΔL, paired by repeat: the residual network lost less (Holm-adjusted) in {less}, and more in {more}. {verdict}\n\n"
        ));
    }
    s
}

/// The lower-than-FP32 paragraph per depth: settings whose searched plan's test loss is below
/// FP32's, raw and once both carry a fitted temperature.
fn lower_loss_text(models: &[DepthModel], claims: &[ClaimRow]) -> String {
    let depths: BTreeSet<usize> = models.iter().map(|m| m.depth).collect();
    let mut parts = Vec::new();
    for d in depths {
        let at: Vec<DepthModel> = models.iter().filter(|m| m.depth == d).cloned().collect();
        let raw = claims_of(claims, "lower-loss", &at);
        let beyond = claims_of(claims, "lower-loss-beyond-temperature", &at);
        if raw.is_empty() {
            continue;
        }
        parts.push(format!(
            "at depth {d} the searched plan's test loss is below FP32's in {}, and still below once both have a fitted temperature in {}",
            tally(&raw, "reproduced"),
            tally(&beyond, "reproduced")
        ));
    }
    if parts.is_empty() {
        return String::new();
    }
    format!("**Lower-than-FP32 loss at depth** (Holm-adjusted): {}.\n\n", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn models() -> Vec<DepthModel> {
        let m = |label: &str, residual, depth| DepthModel {
            label: label.into(),
            residual,
            granularity: "per-tensor".into(),
            depth,
        };
        vec![
            m("resnet8-4", true, 8),
            m("plainnet8-4", false, 8),
            m("resnet14-4", true, 14),
            m("plainnet14-4", false, 14),
        ]
    }

    fn claim(id: &str, setting: &str, value: f64, verdict: &str) -> ClaimRow {
        ClaimRow {
            claim: id.into(),
            setting: setting.into(),
            value,
            lo: value - 0.01,
            hi: value + 0.01,
            verdict_adjusted: verdict.into(),
            ..ClaimRow::default()
        }
    }

    #[test]
    fn the_sentences_follow_the_verdicts() {
        let ms = models();
        let mut claims = vec![
            claim("identity-mappings", "resnet8-4 vs plainnet8-4, 4-bit", -0.05, "inconclusive"),
            claim("identity-mappings", "resnet14-4 vs plainnet14-4, 4-bit", -0.2, "inconclusive"),
            claim("lower-loss", "resnet14-4, 8-bit, greedy", -0.01, "inconclusive"),
            claim("lower-loss", "mlp-8, 8-bit, greedy", -0.01, "reproduced"),
        ];
        let text = identity_text(&ms, &claims);
        assert!(text.contains("in none of 2, and more in none of 2. No setting is decisive"), "{text}");
        claims[1].verdict_adjusted = "reproduced".into();
        let text = identity_text(&ms, &claims);
        assert!(
            text.contains("lost less (Holm-adjusted) in 1 of 2 (depth 14 residual per-tensor 4-bit -0.2000"),
            "{text}"
        );
        assert!(text.contains("the claim holds there, not in general"), "{text}");
        claims[0].verdict_adjusted = "not reproduced".into();
        assert!(identity_text(&ms, &claims).contains("does not hold in general"));
        // Only the study's models count: the MLP's reproduced row is not at any depth.
        let lower = lower_loss_text(&ms, &claims);
        assert!(lower.contains("at depth 14 the searched plan's test loss is below FP32's in none of 1"), "{lower}");
        assert!(!lower.contains("depth 8 the"), "no lower-loss rows at depth 8: {lower}");
        claims[2].verdict_adjusted = "reproduced".into();
        assert!(lower_loss_text(&ms, &claims).contains("in 1 of 1 (depth 14 residual per-tensor 8-bit"));
    }

    #[test]
    fn one_depth_is_no_section() {
        let ms: Vec<DepthModel> = models().into_iter().filter(|m| m.depth == 8).collect();
        let (s, f) = section(&ms, &[], &[], Path::new("unused")).unwrap();
        assert!(s.is_empty() && f.is_empty());
    }
}
