//! Quantized evaluation of a network under a plan, stage by stage.

use crate::scalar::QParams;
use crate::tensor::{Granularity, fake_quant, max_abs, quant_weight, quant_weight_per_channel};
use crate::{Choice, Plan, QuantError, Rounding, Target};
use burn::prelude::*;
use mpq_models::{Metrics, Net, Weight, metrics};
use std::collections::HashMap;
use std::sync::Mutex;

/// A split ready for repeated evaluation: input batches on the device and host labels.
pub struct EvalSet {
    /// Input batches `[b, 784]`.
    pub batches: Vec<Tensor<2>>,
    /// Labels of all examples, in batch order.
    pub labels: Vec<i64>,
}

impl EvalSet {
    /// Uploads the given examples.
    pub fn new(data: &mpq_data::Images, idx: &[usize], device: &Device) -> EvalSet {
        EvalSet { batches: metrics::batches(data, idx, device), labels: data.gather_labels(idx) }
    }
}

/// Applies plans to one trained network with fixed calibration ranges; caches quantized
/// weights so a search quantizes each (layer, bits, rounding) once.
pub struct Evaluator<'a> {
    /// The full-precision network.
    pub net: &'a Net,
    /// Calibrated input range per layer.
    pub ranges: Vec<(f32, f32)>,
    max_abs: Vec<f32>,
    granularity: Granularity,
    seed: u64,
    cache: Mutex<HashMap<(usize, u32, Rounding), Weight>>,
}

impl<'a> Evaluator<'a> {
    /// Prepares evaluation with per-tensor weight scales; `seed` drives stochastic rounding.
    pub fn new(net: &'a Net, ranges: Vec<(f32, f32)>, seed: u64) -> Self {
        Self::with_granularity(net, ranges, Granularity::PerTensor, seed)
    }

    /// Prepares evaluation with the given weight-scale granularity.
    pub fn with_granularity(net: &'a Net, ranges: Vec<(f32, f32)>, granularity: Granularity, seed: u64) -> Self {
        let max_abs = (0..net.n_layers()).map(|k| max_abs(&net.weight(k))).collect();
        Evaluator { net, ranges, max_abs, granularity, seed, cache: Mutex::new(HashMap::new()) }
    }

    /// Number of quantizable layers.
    pub fn n_layers(&self) -> usize {
        self.net.n_layers()
    }

    /// The (possibly quantized) weight layer `k` uses under `c`; `None` keeps full precision.
    pub fn weight(&self, k: usize, c: Choice) -> Option<Weight> {
        if c.bits >= 32 || c.target == Target::InputOnly {
            return None;
        }
        let key = (k, c.bits, c.rounding);
        let mut cache = self.cache.lock().ok()?;
        let w = cache.entry(key).or_insert_with(|| {
            let seed = self.seed ^ ((k as u64) << 32) ^ c.bits as u64;
            let w = self.net.weight(k);
            match self.granularity {
                Granularity::PerTensor => quant_weight(&w, self.max_abs[k], c.bits, c.rounding, seed),
                Granularity::PerChannel => quant_weight_per_channel(&w, c.bits, c.rounding, seed),
            }
        });
        Some(w.clone())
    }

    /// Layer `k`'s input after quantization under `c`.
    pub fn input(&self, k: usize, h: Tensor<4>, c: Choice) -> Tensor<4> {
        if c.bits >= 32 || c.target == Target::WeightOnly {
            return h;
        }
        let (lo, hi) = self.ranges[k];
        let seed = self.seed ^ 0xA5A5 ^ ((k as u64) << 40) ^ c.bits as u64;
        fake_quant(h, QParams::for_range(lo, hi, c.bits), c.rounding, seed)
    }

    /// One quantized stage.
    pub fn step(&self, k: usize, h: Tensor<4>, c: Choice) -> Tensor<4> {
        let w = self.weight(k, c);
        self.net.stage(k, self.input(k, h, c), w.as_ref())
    }

    /// Logits of the whole set under `plan`, row-major.
    pub fn logits(&self, plan: &Plan, set: &EvalSet) -> Result<Vec<f32>, QuantError> {
        if plan.layers.len() != self.n_layers() {
            return Err(QuantError::PlanLength { expected: self.n_layers(), got: plan.layers.len() });
        }
        let mut out = Vec::new();
        for x in &set.batches {
            let mut h = self.net.input(x.clone());
            for (k, &c) in plan.layers.iter().enumerate() {
                h = self.step(k, h, c);
            }
            out.extend(self.net.logits(h).into_data().try_to_vec::<f32>().unwrap_or_default());
        }
        Ok(out)
    }

    /// Loss and accuracy of `plan` on `set`; a non-finite loss is an error.
    pub fn score(&self, plan: &Plan, set: &EvalSet) -> Result<Metrics, QuantError> {
        let m = metrics::score(&self.logits(plan, set)?, &set.labels, 1.0);
        if !m.loss.is_finite() {
            return Err(QuantError::NonFinite { plan: plan.code(), loss: m.loss });
        }
        Ok(m)
    }
}
