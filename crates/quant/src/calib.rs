//! Static calibration: the range of every layer's input, observed on the calibration split.

use crate::eval::EvalSet;
use crate::host::own_values;
use mpq_host::HostNet;
use mpq_models::Net;
use serde::{Deserialize, Serialize};

/// How a layer input's range is estimated.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
#[serde(rename_all = "kebab-case", tag = "method", deny_unknown_fields)]
pub enum Calibration {
    /// Observed minimum and maximum.
    #[default]
    MinMax,
    /// The `q` and `1 - q` quantiles (e.g. q = 0.9999), clipping rare outliers.
    Percentile {
        /// Upper quantile, in (0.5, 1].
        q: f64,
    },
}

fn quantile(sorted: &[f32], q: f64) -> f32 {
    let i = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Full-precision inputs of every layer for a batch of flattened images, on the host.
pub fn stage_inputs(host: &HostNet, x: &[f32]) -> Vec<Vec<f32>> {
    let mut out = vec![x.to_vec()];
    for k in 0..host.n_layers().saturating_sub(1) {
        let next = host.stage(k, &out[k], None);
        out.push(next);
    }
    out
}

/// `(lo, hi)` of each layer's own input over the calibration set (order-free: min/max, or
/// quantiles of the sorted values; a carried input is left out, its layer does not quantize it).
pub fn input_ranges(net: &Net, set: &EvalSet, method: Calibration) -> Vec<(f32, f32)> {
    let host = net.to_host();
    stage_inputs(&host, &set.x)
        .into_iter()
        .zip(&host.kinds)
        .map(|(v, kind)| own_values(kind, &v).into_owned())
        .map(|mut v| match method {
            _ if v.is_empty() => (f32::INFINITY, f32::NEG_INFINITY),
            Calibration::MinMax => {
                v.iter().fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &x| (lo.min(x), hi.max(x)))
            }
            Calibration::Percentile { q } => {
                v.sort_by(f32::total_cmp);
                (quantile(&v, 1.0 - q), quantile(&v, q))
            }
        })
        .collect()
}
