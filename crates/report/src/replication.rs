//! Replication statistics: how two runs of one experiment design agree, setting by setting
//! (verdict agreement, flips between reproduced and not reproduced) and whether their
//! estimates differ more than their intervals allow (z-scores, chi-square of Σz²).

use crate::{ClaimRow, stats};
use std::collections::BTreeMap;

/// What two replications of one frozen design differ in: the names the tables give them,
/// and whether they ran on different data.
#[derive(Debug, Clone)]
pub struct Pair {
    /// How each replication is named in the tables ("seed 1", "pool").
    pub labels: [String; 2],
    /// One sentence on what each replication ran on.
    pub design: String,
    /// Whether the two ran on disjoint data (else only seeds and partitions differ).
    pub new_data: bool,
}

impl Pair {
    /// What the replication varied, in words, and what that can and cannot show.
    fn varied(&self) -> &'static str {
        if self.new_data {
            "**Varied: seed and data.** The two replications share no digit, so agreement here also tests whether the effects hold on digits the first models never saw."
        } else {
            "**Varied: seed only.** Both replications draw from the same digits, so this measures seed and partition noise only: it cannot detect an effect that depends on the pool of digits, and its agreement would rise with more folds even if the effects failed on new data. `harness replicate FILE --pool IMAGES LABELS` replicates on a disjoint pool."
        }
    }
}

/// Agreement of one claim id between two replications.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct AgreementRow {
    /// Claim id.
    pub claim: String,
    /// primary or exploratory.
    pub family: String,
    /// Settings judged in both replications.
    pub settings: usize,
    /// Settings with the same adjusted verdict.
    pub agree: usize,
    /// Settings with the same raw (uncorrected) verdict.
    pub agree_raw: usize,
    /// Settings where one says reproduced and the other not reproduced (adjusted).
    pub flips: usize,
}

/// The rows of two claim tables that judge the same claim in the same setting.
fn matched<'a>(a: &'a [ClaimRow], b: &'a [ClaimRow]) -> impl Iterator<Item = (&'a ClaimRow, &'a ClaimRow)> {
    a.iter().filter_map(move |x| b.iter().find(|y| y.claim == x.claim && y.setting == x.setting).map(|y| (x, y)))
}

/// Compares two claim tables setting by setting.
pub fn agreement(a: &[ClaimRow], b: &[ClaimRow]) -> Vec<AgreementRow> {
    let mut rows: BTreeMap<(String, String), AgreementRow> = BTreeMap::new();
    for (x, y) in matched(a, b) {
        let r = rows.entry((x.family.clone(), x.claim.clone())).or_insert_with(|| AgreementRow {
            claim: x.claim.clone(),
            family: x.family.clone(),
            ..AgreementRow::default()
        });
        r.settings += 1;
        r.agree += usize::from(x.verdict_adjusted == y.verdict_adjusted);
        r.agree_raw += usize::from(x.verdict == y.verdict);
        let pair = [x.verdict_adjusted.as_str(), y.verdict_adjusted.as_str()];
        r.flips += usize::from(pair.contains(&"reproduced") && pair.contains(&"not reproduced"));
    }
    let mut out: Vec<AgreementRow> = rows.into_values().collect();
    out.sort_by_key(|r| (r.family != "primary", r.claim.clone()));
    out
}

/// Cohen's κ of two replications' adjusted verdicts (reproduced, not reproduced,
/// inconclusive) over the settings both judged in `family`: agreement beyond what the two
/// verdict frequencies give by chance. NaN when chance agreement is already 1.
pub fn kappa(a: &[ClaimRow], b: &[ClaimRow], family: &str) -> f64 {
    let pairs: Vec<(&str, &str)> = matched(a, b)
        .filter(|(x, _)| x.family == family)
        .map(|(x, y)| (x.verdict_adjusted.as_str(), y.verdict_adjusted.as_str()))
        .collect();
    let n = pairs.len() as f64;
    let observed = pairs.iter().filter(|(x, y)| x == y).count() as f64 / n;
    let share =
        |v: &str, first: bool| pairs.iter().filter(|(x, y)| (if first { *x } else { *y }) == v).count() as f64 / n;
    let chance: f64 =
        ["reproduced", "not reproduced", "inconclusive"].iter().map(|v| share(v, true) * share(v, false)).sum();
    (observed - chance) / (1.0 - chance)
}

/// How far apart two replications put one setting's estimate, in units of their joint
/// standard error: z = (a − b) / √(se_a² + se_b²), each se read off its 95% t interval.
/// None where either rests on fewer than 2 seeds or neither has any spread.
pub fn z_score(a: &ClaimRow, b: &ClaimRow) -> Option<f64> {
    let se = |r: &ClaimRow| stats::se_of_interval(r.lo, r.hi, r.seeds, 0.95);
    let joint = (se(a).powi(2) + se(b).powi(2)).sqrt();
    (joint.is_finite() && joint > 0.0).then(|| (a.value - b.value) / joint)
}

/// The same z with each standard error read off the Nadeau–Bengio-corrected interval.
pub fn z_score_nb(a: &ClaimRow, b: &ClaimRow) -> Option<f64> {
    let wide = |r: &ClaimRow| ClaimRow { lo: r.lo_nb, hi: r.hi_nb, ..r.clone() };
    z_score(&wide(a), &wide(b))
}

/// Per family: whether two replications differ by more than their intervals allow, which is
/// what "the verdicts reproduce" means once thresholding is set aside.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct ConsistencyRow {
    /// primary or exploratory.
    pub family: String,
    /// Settings with a z-score (both estimates over 2 or more seeds, some spread).
    pub settings: usize,
    /// Settings whose estimates lie more than 1.96 joint standard errors apart.
    pub beyond_95: usize,
    /// How many of those chance alone gives if the intervals are honest: 5% of the settings.
    pub expected: f64,
    /// Mean of z² (about 1 for honest intervals and independent replications).
    pub mean_z2: f64,
    /// Mean of z² with the Nadeau–Bengio-corrected standard errors: near 1 where that
    /// correction is the calibrated one, below 1 where it overcorrects.
    pub mean_z2_nb: f64,
    /// Upper-tail probability of Σz² on a chi-square with `settings` degrees of freedom:
    /// small when the replications differ more than their intervals say they can.
    pub p_value: f64,
}

/// The consistency of two claim tables, one row per family (primary first).
pub fn consistency(a: &[ClaimRow], b: &[ClaimRow]) -> Vec<ConsistencyRow> {
    ["primary", "exploratory"]
        .into_iter()
        .map(|family| {
            let z: Vec<f64> =
                matched(a, b).filter(|(x, _)| x.family == family).filter_map(|(x, y)| z_score(x, y)).collect();
            let sum: f64 = z.iter().map(|v| v * v).sum();
            ConsistencyRow {
                family: family.into(),
                settings: z.len(),
                beyond_95: z.iter().filter(|v| v.abs() > 1.96).count(),
                expected: 0.05 * z.len() as f64,
                mean_z2: sum / z.len().max(1) as f64,
                mean_z2_nb: {
                    let nb: Vec<f64> = matched(a, b)
                        .filter(|(x, _)| x.family == family)
                        .filter_map(|(x, y)| z_score_nb(x, y))
                        .collect();
                    nb.iter().map(|v| v * v).sum::<f64>() / nb.len().max(1) as f64
                },
                p_value: stats::chi_square_upper(sum, z.len()),
            }
        })
        .collect()
}

/// The consistency table as markdown, with what it means.
pub fn render_consistency(pair: &Pair, rows: &[ConsistencyRow]) -> String {
    let shared = if pair.new_data {
        "the two share no digit, so a mean z² well above 1 says the effects depend on the data more than the intervals allow"
    } else {
        "below 1 when both replications share data, as here: the same digits"
    };
    let mut s = format!(
        "\n## Do the replications differ more than their intervals allow?\n\nA verdict flips whenever an effect sits near the significance threshold, however honest the numbers. This table asks the question beneath: for each setting, z = (mean₁ − mean₂) / √(se₁² + se₂²), with each standard error read off its 95% interval. If the intervals are honest, about 5% of settings have |z| > 1.96 and the mean of z² is about 1 ({shared}); Σz² then follows a chi-square with one degree of freedom per setting. The last column repeats the mean z² with each standard error widened by the Nadeau–Bengio factor: if the plain intervals are too narrow and the corrected ones right, it comes out near 1.\n\n| family | settings | \\|z\\| > 1.96 | expected by chance | mean z² | P(χ² ≥ Σz²) | mean z², Nadeau–Bengio se |\n|---|---|---|---|---|---|---|\n",
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {:.1} | {:.2} | {:.3} | {:.2} |\n",
            r.family, r.settings, r.beyond_95, r.expected, r.mean_z2, r.p_value, r.mean_z2_nb
        ));
    }
    s
}

/// The settings whose adjusted verdicts differ between two claim tables, primary first:
/// where a verdict is fragile.
pub fn differences<'a>(a: &'a [ClaimRow], b: &'a [ClaimRow]) -> Vec<(&'a ClaimRow, &'a ClaimRow)> {
    let mut out: Vec<(&ClaimRow, &ClaimRow)> =
        matched(a, b).filter(|(x, y)| x.verdict_adjusted != y.verdict_adjusted).collect();
    out.sort_by_key(|(x, _)| (x.family != "primary", x.claim.clone(), x.setting.clone()));
    out
}

/// One markdown table row per differing setting: each seed's mean, adjusted p and verdicts.
pub fn render_differences(pair: &Pair, diffs: &[(&ClaimRow, &ClaimRow)]) -> String {
    let mut s = format!(
        "\n## Settings whose adjusted verdicts differ\n\n| family | claim | setting | {a}: mean, p adjusted, verdict (raw) | {b}: mean, p adjusted, verdict (raw) | z |\n|---|---|---|---|---|---|\n",
        a = pair.labels[0],
        b = pair.labels[1]
    );
    let mean = |v: f64| if v.abs() >= 0.01 || v == 0.0 { format!("{v:+.4}") } else { format!("{v:+.2e}") };
    let cell = |r: &ClaimRow| format!("{}, {:.3}, {} ({})", mean(r.value), r.p_adjusted, r.verdict_adjusted, r.verdict);
    for (x, y) in diffs {
        let z = z_score(x, y).map_or("–".into(), |z| format!("{z:+.2}"));
        s.push_str(&format!("| {} | {} | {} | {} | {} | {z} |\n", x.family, x.claim, x.setting, cell(x), cell(y)));
    }
    s
}

/// Every setting both replications judged: each estimate with its interval and adjusted
/// verdict, and the z of their difference.
pub fn render_settings(pair: &Pair, a: &[ClaimRow], b: &[ClaimRow]) -> String {
    let mut s = format!(
        "\n## Every setting\n\n| family | claim | setting | {}: mean [95% CI], verdict | {}: mean [95% CI], verdict | z |\n|---|---|---|---|---|---|\n",
        pair.labels[0], pair.labels[1]
    );
    let v = |v: f64| if v.abs() >= 0.01 || v == 0.0 { format!("{v:+.4}") } else { format!("{v:+.2e}") };
    let cell = |r: &ClaimRow| format!("{} [{}, {}], {}", v(r.value), v(r.lo), v(r.hi), r.verdict_adjusted);
    let mut rows: Vec<(&ClaimRow, &ClaimRow)> = matched(a, b).collect();
    rows.sort_by_key(|(x, _)| (x.family != "primary", x.claim.clone(), x.setting.clone()));
    for (x, y) in rows {
        let z = z_score(x, y).map_or("–".into(), |z| format!("{z:+.2}"));
        s.push_str(&format!("| {} | {} | {} | {} | {} | {z} |\n", x.family, x.claim, x.setting, cell(x), cell(y)));
    }
    s
}

/// The agreement table as markdown, with totals and Cohen's κ per family.
pub fn render(pair: &Pair, rows: &[AgreementRow], a: &[ClaimRow], b: &[ClaimRow]) -> String {
    let mut s = format!(
        "# Replication\n\n{} Verdicts compared setting by setting, {} against {}.\n\n{}\n\n| family | claim | settings | same adjusted verdict | same raw verdict | reproduced ↔ not reproduced |\n|---|---|---|---|---|---|\n",
        pair.design,
        pair.labels[0],
        pair.labels[1],
        pair.varied()
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.family, r.claim, r.settings, r.agree, r.agree_raw, r.flips
        ));
    }
    for family in ["primary", "exploratory"] {
        let f: Vec<&AgreementRow> = rows.iter().filter(|r| r.family == family).collect();
        let (n, agree, flips) = f.iter().fold((0, 0, 0), |(n, a, x), r| (n + r.settings, a + r.agree, x + r.flips));
        s.push_str(&format!(
            "\n**{family}**: {agree} of {n} adjusted verdicts agree ({:.1}%, Cohen's κ {}); {flips} go from reproduced to not reproduced.",
            100.0 * agree as f64 / n.max(1) as f64,
            match kappa(a, b, family) {
                k if k.is_finite() => format!("{k:.2}"),
                _ => "undefined: one verdict throughout".into(),
            }
        ));
    }
    s.push('\n');
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(family: &str, setting: &str, p: f64, verdict: &str) -> ClaimRow {
        ClaimRow {
            claim: "lower-loss".into(),
            setting: setting.into(),
            family: family.into(),
            value: -0.02,
            p_adjusted: p,
            verdict: "reproduced".into(),
            verdict_adjusted: verdict.into(),
            ..ClaimRow::default()
        }
    }

    #[test]
    fn differing_settings_are_listed_primary_first() {
        let a = [
            row("exploratory", "e", 0.01, "reproduced"),
            row("primary", "p", 0.01, "reproduced"),
            row("primary", "q", 0.01, "reproduced"),
        ];
        let b = [
            row("exploratory", "e", 0.2, "inconclusive"),
            row("primary", "p", 0.2, "inconclusive"),
            row("primary", "q", 0.02, "reproduced"),
        ];
        let d = differences(&a, &b);
        let settings: Vec<&str> = d.iter().map(|(x, _)| x.setting.as_str()).collect();
        assert_eq!(settings, ["p", "e"]);
        let pair = Pair { labels: ["seed 1".into(), "seed 2".into()], design: String::new(), new_data: false };
        let text = render_differences(&pair, &d);
        assert!(text.contains("| seed 1: mean, p adjusted"), "{text}");
        assert!(text.contains("| primary | lower-loss | p | -0.0200, 0.010, reproduced (reproduced) | -0.0200, 0.200, inconclusive (reproduced) | – |"), "{text}");
    }

    /// A claim row whose estimate is the t interval of `values`.
    fn estimate(family: &str, setting: &str, values: &[f64]) -> ClaimRow {
        let t = stats::t_test(values, 0.0, 0.95);
        ClaimRow {
            claim: "lower-loss".into(),
            setting: setting.into(),
            family: family.into(),
            value: t.mean,
            lo: t.lo,
            hi: t.hi,
            lo_nb: t.mean - 2.0 * (t.mean - t.lo),
            hi_nb: t.mean + 2.0 * (t.hi - t.mean),
            seeds: t.n,
            ..ClaimRow::default()
        }
    }

    #[test]
    fn z_scores_use_both_standard_errors_and_consistency_counts_the_far_settings() {
        // Four values m-1, m, m, m+1: sd √(2/3), se √(2/3)/2 each, joint se √(1/3).
        let v = |m: f64| [m - 1.0, m, m, m + 1.0];
        let joint = (1.0f64 / 3.0).sqrt();
        let a = [
            estimate("primary", "p", &v(0.0)),
            estimate("primary", "q", &v(0.0)),
            estimate("exploratory", "e", &v(0.0)),
        ];
        let b = [
            estimate("primary", "p", &v(0.1)),
            estimate("primary", "q", &v(2.0)),
            estimate("exploratory", "e", &[1.0]),
        ];
        let zp = z_score(&a[0], &b[0]).unwrap_or(f64::NAN);
        let zq = z_score(&a[1], &b[1]).unwrap_or(f64::NAN);
        assert!((zp + 0.1 / joint).abs() < 1e-9, "{zp}");
        assert!((zq + 2.0 / joint).abs() < 1e-9, "{zq}");
        assert_eq!(z_score(&a[2], &b[2]), None, "one seed has no standard error");
        let c = consistency(&a, &b);
        assert_eq!((c[0].family.as_str(), c[0].settings, c[0].beyond_95), ("primary", 2, 1));
        assert!((c[0].mean_z2 - (zp * zp + zq * zq) / 2.0).abs() < 1e-9);
        assert!((c[0].p_value - stats::chi_square_upper(zp * zp + zq * zq, 2)).abs() < 1e-12);
        assert_eq!((c[1].settings, c[1].p_value), (0, 1.0));
        assert!((c[0].mean_z2_nb - c[0].mean_z2 / 4.0).abs() < 1e-9, "twice the se, a quarter of z²");
        let pair = Pair { labels: ["a".into(), "b".into()], design: String::new(), new_data: true };
        let text = render_consistency(&pair, &c);
        assert!(text.contains("share no digit"), "{text}");
        assert!(text.contains("| primary | 2 | 1 | 0.1 | "), "{text}");
    }

    /// κ is 1 for identical verdicts, 0 when agreement is what the verdict frequencies give
    /// by chance, and the rendered text says what the replication varied.
    #[test]
    fn kappa_measures_agreement_beyond_chance() {
        let mk = |v: &[&str]| -> Vec<ClaimRow> {
            v.iter().enumerate().map(|(i, v)| row("primary", &format!("s{i}"), 0.01, v)).collect()
        };
        let a = mk(&["reproduced", "reproduced", "inconclusive", "inconclusive"]);
        assert!((kappa(&a, &a, "primary") - 1.0).abs() < 1e-12);
        // Observed 0.5, chance 0.5·0.5 + 0.5·0.5 = 0.5: κ 0.
        let b = mk(&["reproduced", "inconclusive", "reproduced", "inconclusive"]);
        assert!(kappa(&a, &b, "primary").abs() < 1e-12);
        // One of four differs: observed 0.75, chance 0.5·0.25 + 0.5·0.75 = 0.5, κ 0.5.
        let c = mk(&["reproduced", "inconclusive", "inconclusive", "inconclusive"]);
        assert!((kappa(&a, &c, "primary") - 0.5).abs() < 1e-12);
        let seeds = Pair { labels: ["seed 1".into(), "seed 2".into()], design: "D.".into(), new_data: false };
        let text = render(&seeds, &agreement(&a, &c), &a, &c);
        assert!(text.contains("Varied: seed only") && text.contains("cannot detect"), "{text}");
        assert!(text.contains("3 of 4 adjusted verdicts agree (75.0%, Cohen's κ 0.50)"), "{text}");
        let pool = Pair { new_data: true, ..seeds };
        assert!(render(&pool, &agreement(&a, &c), &a, &c).contains("Varied: seed and data"));
        assert!(render_settings(&pool, &a, &c).contains("| primary | lower-loss | s1 |"));
    }
}
