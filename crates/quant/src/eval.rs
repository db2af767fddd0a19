//! Quantized evaluation of a network under a plan, stage by stage, on the host: simulated
//! ([`mpq_host::HostNet`], f32 sums in a fixed order) or on the integer engine
//! ([`mpq_lowbit::engine`], exact integer sums). Either way every number it gives is the
//! same on every CPU.

use crate::host::{fake_input, quant_weight};
use crate::tensor::Granularity;
use crate::{BitWidth, Choice, Plan, QuantError, Rounding, Target};
use mpq_host::HostNet;
use mpq_lowbit::engine::{Engine, Roundings};
use mpq_lowbit::format::QModel;
use mpq_lowbit::gemm::Kernel;
use mpq_models::{Metrics, Net, metrics};
use mpq_net::grid::QParams;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// How plans are scored: what a search's numbers mean.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Evaluation {
    /// Quantize-dequantize in f32, products summed in f32 in a fixed order (the paper's
    /// simulated quantization).
    #[default]
    Simulated,
    /// Layers quantizing weight and input together at 8 bits or fewer, with nearest, floor
    /// or ceil, run on the integer engine: u8 input codes times i8 weight codes summed
    /// exactly, then rescaled, as the exported model computes them; the same sums on every
    /// kernel, and several times faster. Other layers (full precision, 16 bits, one side
    /// only, stochastic rounding) stay simulated.
    Integer,
}

/// A split ready for repeated evaluation: flattened images and labels on the host.
pub struct EvalSet {
    /// Images, 784 values per example.
    pub x: Vec<f32>,
    /// Labels, in the same order.
    pub labels: Vec<i64>,
}

impl EvalSet {
    /// The given examples of `data`.
    pub fn new(data: &mpq_data::Images, idx: &[usize]) -> EvalSet {
        EvalSet { x: data.gather_f32(idx), labels: data.gather_labels(idx) }
    }

    /// Number of examples.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the set has no examples.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
}

/// Applies plans to one trained network with fixed calibration ranges; caches quantized
/// weights so a search quantizes each (layer, bits, rounding) once.
pub struct Evaluator<'a> {
    /// The full-precision network (burn), for what still runs on a backend.
    pub net: &'a Net,
    /// Its parameters on the host, where evaluation runs.
    pub host: HostNet,
    /// Calibrated input range per layer.
    pub ranges: Vec<(f32, f32)>,
    granularity: Granularity,
    seed: u64,
    cache: Mutex<WeightCache>,
    evaluation: Evaluation,
    kernel: Kernel,
    engines: Mutex<EngineCache>,
    shared: Mutex<SharedCache>,
}

/// One-layer integer engines by (layer, bits, rounding); `None` where the engine refuses
/// the layer (it then runs simulated).
type EngineCache = HashMap<(usize, BitWidth, Rounding), Option<Arc<Engine>>>;

/// A linear layer's integer engines under the three searched roundings at once, by (layer,
/// bits); `None` where they cannot share products.
type SharedCache = HashMap<(usize, BitWidth), Option<Arc<Roundings>>>;

/// Quantized weights by (layer, bits, rounding).
type WeightCache = HashMap<(usize, BitWidth, Rounding), Arc<Vec<f32>>>;

impl<'a> Evaluator<'a> {
    /// Prepares evaluation with per-tensor weight scales; `seed` drives stochastic rounding.
    pub fn new(net: &'a Net, ranges: Vec<(f32, f32)>, seed: u64) -> Self {
        Self::with_granularity(net, ranges, Granularity::PerTensor, seed)
    }

    /// Prepares evaluation with the given weight-scale granularity.
    pub fn with_granularity(net: &'a Net, ranges: Vec<(f32, f32)>, granularity: Granularity, seed: u64) -> Self {
        let host = net.to_host();
        let (cache, engines, shared) = (Mutex::new(HashMap::new()), Mutex::new(HashMap::new()), Mutex::default());
        let (evaluation, kernel) = (Evaluation::Simulated, Kernel::detect());
        Evaluator { net, host, ranges, granularity, seed, cache, evaluation, kernel, engines, shared }
    }

    /// The same evaluator scoring plans as `evaluation` says.
    pub fn evaluated_by(self, evaluation: Evaluation) -> Self {
        Evaluator { evaluation, ..self }
    }

    /// The same evaluator running integer layers on `kernel` (the fastest this CPU has unless
    /// set; benchmarks compare them). A kernel the CPU lacks leaves every layer simulated.
    pub fn on_kernel(self, kernel: Kernel) -> Self {
        Evaluator { kernel, engines: Mutex::default(), shared: Mutex::default(), ..self }
    }

    /// The integer engine of layer `k` under `c`, when [`Evaluation::Integer`] applies to it.
    fn engine(&self, k: usize, c: Choice) -> Option<Arc<Engine>> {
        let integer = self.evaluation == Evaluation::Integer
            && c.bits <= 8
            && c.target == Target::Both
            && c.rounding != Rounding::Stochastic;
        if !integer {
            return None;
        }
        let make = || {
            let l = crate::export::pack_layer(self.net, k, c, self.ranges[k], self.granularity).ok()?;
            let m = QModel { model: String::new(), plan: String::new(), layers: vec![l] };
            Engine::with_kernel(&m, self.kernel).ok().map(Arc::new)
        };
        let Ok(mut cache) = self.engines.lock() else { return make() };
        cache.entry((k, c.bits, c.rounding)).or_insert_with(make).clone()
    }

    /// Number of quantizable layers.
    pub fn n_layers(&self) -> usize {
        self.host.n_layers()
    }

    /// The (possibly quantized) weight layer `k` uses under `c`; `None` keeps full precision.
    pub fn weight(&self, k: usize, c: Choice) -> Option<Arc<Vec<f32>>> {
        if c.bits >= 32 || c.target == Target::InputOnly {
            return None;
        }
        let make = || {
            let seed = self.seed ^ ((k as u64) << 32) ^ u64::from(c.bits.get());
            let w = &self.host.weights[k];
            Arc::new(quant_weight(&self.host.kinds[k], w, c.bits, c.rounding, self.granularity, seed))
        };
        let Ok(mut cache) = self.cache.lock() else { return Some(make()) };
        Some(cache.entry((k, c.bits, c.rounding)).or_insert_with(make).clone())
    }

    /// Layer `k`'s input after quantization under `c` (`None`: unchanged).
    pub fn input(&self, k: usize, h: &[f32], c: Choice) -> Option<Vec<f32>> {
        if c.bits >= 32 || c.target == Target::WeightOnly {
            return None;
        }
        let (lo, hi) = self.ranges[k];
        let seed = self.seed ^ 0xA5A5 ^ ((k as u64) << 40) ^ u64::from(c.bits.get());
        Some(fake_input(&self.host.kinds[k], h, QParams::for_range(lo, hi, c.bits.get()), c.rounding, seed))
    }

    /// One quantized stage.
    pub fn step(&self, k: usize, h: &[f32], c: Choice) -> Vec<f32> {
        if let Some(e) = self.engine(k, c) {
            return e.forward(h, h.len() / self.host.kinds[k].input_width().max(1));
        }
        let w = self.weight(k, c);
        let q = self.input(k, h, c);
        self.host.stage(k, q.as_deref().unwrap_or(h), w.as_deref().map(Vec::as_slice))
    }

    /// Layer `k` at `bits` under each of [`Rounding::SEARCHED`], in that order, as [`Self::step`]
    /// gives them. On the integer engine a linear layer whose input codes are the same under
    /// the three roundings shares its products between them ([`Roundings`]): the same
    /// numbers, for about two products' cost instead of three.
    pub fn steps(&self, k: usize, h: &[f32], bits: BitWidth) -> Vec<Vec<f32>> {
        let choice = |rounding| Choice { bits, rounding, target: Target::Both };
        if let Some(r) = self.shared(k, bits) {
            return r.forward(h, h.len() / self.host.kinds[k].input_width().max(1)).into();
        }
        Rounding::SEARCHED.iter().map(|&r| self.step(k, h, choice(r))).collect()
    }

    /// [`Self::steps`] where layer `k` at `bits` shares its products between the three
    /// roundings on `h` (the integer engine, and `h`'s codes the same under the three);
    /// otherwise `None`, so that a search needing only some of the three runs those alone.
    pub fn shared_steps(&self, k: usize, h: &[f32], bits: BitWidth) -> Option<Vec<Vec<f32>>> {
        let r = self.shared(k, bits).filter(|r| r.shares(h))?;
        Some(r.forward(h, h.len() / self.host.kinds[k].input_width().max(1)).into())
    }

    /// [`Roundings`] of layer `k` at `bits`, where the integer evaluation applies and the
    /// layer allows it.
    fn shared(&self, k: usize, bits: BitWidth) -> Option<Arc<Roundings>> {
        if self.evaluation != Evaluation::Integer || bits > 8 {
            return None;
        }
        let make = || {
            let layer = |rounding| {
                let c = Choice { bits, rounding, target: Target::Both };
                crate::export::pack_layer(self.net, k, c, self.ranges[k], self.granularity).ok()
            };
            let [n, f, c] = Rounding::SEARCHED.map(layer);
            Roundings::new([&n?, &f?, &c?], self.kernel).ok().map(Arc::new)
        };
        let Ok(mut cache) = self.shared.lock() else { return make() };
        cache.entry((k, bits)).or_insert_with(make).clone()
    }

    /// Logits of the whole set under `plan`, row-major.
    pub fn logits(&self, plan: &Plan, set: &EvalSet) -> Result<Vec<f32>, QuantError> {
        if plan.layers.len() != self.n_layers() {
            return Err(QuantError::PlanLength { expected: self.n_layers(), got: plan.layers.len() });
        }
        Ok(plan.layers.iter().enumerate().fold(set.x.clone(), |h, (k, &c)| self.step(k, &h, c)))
    }

    /// Logits of the whole set with each layer's input quantized under `plan` and its weight
    /// replaced by `weights` (e.g. AdaRound's learned rounding).
    pub fn logits_with(&self, plan: &Plan, weights: &[Vec<f32>], set: &EvalSet) -> Result<Vec<f32>, QuantError> {
        if plan.layers.len() != self.n_layers() || weights.len() != self.n_layers() {
            let got = plan.layers.len().min(weights.len());
            return Err(QuantError::PlanLength { expected: self.n_layers(), got });
        }
        Ok(plan.layers.iter().enumerate().fold(set.x.clone(), |h, (k, &c)| {
            let q = self.input(k, &h, c);
            self.host.stage(k, q.as_deref().unwrap_or(&h), Some(&weights[k]))
        }))
    }

    /// Loss and accuracy of `plan` on `set`; a non-finite loss is an error.
    pub fn score(&self, plan: &Plan, set: &EvalSet) -> Result<Metrics, QuantError> {
        score_logits(&self.logits(plan, set)?, &set.labels, plan)
    }
}

/// Loss and accuracy of `logits`; a non-finite loss is an error naming `plan`.
pub fn score_logits(logits: &[f32], labels: &[i64], plan: &Plan) -> Result<Metrics, QuantError> {
    let m = metrics::score(logits, labels, 1.0);
    if !m.loss.is_finite() {
        return Err(QuantError::NonFinite { plan: plan.code(), loss: m.loss });
    }
    Ok(m)
}
