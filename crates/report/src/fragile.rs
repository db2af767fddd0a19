//! Verdicts that depend on the repeats being independent. Cross-fitted folds (and random
//! splits of one pool) share most of their training data, so per-repeat values are
//! positively correlated and the plain Student-t interval is too narrow. Nadeau and Bengio
//! (2003, "Inference for the Generalization Error", Machine Learning 52:239–281) correct the
//! variance of the mean of n resampled estimates from σ²/n to (1/n + n_test/n_train)·σ²,
//! that is, the standard error grows by √(1 + n·n_test/n_train). Each claim gets that
//! interval, its p-value after the family's correction, and the verdict it gives; a primary
//! verdict that changes under it is marked fragile in the report.

use crate::ClaimRow;
use crate::stats::se_of_interval;
use crate::verdict::{ALPHA, Null, family_adjusted, verdict};
use statrs::distribution::{ContinuousCDF, StudentsT};
use std::collections::BTreeMap;

/// A model's training and test split sizes: the ratio the correction needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FoldSizes {
    /// Training examples per repeat.
    pub train: usize,
    /// Test examples per repeat.
    pub test: usize,
}

/// The standard-error inflation for `n` repeats of a model trained on `train` and tested on
/// `test` examples: √(1 + n·test/train).
pub fn se_factor(n: usize, sizes: FoldSizes) -> f64 {
    (1.0 + n as f64 * sizes.test as f64 / sizes.train.max(1) as f64).sqrt()
}

/// The model a claim's setting names first ("mlp, 8-bit, exhaustive", "res vs plain, 6-bit").
pub fn model_of(setting: &str) -> &str {
    let first = setting.split(", ").next().unwrap_or(setting);
    first.split(" vs ").next().unwrap_or(first)
}

/// The interval and two-sided p-value of `row` with its standard error multiplied by
/// `factor`, tested against `null`.
fn inflated(row: &ClaimRow, null: f64, factor: f64) -> (f64, f64, f64) {
    let se = se_of_interval(row.lo, row.hi, row.seeds, 1.0 - ALPHA) * factor;
    let Ok(t) = StudentsT::new(0.0, 1.0, row.seeds.saturating_sub(1) as f64) else {
        return (row.lo, row.hi, row.p_value);
    };
    if !(se.is_finite() && se > 0.0) {
        return (row.lo, row.hi, row.p_value);
    }
    let q = t.inverse_cdf(1.0 - ALPHA / 2.0);
    let p = 2.0 * (1.0 - t.cdf(((row.value - null) / se).abs()));
    (row.value - q * se, row.value + q * se, p)
}

/// Fills the Nadeau–Bengio columns of every row (families and nulls as `adjust` set them).
pub(crate) fn correct(rows: &mut [ClaimRow], nulls: &[Null], sizes: &BTreeMap<String, FoldSizes>) {
    let mut p = Vec::with_capacity(rows.len());
    for (r, n) in rows.iter_mut().zip(nulls) {
        r.se_factor = sizes.get(model_of(&r.setting)).map_or(1.0, |&s| se_factor(r.seeds, s));
        let (lo, hi, pv) = inflated(r, n.value, r.se_factor);
        (r.lo_nb, r.hi_nb) = (lo, hi);
        p.push(pv);
    }
    let adj = family_adjusted(rows, &p);
    for ((r, a), n) in rows.iter_mut().zip(adj).zip(nulls) {
        r.p_adjusted_nb = a;
        r.verdict_nb = verdict(r.value, n.value, a, n.below);
    }
}

/// Whether a row's adjusted verdict changes once the standard error is corrected.
pub fn is_fragile(row: &ClaimRow) -> bool {
    !row.verdict_nb.is_empty() && row.verdict_nb != row.verdict_adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The factor of the main experiment's designs: 10 repeats of 1000 test digits against
    /// 8000 training digits give 1.5, as the paper on the correction computes it.
    #[test]
    fn the_factor_follows_the_formula() {
        assert!((se_factor(10, FoldSizes { train: 8000, test: 1000 }) - 1.5).abs() < 1e-12);
        assert!((se_factor(1, FoldSizes { train: 1, test: 0 }) - 1.0).abs() < 1e-12);
        assert_eq!(model_of("res vs plain, 6-bit"), "res");
        assert_eq!(model_of("mlp, average ≤ 3 bits"), "mlp");
    }
}
