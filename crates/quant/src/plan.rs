//! Layer plans: per quantizable layer, a bit width and rounding for its weight and input.

use crate::QuantError;
use mpq_net::{BitWidth, Rounding};
use serde::{Deserialize, Serialize};

/// Which tensors of a layer are quantized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case")]
pub enum Target {
    /// Weight and input share bits and rounding (the paper's setting).
    #[default]
    Both,
    /// Only the weight (analysis).
    WeightOnly,
    /// Only the input (analysis).
    InputOnly,
}

/// The choice for one layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Choice {
    /// Bit width: 2..=8 or 16; 32 leaves the layer in full precision.
    pub bits: BitWidth,
    /// Rounding mode.
    pub rounding: Rounding,
    /// What is quantized.
    #[serde(default)]
    pub target: Target,
}

/// One choice per quantizable layer, in forward order.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Plan {
    /// Per-layer choices.
    pub layers: Vec<Choice>,
}

impl Plan {
    /// Every layer at `bits` with `rounding` on weight and input.
    pub fn uniform(n: usize, bits: BitWidth, rounding: Rounding) -> Plan {
        Plan { layers: vec![Choice { bits, rounding, target: Target::Both }; n] }
    }

    /// A plan from per-layer roundings at one bit width.
    pub fn from_roundings(bits: BitWidth, r: &[Rounding]) -> Plan {
        Plan { layers: r.iter().map(|&rounding| Choice { bits, rounding, target: Target::Both }).collect() }
    }

    /// Full precision everywhere.
    pub fn full_precision(n: usize) -> Plan {
        Plan::uniform(n, BitWidth::FULL, Rounding::Nearest)
    }

    /// Compact code, e.g. `8N-8F-8C` (bits and rounding letter per layer; `w`/`i` suffix
    /// marks weight-only / input-only; `fp` a full-precision layer).
    pub fn code(&self) -> String {
        self.layers
            .iter()
            .map(|c| {
                if c.bits == 32 {
                    return "fp".to_string();
                }
                let t = match c.target {
                    Target::Both => "",
                    Target::WeightOnly => "w",
                    Target::InputOnly => "i",
                };
                format!("{}{}{t}", c.bits, c.rounding.letter())
            })
            .collect::<Vec<_>>()
            .join("-")
    }

    /// Parses a compact code such as `8N-8F-fp` (the inverse of [`Plan::code`]).
    pub fn from_code(code: &str) -> Result<Plan, QuantError> {
        let bad = |part: &str| QuantError::Serde(format!("plan code `{code}`: cannot read `{part}`"));
        let mut layers = Vec::new();
        for part in code.split('-') {
            if part == "fp" {
                layers.push(Choice { bits: BitWidth::FULL, rounding: Rounding::Nearest, target: Target::Both });
                continue;
            }
            let digits: String = part.chars().take_while(|c| c.is_ascii_digit()).collect();
            let rest: Vec<char> = part[digits.len()..].chars().collect();
            let bits = BitWidth::new(digits.parse().map_err(|_| bad(part))?)?;
            let rounding = rest.first().and_then(|&c| Rounding::from_letter(c)).ok_or_else(|| bad(part))?;
            let target = match rest.get(1) {
                None => Target::Both,
                Some('w') => Target::WeightOnly,
                Some('i') => Target::InputOnly,
                _ => return Err(bad(part)),
            };
            if rest.len() > 2 {
                return Err(bad(part));
            }
            layers.push(Choice { bits, rounding, target });
        }
        Ok(Plan { layers })
    }

    /// Average bits per weight, weighted by each layer's weight count.
    pub fn average_bits(&self, weight_counts: &[usize]) -> f64 {
        let total: usize = weight_counts.iter().sum();
        self.layers.iter().zip(weight_counts).map(|(c, &n)| f64::from(c.bits.get()) * n as f64).sum::<f64>()
            / total.max(1) as f64
    }

    /// Model bytes: each layer's weights at its bit width (plus one f32 scale per quantized layer).
    pub fn model_bytes(&self, weight_counts: &[usize]) -> f64 {
        self.layers
            .iter()
            .zip(weight_counts)
            .map(|(c, &n)| n as f64 * f64::from(c.bits.get()) / 8.0 + if c.bits < 32 { 4.0 } else { 0.0 })
            .sum()
    }

    /// JSON text of the plan.
    pub fn to_json(&self) -> Result<String, QuantError> {
        serde_json::to_string(self).map_err(|e| QuantError::Serde(e.to_string()))
    }

    /// Parses a plan from JSON and checks every bit width.
    pub fn from_json(s: &str) -> Result<Plan, QuantError> {
        // Every width is checked as it is read (`BitWidth`'s `TryFrom<u32>`).
        serde_json::from_str(s).map_err(|e| QuantError::Serde(e.to_string()))
    }

    /// TOML text of the plan.
    pub fn to_toml(&self) -> Result<String, QuantError> {
        toml::to_string(self).map_err(|e| QuantError::Serde(e.to_string()))
    }

    /// Parses a plan from TOML and checks every bit width.
    pub fn from_toml(s: &str) -> Result<Plan, QuantError> {
        toml::from_str(s).map_err(|e| QuantError::Serde(e.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(bits: u32) -> BitWidth {
        BitWidth::new(bits).unwrap()
    }

    #[test]
    fn serialization_round_trips_and_rejects_bad_bits() {
        let mut p = Plan::from_roundings(w(4), &[Rounding::Nearest, Rounding::Floor, Rounding::Ceil]);
        p.layers[1].target = Target::InputOnly;
        p.layers[2] = Choice { bits: BitWidth::FULL, rounding: Rounding::Nearest, target: Target::Both };
        assert_eq!(p.code(), "4N-4Fi-fp");
        assert_eq!(Plan::from_code(&p.code()).unwrap(), p);
        assert!(Plan::from_code("4X-8N").is_err() && Plan::from_code("9N").is_err() && Plan::from_code("4Nq").is_err());
        assert_eq!(Plan::from_json(&p.to_json().unwrap()).unwrap(), p);
        assert_eq!(Plan::from_toml(&p.to_toml().unwrap()).unwrap(), p);
        let bad = p.to_json().unwrap().replace("\"bits\":4", "\"bits\":9");
        assert!(Plan::from_json(&bad).unwrap_err().to_string().contains("bit width 9"));
        assert!(Plan::from_json("{\"layers\":[],\"x\":1}").is_err());
    }

    #[test]
    fn sizes() {
        let p = Plan::uniform(2, w(8), Rounding::Nearest);
        assert_eq!(p.average_bits(&[100, 300]), 8.0);
        assert_eq!(p.model_bytes(&[100, 300]), 408.0);
        assert_eq!(Plan::full_precision(1).model_bytes(&[10]), 40.0);
    }
}
