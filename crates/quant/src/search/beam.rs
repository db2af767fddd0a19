//! Mixed precision that scores real plans instead of adding single-layer loss changes: a
//! beam search over (bit width, rounding) per layer under an average-bits budget. Each
//! partial plan (layers 0..=k chosen) is scored as a whole plan, completed by the widest
//! single width that still fits the budget at nearest rounding, so that layer interactions
//! count; the best `beam` partial plans go on to the next layer, whose activations are
//! computed once per kept prefix. A branch is cut when the remaining layers cannot fit the
//! budget even at the narrowest width. Every uniform plan within the budget is scored too,
//! so the result is never worse on the search set than the best uniform plan.

use super::{Evaluated, Found};
use crate::eval::{EvalSet, Evaluator, score_logits};
use crate::{BitWidth, Choice, Plan, QuantError, Rounding, Target};

/// The options of one layer: each width in `widths`, with every searched rounding below 32
/// bits and nearest (unused) at 32.
fn options(widths: &[BitWidth]) -> Vec<Choice> {
    let mut out = Vec::new();
    for &bits in widths {
        let rs: &[Rounding] = if bits >= 32 { &[Rounding::Nearest] } else { &Rounding::SEARCHED };
        out.extend(rs.iter().map(|&rounding| Choice { bits, rounding, target: Target::Both }));
    }
    out
}

/// A kept prefix: its choices, the activations after it and the weight bits it spends.
struct Prefix {
    choices: Vec<Choice>,
    h: Vec<f32>,
    cost: u64,
}

/// The search's bookkeeping: the best whole plan seen and how many plans were scored.
struct Tracker {
    best: Option<Evaluated>,
    evaluations: usize,
}

impl Tracker {
    /// Scores the logits of `plan`; a non-finite loss counts as infinitely bad.
    fn score(&mut self, logits: &[f32], set: &EvalSet, plan: Plan) -> Result<f64, QuantError> {
        self.evaluations += 1;
        let calib = match score_logits(logits, &set.labels, &plan) {
            Ok(m) => m,
            Err(QuantError::NonFinite { .. }) => return Ok(f64::INFINITY),
            Err(e) => return Err(e),
        };
        let loss = calib.loss;
        if self.best.as_ref().is_none_or(|b| loss < b.calib.loss) {
            self.best = Some(Evaluated { plan, calib });
        }
        Ok(loss)
    }
}

/// Beam search for the plan with the lowest loss on `set` whose average bits per weight
/// (layer k weighing `weight_counts[k]`) is at most `avg_bits`, over the widths in `widths`
/// (32 = a layer left in full precision). `None` when no plan fits the budget.
pub fn beam_search(
    ev: &Evaluator,
    set: &EvalSet,
    widths: &[BitWidth],
    weight_counts: &[usize],
    avg_bits: f64,
    beam: usize,
) -> Result<Option<Found>, QuantError> {
    let n = ev.n_layers();
    let total: u64 = weight_counts.iter().map(|&c| c as u64).sum();
    let budget = (avg_bits * total as f64 + 1e-6).floor() as u64;
    let Some(narrowest) = widths.iter().copied().min() else { return Ok(None) };
    // rest[k]: weights of layers k.. (what the remaining layers need at least).
    let mut rest = vec![0u64; n + 1];
    for k in (0..n).rev() {
        rest[k] = rest[k + 1] + weight_counts[k] as u64;
    }
    let fits = |cost: u64, bits: BitWidth, from: usize| cost + u64::from(bits.get()) * rest[from] <= budget;
    let opts = options(widths);
    let mut t = Tracker { best: None, evaluations: 0 };
    for &c in opts.iter().filter(|c| fits(0, c.bits, 0)) {
        let plan = Plan { layers: vec![c; n] };
        t.score(&ev.logits(&plan, set)?, set, plan)?;
    }
    let mut kept = vec![Prefix { choices: vec![], h: set.x.clone(), cost: 0 }];
    for (k, &count) in weight_counts.iter().enumerate().take(n) {
        // (loss of the completed plan, prefix index, option, cost after layer k).
        let mut cands: Vec<(f64, usize, Choice, u64)> = Vec::new();
        for (pi, p) in kept.iter().enumerate() {
            for &c in &opts {
                let cost = p.cost + u64::from(c.bits.get()) * count as u64;
                if !fits(cost, narrowest, k + 1) {
                    continue;
                }
                let fill = widths.iter().copied().filter(|&b| fits(cost, b, k + 1)).max().unwrap_or(narrowest);
                let fill = Choice { bits: fill, rounding: Rounding::Nearest, target: Target::Both };
                let mut h = ev.step(k, &p.h, c);
                for j in k + 1..n {
                    h = ev.step(j, &h, fill);
                }
                let mut layers = p.choices.clone();
                layers.push(c);
                layers.resize(n, fill);
                cands.push((t.score(&h, set, Plan { layers })?, pi, c, cost));
            }
        }
        cands.sort_by(|a, b| a.0.total_cmp(&b.0));
        cands.truncate(beam.max(1));
        if k + 1 == n {
            break;
        }
        kept = cands
            .into_iter()
            .map(|(_, pi, c, cost)| {
                let mut choices = kept[pi].choices.clone();
                choices.push(c);
                Prefix { h: ev.step(k, &kept[pi].h, c), choices, cost }
            })
            .collect();
    }
    Ok(t.best.map(|best| Found { best, evaluations: t.evaluations }))
}

/// Average bits per weight of `plan` (layer k weighing `weight_counts[k]`).
pub fn average_bits(plan: &Plan, weight_counts: &[usize]) -> f64 {
    let total: usize = weight_counts.iter().sum();
    let bits: f64 = plan.layers.iter().zip(weight_counts).map(|(c, &w)| f64::from(c.bits.get()) * w as f64).sum();
    bits / total.max(1) as f64
}
