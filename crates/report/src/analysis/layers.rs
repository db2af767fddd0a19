//! Claims read from per-layer and per-config rows: input against weight noise (the
//! sensitivity table), identity mappings (residual against plain twin) and how well the
//! first-order Taylor prediction tracks the measured loss change.

use super::{ALPHA, ci, claim, mean, search_of, verdict};
use crate::stats::{spearman, t_test};
use crate::{ClaimRow, ConfigRow, Method, RunRow, SensitivityRow};
use std::collections::BTreeMap;

/// Per model and width: whether quantizing layer inputs moves the loss more than weights.
pub(super) fn input_weight_claims(sens: &[SensitivityRow], out: &mut Vec<ClaimRow>) {
    let mut mk: Vec<(String, u32)> = sens.iter().map(|s| (s.model.clone(), s.bits)).collect();
    mk.sort();
    mk.dedup();
    for (model, bits) in mk {
        let mut per_seed: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for s in sens.iter().filter(|s| s.model == model && s.bits == bits) {
            per_seed.entry(s.run_id.clone()).or_default().push(s.delta_input.abs() - s.delta_weight.abs());
        }
        let v: Vec<f64> = per_seed.values().map(|x| mean(x)).collect();
        let s = "Layer-input noise dominates the loss change (more than weight noise)";
        let m = "mean over layers of |ΔL input-only| − |ΔL weight-only| (test, nearest)";
        out.push(claim("input-vs-weight", s, format!("{model}, {bits}-bit"), m, ci(&v), false));
    }
}

/// How well the first-order Taylor prediction tracks measured calibration ΔL over all
/// exhaustive configs: Spearman ρ and sign agreement, per model and bit width, over seeds.
pub(super) fn taylor_rows(configs: &[ConfigRow], out: &mut Vec<ClaimRow>) {
    let mut groups: BTreeMap<(String, u32), BTreeMap<String, Vec<&ConfigRow>>> = BTreeMap::new();
    for c in configs {
        groups.entry((c.model.clone(), c.bits)).or_default().entry(c.run_id.clone()).or_default().push(c);
    }
    for ((model, bits), runs) in groups {
        let (mut rho, mut sign) = (Vec::new(), Vec::new());
        for cs in runs.values() {
            let pred: Vec<f64> = cs.iter().map(|c| c.taylor_pred).collect();
            let meas: Vec<f64> = cs.iter().map(|c| c.delta_calib).collect();
            let r = spearman(&pred, &meas);
            if r.is_finite() {
                rho.push(r);
            }
            let agree = pred.iter().zip(&meas).filter(|(p, m)| (**p < 0.0) == (**m < 0.0)).count();
            sign.push(agree as f64 / pred.len().max(1) as f64);
        }
        let setting = format!("{model}, {bits}-bit, all configs");
        let s = "A first-order Taylor expansion predicts the loss change of a rounding config";
        let c = ci(&rho);
        out.push(claim("taylor-rank", s, setting.clone(), "Spearman ρ(predicted, measured calibration ΔL)", c, false));
        let c = t_test(&sign, 0.5, 1.0 - ALPHA);
        let mut row =
            claim("taylor-sign", s, setting, "fraction of configs where the signs agree (chance ≈ 0.5)", c, false);
        row.verdict = verdict(c.mean, 0.5, c.p, false);
        out.push(row);
    }
}

/// A run's repeat key without its model: "{backend}-r{repeat}", what pairs a residual
/// run with its plain twin's (the twins share each repeat's seeds).
fn repeat_key(run_id: &str, model: &str) -> String {
    match run_id.strip_prefix(model) {
        Some(rest) => rest.trim_start_matches('-').to_string(),
        // A label with the granularity appended (`resnet8-8-channel`) is not a prefix of its
        // run id (`resnet8-8-flex-r0`): the backend and repeat are the id's last two parts.
        None => run_id.rsplitn(3, '-').take(2).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("-"),
    }
}

/// Residual minus plain of one method's test ΔL at one width, paired by repeat.
fn twin_differences(rows: &[RunRow], res: &str, plain: &str, bits: u32, method: Method) -> Vec<f64> {
    let of = |model: &str| -> BTreeMap<String, f64> {
        rows.iter()
            .filter(|r| r.model == model && r.bits == bits && r.method == method)
            .map(|r| (repeat_key(&r.run_id, model), r.delta_test_loss))
            .collect()
    };
    residual_minus_plain(&of(res), &of(plain))
}

/// Residual minus plain of per-repeat values, for the repeats both twins have.
fn residual_minus_plain(res: &BTreeMap<String, f64>, plain: &BTreeMap<String, f64>) -> Vec<f64> {
    res.iter().filter_map(|(k, v)| plain.get(k).map(|w| v - w)).collect()
}

/// Each residual model against its plain twin of the same depth and width, per width, paired
/// by repeat: the test ΔL of the searched plan (exhaustive where it ran, else greedy) and of
/// all-nearest (the two primary rows), and the mean test ΔL over every rounding config
/// (exploratory: the catastrophic all-floor and all-ceil configs dominate it).
pub(super) fn identity_claims(
    rows: &[RunRow],
    configs: &[ConfigRow],
    pairs: &[(String, String)],
    out: &mut Vec<ClaimRow>,
) {
    let twins = "the twins share each repeat's split, calibration digits and initial weights";
    let searched = format!(
        "Networks with identity mappings (residual) resist quantization: the searched plan changes the residual network's loss less than its plain twin's (paired by repeat; {twins})"
    );
    let nearest = format!(
        "Networks with identity mappings (residual) resist quantization: all-nearest rounding changes the residual network's loss less than its plain twin's (paired by repeat; {twins})"
    );
    let all = "Networks with identity mappings (residual) resist quantization, averaged over every rounding config (exploratory: the catastrophic all-floor and all-ceil configs dominate this mean)";
    for (res, plain) in pairs {
        let mut bits: Vec<u32> = rows.iter().filter(|r| &r.model == res && r.bits < 32).map(|r| r.bits).collect();
        bits.sort();
        bits.dedup();
        let search = search_of(rows, res);
        for b in bits {
            let setting = format!("{res} vs {plain}, {b}-bit");
            let d = twin_differences(rows, res, plain, b, search);
            if !d.is_empty() {
                let m = format!("test ΔL of the searched plan ({}), residual − plain, paired by repeat", search.name());
                out.push(claim("identity-mappings", &searched, setting.clone(), &m, ci(&d), true));
            }
            let d = twin_differences(rows, res, plain, b, Method::Nearest);
            if !d.is_empty() {
                let m = "test ΔL of all-nearest, residual − plain, paired by repeat";
                out.push(claim("identity-mappings-nearest", &nearest, setting.clone(), m, ci(&d), true));
            }
            let d = all_config_differences(configs, res, plain, b);
            if !d.is_empty() {
                let m = "mean test ΔL over all configs: residual − plain";
                out.push(claim("identity-mappings-all-configs", all, setting, m, ci(&d), true));
            }
        }
    }
}

/// Residual minus plain of the mean test ΔL over every rounding config at one width, paired
/// by repeat.
fn all_config_differences(configs: &[ConfigRow], res: &str, plain: &str, bits: u32) -> Vec<f64> {
    let by_repeat = |model: &str| -> BTreeMap<String, f64> {
        let mut m: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for c in configs.iter().filter(|c| c.model == model && c.bits == bits) {
            m.entry(repeat_key(&c.run_id, model)).or_default().push(c.delta_test);
        }
        m.into_iter().map(|(k, v)| (k, mean(&v))).collect()
    };
    residual_minus_plain(&by_repeat(res), &by_repeat(plain))
}
