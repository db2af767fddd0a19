//! Static calibration: the range of every layer's input, observed on the calibration split.

use burn::prelude::*;
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

/// Full-precision inputs of every layer for one batch.
pub fn stage_inputs(net: &Net, x: Tensor<2>) -> Vec<Tensor<4>> {
    let mut h = net.input(x);
    let mut out = Vec::with_capacity(net.n_layers());
    for k in 0..net.n_layers() {
        out.push(h.clone());
        h = net.stage(k, h, None);
    }
    out
}

/// `(lo, hi)` of each layer's input over the calibration batches.
pub fn input_ranges(net: &Net, batches: &[Tensor<2>], method: Calibration) -> Vec<(f32, f32)> {
    let mut values: Vec<Vec<f32>> = vec![Vec::new(); net.n_layers()];
    let mut ranges = vec![(f32::INFINITY, f32::NEG_INFINITY); net.n_layers()];
    for x in batches {
        for (k, h) in stage_inputs(net, x.clone()).into_iter().enumerate() {
            match method {
                Calibration::MinMax => {
                    let lo = h.clone().min().into_scalar::<f32>();
                    let hi = h.max().into_scalar::<f32>();
                    ranges[k] = (ranges[k].0.min(lo), ranges[k].1.max(hi));
                }
                Calibration::Percentile { .. } => {
                    values[k].extend(h.into_data().try_to_vec::<f32>().unwrap_or_default())
                }
            }
        }
    }
    if let Calibration::Percentile { q } = method {
        for (k, v) in values.iter_mut().enumerate() {
            v.sort_by(f32::total_cmp);
            if !v.is_empty() {
                ranges[k] = (quantile(v, 1.0 - q), quantile(v, q));
            }
        }
    }
    ranges
}
