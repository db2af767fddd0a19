//! Claims read from per-layer and per-config rows: input against weight noise (the
//! sensitivity table), identity mappings (residual against plain twin) and how well the
//! first-order Taylor prediction tracks the measured loss change.

use super::{ALPHA, ci, claim, mean, verdict};
use crate::stats::{spearman, t_test};
use crate::{ClaimRow, ConfigRow, SensitivityRow};
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

/// Each residual model against its plain twin of the same depth and width: the mean test ΔL
/// over all rounding configs, paired by repeat.
pub(super) fn identity_claims(configs: &[ConfigRow], pairs: &[(String, String)], out: &mut Vec<ClaimRow>) {
    for (res, plain) in pairs {
        let mut bits: Vec<u32> = configs.iter().filter(|c| &c.model == res).map(|c| c.bits).collect();
        bits.sort();
        bits.dedup();
        for b in bits {
            let by_repeat = |model: &str| -> BTreeMap<String, f64> {
                let mut m: BTreeMap<String, Vec<f64>> = BTreeMap::new();
                for c in configs.iter().filter(|c| c.model == model && c.bits == b) {
                    let repeat = c.run_id.rsplit('-').next().unwrap_or("").to_string();
                    let backend = c.run_id.rsplit('-').nth(1).unwrap_or("").to_string();
                    m.entry(format!("{backend}-{repeat}")).or_default().push(c.delta_test);
                }
                m.into_iter().map(|(k, v)| (k, mean(&v))).collect()
            };
            let (r, p) = (by_repeat(res), by_repeat(plain));
            let d: Vec<f64> = r.iter().filter_map(|(k, v)| p.get(k).map(|w| v - w)).collect();
            if !d.is_empty() {
                let s = "Networks with identity mappings (residual) resist quantization";
                let m = "mean test ΔL over all configs: residual − plain";
                out.push(claim("identity-mappings", s, format!("{res} vs {plain}, {b}-bit"), m, ci(&d), true));
            }
        }
    }
}
