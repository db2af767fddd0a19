//! The verdict rule shared by the plain and the corrected intervals: the claims' families,
//! the significance level, each claim's null and direction, the family-wise corrections.

use crate::ClaimRow;
use crate::stats::{benjamini_hochberg, holm};

/// The paper's own claims: judged together, with Holm's family-wise correction.
pub const PRIMARY: [&str; 8] = [
    "lower-loss",
    "lower-loss-than-fp-temperature",
    "lower-loss-beyond-temperature",
    "input-vs-weight",
    "identity-mappings",
    "identity-mappings-nearest",
    "mixed-beats-uniform",
    "mixed-rounding-beats-uniform",
];

/// Significance level of every verdict.
pub(crate) const ALPHA: f64 = 0.05;

/// The verdict of a test whose claim is that the mean lies below (`want_below`) or above
/// `null`: a direction only when `p` is significant.
pub(crate) fn verdict(mean: f64, null: f64, p: f64, want_below: bool) -> String {
    if p.is_nan() || p >= ALPHA {
        "inconclusive".into()
    } else if (mean < null) == want_below {
        "reproduced".into()
    } else {
        "not reproduced".into()
    }
}

/// Each row's p-value in `p` after its family's correction: Holm across the primary claims,
/// Benjamini-Hochberg across the exploratory ones.
pub(crate) fn family_adjusted(rows: &[ClaimRow], p: &[f64]) -> Vec<f64> {
    let mut out = vec![f64::NAN; rows.len()];
    for primary in [true, false] {
        let idx: Vec<usize> =
            (0..rows.len()).filter(|&i| PRIMARY.contains(&rows[i].claim.as_str()) == primary).collect();
        let ps: Vec<f64> = idx.iter().map(|&i| p[i]).collect();
        let adj = if primary { holm(&ps) } else { benjamini_hochberg(&ps) };
        for (&i, a) in idx.iter().zip(adj) {
            out[i] = a;
        }
    }
    out
}

/// What a claim's mean is tested against, and in which direction the claim lies.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Null {
    /// The value of no effect.
    pub value: f64,
    /// Whether the claim says the mean lies below it.
    pub below: bool,
}

/// The null of each claim id.
pub(crate) fn null_of(claim: &str) -> Null {
    match claim {
        "taylor-sign" => Null { value: 0.5, below: false },
        "input-vs-weight" | "taylor-rank" => Null { value: 0.0, below: false },
        _ => Null { value: 0.0, below: true },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every branch of the verdict rule: the claimed direction, the other one, not
    /// significant, NaN, and p on either side of the 5% line.
    #[test]
    fn verdicts_follow_direction_and_significance() {
        assert_eq!(verdict(-0.1, 0.0, 0.01, true), "reproduced");
        assert_eq!(verdict(0.1, 0.0, 0.01, false), "reproduced");
        assert_eq!(verdict(0.1, 0.0, 0.01, true), "not reproduced");
        assert_eq!(verdict(-0.1, 0.0, 0.01, false), "not reproduced");
        assert_eq!(verdict(-0.1, 0.0, 0.2, true), "inconclusive");
        assert_eq!(verdict(-0.1, 0.0, f64::NAN, true), "inconclusive");
        assert_eq!(verdict(-0.1, 0.0, ALPHA, true), "inconclusive", "p = alpha is not significant");
        assert_eq!(verdict(-0.1, 0.0, ALPHA - 1e-12, true), "reproduced");
        assert_eq!(verdict(0.4, 0.5, 0.001, true), "reproduced", "judged against the null, not zero");
    }
}
