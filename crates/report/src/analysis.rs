//! Aggregation over seeds: the summary table and the per-claim verdicts (the verdict rule,
//! primary and exploratory families, adjusted p-values).

mod layers;

use crate::stats::{TTest, t_test};
pub use crate::verdict::PRIMARY;
use crate::verdict::{ALPHA, Null, family_adjusted, null_of, verdict};
use crate::{ClaimRow, ConfigRow, Method, RunRow, SensitivityRow, SummaryRow};
use std::collections::BTreeMap;

pub use crate::fragile::FoldSizes;

/// 95% Student-t interval of the mean over seeds, tested against 0.
pub(crate) fn ci(values: &[f64]) -> TTest {
    t_test(values, 0.0, 1.0 - ALPHA)
}

fn mean(v: &[f64]) -> f64 {
    v.iter().sum::<f64>() / v.len().max(1) as f64
}

/// One row per (model, backend, bits, method), aggregated over seeds.
pub fn summarize(rows: &[RunRow]) -> Vec<SummaryRow> {
    let mut groups: BTreeMap<(String, String, u32, Method), Vec<&RunRow>> = BTreeMap::new();
    for r in rows {
        groups.entry((r.model.clone(), r.backend.clone(), r.bits, r.method)).or_default().push(r);
    }
    groups
        .into_iter()
        .map(|((model, backend, bits, method), rs)| {
            let d: Vec<f64> = rs.iter().map(|r| r.delta_test_loss).collect();
            let c = ci(&d);
            SummaryRow {
                model,
                backend,
                bits,
                method,
                seeds: rs.len(),
                test_loss: mean(&rs.iter().map(|r| r.test_loss).collect::<Vec<_>>()),
                test_acc: mean(&rs.iter().map(|r| r.test_acc).collect::<Vec<_>>()),
                delta_mean: c.mean,
                delta_lo: c.lo,
                delta_hi: c.hi,
                frac_negative: d.iter().filter(|&&x| x < 0.0).count() as f64 / d.len().max(1) as f64,
            }
        })
        .collect()
}

/// Fills each claim's family, adjusted p-value and adjusted verdict (see [`family_adjusted`]).
fn adjust(rows: &mut [ClaimRow], nulls: &[Null]) {
    let p: Vec<f64> = rows.iter().map(|r| r.p_value).collect();
    let adj = family_adjusted(rows, &p);
    for ((r, a), n) in rows.iter_mut().zip(adj).zip(nulls) {
        let primary = PRIMARY.contains(&r.claim.as_str());
        r.family = if primary { "primary" } else { "exploratory" }.into();
        r.p_adjusted = a;
        r.verdict_adjusted = verdict(r.value, n.value, a, n.below);
    }
}

/// Paired differences `a - b` of two methods' test losses, matched by run id and bits.
fn paired(rows: &[RunRow], model: &str, bits: u32, a: Method, b: Method) -> Vec<f64> {
    // A run quantized at several granularities holds one row per label: match the label too.
    let find = |run: &str, m: Method, bb: u32| {
        rows.iter().find(|r| r.run_id == run && r.model == model && r.method == m && r.bits == bb)
    };
    rows.iter()
        .filter(|r| r.model == model && r.bits == bits && r.method == a)
        .filter_map(|r| {
            let other_bits = if b.is_full_precision() { 32 } else { bits };
            find(&r.run_id, b, other_bits).map(|o| r.test_loss - o.test_loss)
        })
        .collect()
}

fn claim(claim: &str, statement: &str, setting: String, measurement: &str, c: TTest, want_negative: bool) -> ClaimRow {
    ClaimRow {
        claim: claim.into(),
        statement: statement.into(),
        setting,
        measurement: measurement.into(),
        value: c.mean,
        lo: c.lo,
        hi: c.hi,
        verdict: verdict(c.mean, 0.0, c.p, want_negative),
        family: String::new(),
        p_value: c.p,
        p_adjusted: c.p,
        verdict_adjusted: String::new(),
        seeds: c.n,
        ..ClaimRow::default()
    }
}

/// What the claims need to know of the experiment's design besides its rows.
#[derive(Debug, Clone, Default)]
pub struct Design {
    /// Each residual model with its plain twin, as the experiment names them (the
    /// identity-mapping claim compares them).
    pub identity_pairs: Vec<(String, String)>,
    /// Each model's training and test split sizes (the Nadeau–Bengio correction reads them).
    pub sizes: BTreeMap<String, FoldSizes>,
}

/// The claims table: lower loss than FP (and than FP with temperature scaling, and than the
/// best-of-N null), input noise dominating, identity mappings resisting quantization, each
/// with its verdict under the Nadeau–Bengio-corrected interval beside the plain one.
pub fn claims(rows: &[RunRow], configs: &[ConfigRow], sens: &[SensitivityRow], design: &Design) -> Vec<ClaimRow> {
    let mut out = Vec::new();
    search_claims(rows, &mut out);
    mixed_claims(rows, &mut out);
    layers::input_weight_claims(sens, &mut out);
    layers::identity_claims(rows, configs, &design.identity_pairs, &mut out);
    layers::taylor_rows(configs, &mut out);
    let nulls: Vec<Null> = out.iter().map(|r| null_of(&r.claim)).collect();
    adjust(&mut out, &nulls);
    crate::fragile::correct(&mut out, &nulls, &design.sizes);
    out
}

/// The search whose plan a model's claims judge: exhaustive where it ran, else greedy, else
/// the beam search.
pub(crate) fn search_of(rows: &[RunRow], model: &str) -> Method {
    let ran = |m: Method| rows.iter().any(|r| r.model == model && r.method == m);
    if ran(Method::Exhaustive) {
        Method::Exhaustive
    } else if ran(Method::Greedy) || !ran(Method::Beam) {
        Method::Greedy
    } else {
        Method::Beam
    }
}

/// Per model and width: the search against FP32 (raw and with temperatures), against the
/// best-of-N null and against all-nearest.
fn search_claims(rows: &[RunRow], out: &mut Vec<ClaimRow>) {
    let mut keys: Vec<(String, u32)> = rows.iter().filter(|r| r.bits < 32).map(|r| (r.model.clone(), r.bits)).collect();
    keys.sort();
    keys.dedup();
    for (model, bits) in &keys {
        let search = search_of(rows, model);
        let setting = format!("{model}, {bits}-bit, {search}");
        let lower = "A floor/ceil/nearest layerwise plan has lower loss than full precision, without fine-tuning";
        let d = paired(rows, model, *bits, search, Method::Fp);
        if !d.is_empty() {
            out.push(claim("lower-loss", lower, setting.clone(), "test ΔL = L(plan) − L(FP32)", ci(&d), true));
        }
        let ft = paired(rows, model, *bits, search, Method::FpTemp);
        if !ft.is_empty() {
            let s = "A floor/ceil/nearest layerwise plan has lower loss than full precision with a fitted temperature";
            let m = "test L(plan) − L(FP32+T), T fitted on calibration";
            out.push(claim("lower-loss-than-fp-temperature", s, setting.clone(), m, ci(&ft), true));
        }
        let t = search.with_temperature().map_or_else(Vec::new, |st| paired(rows, model, *bits, st, Method::FpTemp));
        if !t.is_empty() {
            let m = "test L(plan+T) − L(FP32+T), T fitted on calibration";
            out.push(claim("lower-loss-beyond-temperature", lower, setting.clone(), m, ci(&t), true));
        }
        let n = paired(rows, model, *bits, search, Method::RandomBest);
        if !n.is_empty() {
            let s = "The search finds better plans than chance";
            out.push(claim(
                "search-beats-null",
                s,
                setting.clone(),
                "test L(search) − L(best-of-N random)",
                ci(&n),
                true,
            ));
        }
        let nearest = paired(rows, model, *bits, search, Method::Nearest);
        if !nearest.is_empty() {
            let s = "Choosing floor/ceil per layer beats round-to-nearest";
            let m = "test L(search) − L(all-nearest)";
            out.push(claim("search-beats-nearest", s, setting.clone(), m, ci(&nearest), true));
        }
        let ada = paired(rows, model, *bits, search, Method::Adaround);
        if !ada.is_empty() {
            let s = "Choosing floor/ceil per layer beats AdaRound's per-element learned rounding";
            out.push(claim("search-beats-adaround", s, setting, "test L(search) − L(adaround)", ci(&ada), true));
        }
    }
}

/// Per model and budget: the mixed-precision allocations against uniform widths and HAWQ.
fn mixed_claims(rows: &[RunRow], out: &mut Vec<ClaimRow>) {
    let mut mixed: Vec<(String, u32)> =
        rows.iter().filter(|r| r.method == Method::MixedDp).map(|r| (r.model.clone(), r.bits)).collect();
    mixed.sort();
    mixed.dedup();
    for (model, budget) in &mixed {
        let setting = format!("{model}, average ≤ {budget} bits");
        let comparisons = [
            (
                "mixed-beats-uniform",
                "Mixed precision (per-layer bits, nearest rounding) beats a uniform bit width at the same storage",
                Method::MixedDp,
                Method::MixedUniform,
                "test L(knapsack plan) − L(uniform nearest)",
            ),
            (
                "mixed-rounding-beats-uniform",
                "Per-layer bits plus per-layer floor/ceil/nearest beats a uniform bit width at the same storage",
                Method::MixedDpGreedy,
                Method::MixedUniform,
                "test L(knapsack + greedy rounding) − L(uniform nearest)",
            ),
            (
                "mixed-beats-hawq",
                "The measured-table knapsack beats a HAWQ-V2-style allocation at the same budget",
                Method::MixedDp,
                Method::MixedHawq,
                "test L(knapsack plan) − L(HAWQ-V2 plan)",
            ),
        ];
        for (id, statement, a, b, measurement) in comparisons {
            let d = paired(rows, model, *budget, a, b);
            out.push(claim(id, statement, setting.clone(), measurement, ci(&d), true));
        }
        if rows.iter().any(|r| r.method == Method::MixedSearch && r.model == *model && r.bits == *budget) {
            for (id, statement, b, measurement) in SEARCH_COMPARISONS {
                let d = paired(rows, model, *budget, Method::MixedSearch, b);
                out.push(claim(id, statement, setting.clone(), measurement, ci(&d), true));
            }
        }
    }
}

/// The interaction-aware allocation against uniform widths and the additive knapsack.
const SEARCH_COMPARISONS: [(&str, &str, Method, &str); 2] = [
    (
        "mixed-search-beats-uniform",
        "Mixed precision chosen by scoring whole plans (beam search) beats a uniform bit width at the same storage",
        Method::MixedUniform,
        "test L(beam-search plan) − L(uniform nearest)",
    ),
    (
        "mixed-search-beats-knapsack",
        "Scoring whole plans (beam search) beats the knapsack over single-layer loss changes at the same budget",
        Method::MixedDpGreedy,
        "test L(beam-search plan) − L(knapsack + greedy rounding)",
    ),
];

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fragile::is_fragile;

    fn row(seed: u64, method: Method, test_loss: f64) -> RunRow {
        RunRow {
            run_id: format!("m-r{seed}"),
            model: "m".into(),
            seed,
            bits: 3,
            method,
            test_loss,
            ..RunRow::default()
        }
    }

    /// The adjusted verdicts: Holm over the primary claims can turn a raw "reproduced" into
    /// "inconclusive", Benjamini-Hochberg over the exploratory ones is milder, and each row
    /// keeps its own direction.
    #[test]
    fn adjusted_verdicts_use_each_family_s_correction() {
        let t = |mean: f64, p: f64| TTest { mean, lo: mean - 0.1, hi: mean + 0.1, p, n: 5 };
        let primary = PRIMARY[0];
        let mut rows = vec![
            claim(primary, "", "a".into(), "", t(-0.1, 0.03), true),
            claim(primary, "", "b".into(), "", t(-0.1, 0.03), true),
            claim(primary, "", "c".into(), "", t(0.1, 0.001), true),
            claim("exploratory-x", "", "d".into(), "", t(-0.1, 0.02), true),
            claim("exploratory-x", "", "e".into(), "", t(-0.1, 0.03), true),
        ];
        assert!(rows.iter().take(2).all(|r| r.verdict == "reproduced"));
        adjust(&mut rows, &[Null { value: 0.0, below: true }; 5]);
        let got: Vec<(&str, &str)> = rows.iter().map(|r| (r.family.as_str(), r.verdict_adjusted.as_str())).collect();
        assert_eq!(
            got,
            [
                ("primary", "inconclusive"),
                ("primary", "inconclusive"),
                ("primary", "not reproduced"),
                ("exploratory", "reproduced"),
                ("exploratory", "reproduced"),
            ]
        );
        assert!((rows[0].p_adjusted - 0.06).abs() < 1e-12 && (rows[2].p_adjusted - 0.003).abs() < 1e-12);
        assert!((rows[3].p_adjusted - 0.03).abs() < 1e-12);
    }

    #[test]
    fn the_beam_search_is_judged_against_uniform_and_the_knapsack_only_where_it_ran() {
        let mut rows = Vec::new();
        for seed in 0..5 {
            let s = seed as f64 * 0.01;
            rows.push(row(seed, Method::MixedDp, 1.0 + s));
            rows.push(row(seed, Method::MixedDpGreedy, 0.9 + s));
            rows.push(row(seed, Method::MixedHawq, 1.1 + s));
            rows.push(row(seed, Method::MixedUniform, 0.8 + s * 0.5));
        }
        let ids = |rows: &[RunRow]| {
            let mut out = Vec::new();
            mixed_claims(rows, &mut out);
            out
        };
        assert!(ids(&rows).iter().all(|c| !c.claim.starts_with("mixed-search")));
        for seed in 0..5 {
            rows.push(row(seed, Method::MixedSearch, 0.7 + seed as f64 * 0.02));
        }
        let claims = ids(&rows);
        let vs_uniform = claims.iter().find(|c| c.claim == "mixed-search-beats-uniform").unwrap();
        let vs_knapsack = claims.iter().find(|c| c.claim == "mixed-search-beats-knapsack").unwrap();
        assert!((vs_uniform.value - (-0.1 + 0.015 * 2.0)).abs() < 1e-9, "{}", vs_uniform.value);
        assert!((vs_knapsack.value - (-0.2 + 0.01 * 2.0)).abs() < 1e-9, "{}", vs_knapsack.value);
        assert_eq!(vs_knapsack.verdict, "reproduced");
    }

    /// A claim significant under the plain interval but not once the standard error grows
    /// by 1.5 turns inconclusive and is marked fragile; a strong one stays; the corrected
    /// interval is 1.5 times as wide.
    #[test]
    fn a_borderline_verdict_turns_inconclusive_and_a_strong_one_stays() {
        let mut rows = Vec::new();
        for (model, shift) in [("weak", 0.0045), ("strong", 0.05)] {
            for seed in 0..10u64 {
                let noise = if seed % 2 == 0 { 0.005 } else { -0.005 };
                for (method, loss) in [(Method::Fp, 1.0), (Method::Exhaustive, 1.0 - shift + noise)] {
                    let bits = if method == Method::Fp { 32 } else { 8 };
                    rows.push(RunRow {
                        run_id: format!("{model}-flex-r{seed}"),
                        model: model.into(),
                        bits,
                        method,
                        test_loss: loss,
                        ..RunRow::default()
                    });
                }
            }
        }
        let sizes: BTreeMap<String, FoldSizes> =
            ["weak", "strong"].iter().map(|m| (m.to_string(), FoldSizes { train: 8000, test: 1000 })).collect();
        let design = Design { identity_pairs: vec![], sizes };
        let out = claims(&rows, &[], &[], &design);
        let get = |m: &str| out.iter().find(|c| c.claim == "lower-loss" && c.setting.starts_with(m)).unwrap();
        let (weak, strong) = (get("weak"), get("strong"));
        assert_eq!(weak.verdict_adjusted, "reproduced", "{weak:?}");
        assert_eq!(weak.verdict_nb, "inconclusive", "{weak:?}");
        assert!(is_fragile(weak));
        assert_eq!(strong.verdict_nb, "reproduced");
        assert!(!is_fragile(strong));
        let widen = (weak.hi_nb - weak.lo_nb) / (weak.hi - weak.lo);
        assert!((widen - 1.5).abs() < 1e-9, "{widen}");
    }

    /// The identity claims pair each residual run with its plain twin's run of the same
    /// repeat (an unpaired repeat is dropped), compare the searched plan and all-nearest, and
    /// keep the all-config mean, which one catastrophic config swings, as exploratory.
    #[test]
    fn identity_claims_pair_twins_by_repeat() {
        let (mut rows, mut configs) = (Vec::new(), Vec::new());
        for (model, shift) in [("resmlp-8x2", -0.01), ("plainmlp-8x2", 0.0)] {
            for r in 0..6u64 {
                if model.starts_with("plain") && r == 5 {
                    continue;
                }
                let run_id = format!("{model}-flex-r{r}");
                let jitter = r as f64 * 0.001;
                for (method, d) in [(Method::Exhaustive, 0.02 + shift + jitter), (Method::Nearest, 0.05 + jitter)] {
                    let row =
                        RunRow { run_id: run_id.clone(), model: model.into(), bits: 6, method, ..RunRow::default() };
                    rows.push(RunRow { delta_test_loss: d, ..row });
                }
                let floor = if model.starts_with("res") && r == 0 { 50.0 } else { 1.0 };
                for d in [0.02, floor] {
                    let c = ConfigRow { run_id: run_id.clone(), model: model.into(), bits: 6, ..ConfigRow::default() };
                    configs.push(ConfigRow { delta_test: d, ..c });
                }
            }
        }
        let design = Design { identity_pairs: vec![("resmlp-8x2".into(), "plainmlp-8x2".into())], ..Design::default() };
        let out = claims(&rows, &configs, &[], &design);
        let get = |id: &str| out.iter().find(|c| c.claim == id).unwrap();
        let (searched, nearest, all) =
            (get("identity-mappings"), get("identity-mappings-nearest"), get("identity-mappings-all-configs"));
        assert_eq!((searched.seeds, nearest.seeds, all.seeds), (5, 5, 5));
        assert!((searched.value + 0.01).abs() < 1e-12 && searched.hi < 0.0, "{searched:?}");
        assert_eq!(searched.verdict, "reproduced");
        assert!(searched.measurement.contains("exhaustive"), "{}", searched.measurement);
        assert!(nearest.value.abs() < 1e-12 && nearest.verdict == "inconclusive", "{nearest:?}");
        assert_eq!(
            (searched.family.as_str(), nearest.family.as_str(), all.family.as_str()),
            ("primary", "primary", "exploratory")
        );
        assert!((all.value - 49.0 / 2.0 / 5.0).abs() < 1e-9 && all.verdict == "inconclusive", "{all:?}");
    }
}
