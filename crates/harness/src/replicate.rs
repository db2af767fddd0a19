//! `harness replicate`: the same experiment under independent experiment seeds (new splits,
//! initializations, shuffles and folds), then how often the verdicts agree.

use anyhow::{Context, Result, bail};
use mpq_experiment::config::Experiment;
use mpq_report::ClaimRow;
use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

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

/// The settings whose adjusted verdicts differ between two claim tables, primary first:
/// where a verdict is fragile.
pub fn differences<'a>(a: &'a [ClaimRow], b: &'a [ClaimRow]) -> Vec<(&'a ClaimRow, &'a ClaimRow)> {
    let mut out: Vec<(&ClaimRow, &ClaimRow)> =
        matched(a, b).filter(|(x, y)| x.verdict_adjusted != y.verdict_adjusted).collect();
    out.sort_by_key(|(x, _)| (x.family != "primary", x.claim.clone(), x.setting.clone()));
    out
}

/// One markdown table row per differing setting: each seed's mean, adjusted p and verdicts.
fn render_differences(seeds: &[u64], diffs: &[(&ClaimRow, &ClaimRow)]) -> String {
    let mut s = format!(
        "\n## Settings whose adjusted verdicts differ\n\n| family | claim | setting | seed {a}: mean, p adjusted, verdict (raw) | seed {b}: mean, p adjusted, verdict (raw) |\n|---|---|---|---|---|\n",
        a = seeds[0],
        b = seeds[1]
    );
    let mean = |v: f64| if v.abs() >= 0.01 || v == 0.0 { format!("{v:+.4}") } else { format!("{v:+.2e}") };
    let cell = |r: &ClaimRow| format!("{}, {:.3}, {} ({})", mean(r.value), r.p_adjusted, r.verdict_adjusted, r.verdict);
    for (x, y) in diffs {
        s.push_str(&format!("| {} | {} | {} | {} | {} |\n", x.family, x.claim, x.setting, cell(x), cell(y)));
    }
    s
}

/// The agreement table as markdown, with totals per family.
pub fn render(seeds: &[u64], rows: &[AgreementRow]) -> String {
    let mut s = format!(
        "# Replication\n\nThe same experiment under experiment seeds {} and {} (independent splits, folds, initializations and shuffles); verdicts compared setting by setting.\n\n| family | claim | settings | same adjusted verdict | same raw verdict | reproduced ↔ not reproduced |\n|---|---|---|---|---|---|\n",
        seeds[0], seeds[1]
    );
    for r in rows {
        s.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.family, r.claim, r.settings, r.agree, r.agree_raw, r.flips
        ));
    }
    for family in ["primary", "exploratory"] {
        let f: Vec<&AgreementRow> = rows.iter().filter(|r| r.family == family).collect();
        let (n, a, flips) = f.iter().fold((0, 0, 0), |(n, a, x), r| (n + r.settings, a + r.agree, x + r.flips));
        s.push_str(&format!(
            "\n**{family}**: {a} of {n} adjusted verdicts agree ({:.1}%); {flips} go from reproduced to not reproduced.",
            100.0 * a as f64 / n.max(1) as f64
        ));
    }
    s.push('\n');
    s
}

/// Runs `file` once per seed (results in `<output>/<name>-seed<S>/`), then writes and prints
/// the verdict agreement into `out`.
pub fn replicate(file: &Path, seeds: &[u64], out: &Path, force: bool) -> Result<ExitCode> {
    if seeds.len() != 2 || seeds[0] == seeds[1] {
        bail!("--seeds takes two different experiment seeds, e.g. --seeds 1,2");
    }
    let base = Experiment::load(file)?;
    let mut tables = Vec::new();
    for &seed in seeds {
        let mut exp = base.clone();
        exp.seed = seed;
        exp.name = format!("{}-seed{seed}", base.name);
        eprintln!("replication with experiment seed {seed}: results in {}", exp.out_dir().display());
        let code = crate::sweep::run_experiment(&exp, file, &crate::schedule::Options { force, ..Default::default() })?;
        if code != ExitCode::SUCCESS {
            bail!(
                "the replication with seed {seed} had failed runs; see {}",
                exp.out_dir().join("failures.csv").display()
            );
        }
        let path = exp.out_dir().join("claims.csv");
        let claims: Vec<ClaimRow> =
            mpq_report::csvio::read(&path).with_context(|| format!("reading {}", path.display()))?;
        tables.push(claims);
    }
    let rows = agreement(&tables[0], &tables[1]);
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    mpq_report::csvio::write(&out.join("agreement.csv"), &rows)?;
    let mut text = render(seeds, &rows);
    let diffs = differences(&tables[0], &tables[1]);
    if !diffs.is_empty() {
        text.push_str(&render_differences(seeds, &diffs));
    }
    mpq_pipeline::output::write_atomic(&out.join("REPLICATION.md"), text.as_bytes())?;
    println!("{text}");
    Ok(ExitCode::SUCCESS)
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
        let text = render_differences(&[1, 2], &d);
        assert!(text.contains("| primary | lower-loss | p | -0.0200, 0.010, reproduced (reproduced) | -0.0200, 0.200, inconclusive (reproduced) |"), "{text}");
    }
}
