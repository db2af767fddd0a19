//! The closed set of methods a row of `runs.csv` or `summary.csv` can report.

use serde::{Deserialize, Serialize};

/// A plan or baseline: how a row's model was quantized (or not). Written to CSV by its
/// kebab-case name; ordered by that name, so tables sort as they always have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Method {
    /// Full precision.
    #[default]
    Fp,
    /// Full precision with a temperature fitted on calibration data.
    FpTemp,
    /// Every layer rounded to nearest.
    Nearest,
    /// Every layer rounded down.
    Floor,
    /// Every layer rounded up.
    Ceil,
    /// The best of N random floor/ceil/nearest plans on calibration (the null).
    RandomBest,
    /// The exhaustive search's best plan.
    Exhaustive,
    /// The exhaustive search's plan with its own fitted temperature.
    ExhaustiveTemp,
    /// Coordinate descent from all-nearest.
    Greedy,
    /// The greedy plan with its own fitted temperature.
    GreedyTemp,
    /// The plan a first-order Taylor table predicts best.
    Taylor,
    /// Mixed precision: knapsack over measured per-layer loss changes, nearest rounding.
    MixedDp,
    /// The knapsack's widths with per-layer rounding chosen greedily.
    MixedDpGreedy,
    /// Mixed precision by a HAWQ-V2-style Hessian-trace allocation.
    MixedHawq,
    /// The widest uniform width within the budget, nearest rounding.
    MixedUniform,
    /// Beam search over per-layer (bits, rounding) scoring whole plans (layer interactions
    /// included) on the calibration split.
    MixedSearch,
    /// AdaRound: per-element floor/ceil learned layer by layer on the calibration split
    /// (inputs rounded to nearest).
    Adaround,
    /// Beam search over per-layer rounding at one width, scoring whole plans: what scales
    /// where 3^L plans do not.
    Beam,
    /// The beam search's plan with its own fitted temperature.
    BeamTemp,
}

impl Method {
    /// Every method, in declaration order.
    pub const ALL: [Method; 19] = [
        Method::Fp,
        Method::FpTemp,
        Method::Nearest,
        Method::Floor,
        Method::Ceil,
        Method::RandomBest,
        Method::Exhaustive,
        Method::ExhaustiveTemp,
        Method::Greedy,
        Method::GreedyTemp,
        Method::Taylor,
        Method::MixedDp,
        Method::MixedDpGreedy,
        Method::MixedHawq,
        Method::MixedUniform,
        Method::MixedSearch,
        Method::Adaround,
        Method::Beam,
        Method::BeamTemp,
    ];

    /// The name used in CSV files, figures and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Method::Fp => "fp",
            Method::FpTemp => "fp-temp",
            Method::Nearest => "nearest",
            Method::Floor => "floor",
            Method::Ceil => "ceil",
            Method::RandomBest => "random-best",
            Method::Exhaustive => "exhaustive",
            Method::ExhaustiveTemp => "exhaustive-temp",
            Method::Greedy => "greedy",
            Method::GreedyTemp => "greedy-temp",
            Method::Taylor => "taylor",
            Method::MixedDp => "mixed-dp",
            Method::MixedDpGreedy => "mixed-dp-greedy",
            Method::MixedHawq => "mixed-hawq",
            Method::MixedUniform => "mixed-uniform",
            Method::MixedSearch => "mixed-search",
            Method::Adaround => "adaround",
            Method::Beam => "beam",
            Method::BeamTemp => "beam-temp",
        }
    }

    /// The same plan with its own fitted temperature, for methods that have that row.
    pub fn with_temperature(self) -> Option<Method> {
        match self {
            Method::Fp => Some(Method::FpTemp),
            Method::Exhaustive => Some(Method::ExhaustiveTemp),
            Method::Greedy => Some(Method::GreedyTemp),
            Method::Beam => Some(Method::BeamTemp),
            _ => None,
        }
    }

    /// Full-precision rows (reported at 32 bits).
    pub fn is_full_precision(self) -> bool {
        matches!(self, Method::Fp | Method::FpTemp)
    }

    /// Mixed-precision allocations (their `bits` is a budget).
    pub fn is_mixed(self) -> bool {
        matches!(
            self,
            Method::MixedDp | Method::MixedDpGreedy | Method::MixedHawq | Method::MixedUniform | Method::MixedSearch
        )
    }
}

impl std::fmt::Display for Method {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Method {
    type Err = String;

    fn from_str(s: &str) -> Result<Method, String> {
        Method::ALL.into_iter().find(|m| m.name() == s).ok_or_else(|| {
            let names: Vec<&str> = Method::ALL.iter().map(|m| m.name()).collect();
            format!("unknown method `{s}`; one of {}", names.join(", "))
        })
    }
}

impl PartialOrd for Method {
    fn partial_cmp(&self, other: &Method) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Method {
    fn cmp(&self, other: &Method) -> std::cmp::Ordering {
        self.name().cmp(other.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_serde_and_from_str() {
        for m in Method::ALL {
            let de = serde::de::value::StrDeserializer::<serde::de::value::Error>::new(m.name());
            let via_serde = Method::deserialize(de).unwrap_or(Method::Fp);
            assert_eq!(via_serde, m, "{m}");
            assert_eq!(m.name().parse::<Method>(), Ok(m));
        }
        assert!("mixed".parse::<Method>().unwrap_err().contains("mixed-dp"));
    }
}
