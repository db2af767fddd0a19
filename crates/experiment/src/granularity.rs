//! `[quant] granularity`: one weight granularity, or a list of them that every run
//! quantizes under in turn (one trained model, one calibration of its inputs, the plans and
//! baselines once per granularity).

use mpq_quant::tensor::Granularity;
use serde::{Deserialize, Serialize};

/// One granularity (`"per-tensor"`), or several (`["per-tensor", "per-channel"]`) whose rows
/// carry the granularity in their model label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged, try_from = "Raw")]
pub enum Granularities {
    /// Every plan of the run at this granularity; rows are labelled by the model's name.
    One(Granularity),
    /// Every plan of the run at each of these, in this order; rows are labelled
    /// `<model>-tensor` or `<model>-channel`.
    Many(Vec<Granularity>),
}

/// What the file holds, before the names are checked (so that a wrong name gets an error
/// that names it, not serde's "did not match any variant").
#[derive(Deserialize)]
#[serde(untagged)]
enum Raw {
    One(String),
    Many(Vec<String>),
}

impl TryFrom<Raw> for Granularities {
    type Error = String;
    fn try_from(raw: Raw) -> Result<Granularities, String> {
        match raw {
            Raw::One(s) => parse(&s).map(Granularities::One),
            Raw::Many(v) => v.iter().map(|s| parse(s)).collect::<Result<_, _>>().map(Granularities::Many),
        }
    }
}

/// A granularity by its long or short name.
pub fn parse(s: &str) -> Result<Granularity, String> {
    match s {
        "per-tensor" | "tensor" => Ok(Granularity::PerTensor),
        "per-channel" | "channel" => Ok(Granularity::PerChannel),
        _ => Err(format!("unknown granularity `{s}`, expected \"per-tensor\" or \"per-channel\" (or a list of them)")),
    }
}

impl Default for Granularities {
    fn default() -> Granularities {
        Granularities::One(Granularity::PerTensor)
    }
}

impl Granularities {
    /// The granularities in the order the runs quantize under them.
    pub fn list(&self) -> Vec<Granularity> {
        match self {
            Granularities::One(g) => vec![*g],
            Granularities::Many(v) => v.clone(),
        }
    }

    /// The label of `model`'s rows at granularity `g`: the model's name alone for a single
    /// granularity (so results of experiments with one keep their labels), else with
    /// `-tensor` or `-channel` appended.
    pub fn label(&self, model: &str, g: Granularity) -> String {
        match self {
            Granularities::One(_) => model.to_string(),
            Granularities::Many(_) => format!("{model}-{}", short(g)),
        }
    }

    /// Why the list cannot be used (empty, or a granularity twice), if it cannot.
    pub fn problem(&self) -> Option<String> {
        let v = self.list();
        if v.is_empty() {
            return Some("needs at least one of \"per-tensor\" and \"per-channel\"".into());
        }
        let twice = v.iter().enumerate().find(|(i, g)| v[..*i].contains(g));
        twice.map(|(_, g)| format!("lists \"{}\" twice", long(*g)))
    }
}

/// `tensor` or `channel`: the suffix of a row label.
pub fn short(g: Granularity) -> &'static str {
    match g {
        Granularity::PerTensor => "tensor",
        Granularity::PerChannel => "channel",
    }
}

/// `per-tensor` or `per-channel`: the name in experiment files and reports.
pub fn long(g: Granularity) -> &'static str {
    match g {
        Granularity::PerTensor => "per-tensor",
        Granularity::PerChannel => "per-channel",
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[derive(Deserialize, Serialize)]
    struct Q {
        g: Granularities,
    }

    #[test]
    fn one_serializes_as_before_and_many_labels_rows() {
        let one: Q = toml::from_str("g = \"channel\"").unwrap();
        assert_eq!(one.g, Granularities::One(Granularity::PerChannel));
        assert_eq!(toml::to_string(&one).unwrap().trim(), "g = \"per-channel\"");
        assert_eq!(one.g.label("resnet8-8", Granularity::PerChannel), "resnet8-8");
        let many: Q = toml::from_str("g = [\"tensor\", \"per-channel\"]").unwrap();
        assert_eq!(many.g.list(), vec![Granularity::PerTensor, Granularity::PerChannel]);
        assert_eq!(many.g.label("resnet8-8", Granularity::PerChannel), "resnet8-8-channel");
        assert_eq!(many.g.label("resnet8-8", Granularity::PerTensor), "resnet8-8-tensor");
        assert_eq!(many.g.problem(), None);
        let twice: Q = toml::from_str("g = [\"tensor\", \"tensor\"]").unwrap();
        assert!(twice.g.problem().unwrap().contains("twice"));
        let empty: Q = toml::from_str("g = []").unwrap();
        assert!(empty.g.problem().is_some());
        let bad = toml::from_str::<Q>("g = \"row\"").err().unwrap().to_string();
        assert!(bad.contains("unknown granularity `row`"), "{bad}");
    }
}
