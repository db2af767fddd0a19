//! Greedy coordinate descent over per-layer rounding, evaluated or looked up in an
//! exhaustive table.

use super::{Exhaustive, Found, lookup};
use crate::eval::{EvalSet, Evaluator, score_logits};
use crate::{BitWidth, Choice, Plan, QuantError, Rounding, Target};
use mpq_models::Metrics;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Greedy coordinate descent from all-nearest: each pass tries every rounding of every
/// layer with the others fixed and keeps improvements; stops after a pass with no change.
pub fn greedy(ev: &Evaluator, bits: BitWidth, set: &EvalSet, max_passes: usize) -> Result<Found, QuantError> {
    greedy_from(ev, Plan::uniform(ev.n_layers(), bits, Rounding::Nearest), set, max_passes)
}

/// Greedy coordinate descent over the rounding of each quantized layer of `start`, its bit
/// widths fixed (used to refine a mixed-precision allocation). The activations of the
/// current plan are kept per layer, so a trial at layer k reruns only layers k.., and a
/// layer's outputs under each rounding tried are kept while its input stays the same, so a
/// later pass's trial there (always so at the first layer) reruns only the layers after it.
pub fn greedy_from(ev: &Evaluator, start: Plan, set: &EvalSet, max_passes: usize) -> Result<Found, QuantError> {
    let n = start.layers.len();
    if n != ev.n_layers() {
        return Err(QuantError::PlanLength { expected: ev.n_layers(), got: n });
    }
    let mut cur = start;
    let acts = Activations::new(ev, &cur, &set.x);
    let mut best = score_logits(&acts.h[n], &set.labels, &cur)?;
    let acts = RefCell::new(acts);
    let mut evaluations = 1;
    let mut score = |trial: &Plan, k: usize| {
        let tail = acts.borrow_mut().run(trial, k);
        let m = score_logits(&tail[tail.len() - 1], &set.labels, trial)?;
        Ok((m, Some((trial.clone(), k, tail))))
    };
    let mut accept = |(plan, k, tail)| acts.borrow_mut().accept(&plan, k, tail);
    greedy_passes(max_passes, n, &mut cur, &mut best, &mut evaluations, &mut score, &mut accept)
}

/// Layer outputs kept by a greedy search: the current plan's, and each layer's under every
/// choice tried on its current input.
struct Activations<'e, 'a> {
    ev: &'e Evaluator<'a>,
    /// `h[k]`: the input of layer k under the current plan; `h[n]`: its logits.
    h: Vec<Rc<Vec<f32>>>,
    /// Outputs of layer k on `h[k]` by (k, choice).
    seen: HashMap<(usize, Choice), Rc<Vec<f32>>>,
}

impl<'e, 'a> Activations<'e, 'a> {
    /// The activations of `plan` on `x`.
    fn new(ev: &'e Evaluator<'a>, plan: &Plan, x: &[f32]) -> Self {
        let mut acts = Activations { ev, h: vec![Rc::new(x.to_vec())], seen: HashMap::new() };
        let tail = acts.run(plan, 0);
        acts.accept(plan, 0, tail);
        acts
    }

    /// Outputs of layers k.. under `plan`, which agrees with the current plan before layer k.
    fn run(&mut self, plan: &Plan, k: usize) -> Vec<Rc<Vec<f32>>> {
        let (ev, input, c) = (self.ev, &self.h[k], plan.layers[k]);
        // A layer that shares its products between the three roundings gives all three for
        // about the cost of two: the other trial's output comes almost free.
        if !self.seen.contains_key(&(k, c)) && c.target == Target::Both && Rounding::SEARCHED.contains(&c.rounding) {
            for (r, out) in Rounding::SEARCHED.into_iter().zip(ev.shared_steps(k, input, c.bits).into_iter().flatten())
            {
                self.seen.entry((k, Choice { rounding: r, ..c })).or_insert_with(|| Rc::new(out));
            }
        }
        let first = self.seen.entry((k, c)).or_insert_with(|| Rc::new(ev.step(k, input, c)));
        let mut out = vec![first.clone()];
        for j in k + 1..plan.layers.len() {
            let next = ev.step(j, &out[out.len() - 1], plan.layers[j]);
            out.push(Rc::new(next));
        }
        out
    }

    /// Makes `plan` current, given its outputs `tail` of layers k.. from [`Self::run`]. The
    /// inputs of layers after k change, and with them what was kept for those layers.
    fn accept(&mut self, plan: &Plan, k: usize, tail: Vec<Rc<Vec<f32>>>) {
        self.seen.retain(|&(j, _), _| j <= k);
        for (j, t) in (k..).zip(&tail) {
            self.seen.insert((j, plan.layers[j]), t.clone());
        }
        self.h.truncate(k + 1);
        self.h.extend(tail);
    }
}

/// Greedy coordinate descent at `bits` from all-nearest, scored by lookup in an exhaustive
/// table of the same set: the same plans and numbers as [`greedy`], no evaluation.
pub fn greedy_in(table: &Exhaustive, bits: BitWidth, max_passes: usize) -> Result<Found, QuantError> {
    let n = table.configs.first().map_or(0, |c| c.plan.layers.len());
    let mut cur = Plan::uniform(n, bits, Rounding::Nearest);
    let mut best = lookup(table, &cur)?;
    let mut evaluations = 1;
    greedy_passes(
        max_passes,
        n,
        &mut cur,
        &mut best,
        &mut evaluations,
        &mut |trial, _| Ok((lookup(table, trial)?, None)),
        &mut |()| (),
    )
}

/// Scores a trial plan that differs from the current one at a layer; returns what adopting
/// it needs.
type Scorer<'a, T> = dyn FnMut(&Plan, usize) -> Result<(Metrics, Option<T>), QuantError> + 'a;

/// The passes shared by both greedy searches: `score(trial, k)` scores a plan that differs
/// from the current one at layer k and returns what `accept` needs to adopt it.
fn greedy_passes<T>(
    max_passes: usize,
    n: usize,
    cur: &mut Plan,
    best: &mut Metrics,
    evaluations: &mut usize,
    score: &mut Scorer<'_, T>,
    accept: &mut dyn FnMut(T),
) -> Result<Found, QuantError> {
    for _ in 0..max_passes.max(1) {
        let mut changed = false;
        for k in 0..n {
            if cur.layers[k].bits >= 32 {
                continue;
            }
            for r in Rounding::SEARCHED {
                if r == cur.layers[k].rounding {
                    continue;
                }
                let mut trial = cur.clone();
                trial.layers[k].rounding = r;
                let (m, keep) = score(&trial, k)?;
                *evaluations += 1;
                if m.loss < best.loss - 1e-12 {
                    *best = m;
                    *cur = trial;
                    changed = true;
                    if let Some(t) = keep {
                        accept(t);
                    }
                }
            }
        }
        if !changed {
            break;
        }
    }
    Ok(Found { best: super::Evaluated { plan: cur.clone(), calib: *best }, evaluations: *evaluations })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::calib::{Calibration, input_ranges};
    use crate::eval::Evaluation;
    use burn::prelude::Device;
    use mpq_models::ModelConfig;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    /// Through any sequence of trials and adoptions, what is kept gives each trial the
    /// logits its plan gives evaluated from the input: simulated, and on the integer engine
    /// (at 8 bits the first layer's input, pixels, is on the grid, so it shares products).
    #[test]
    fn kept_outputs_are_those_of_the_plan_tried() {
        let net = ModelConfig::Mlp { hidden: vec![12, 10, 8] }.init(&Device::flex(), 3);
        let x = (0..40 * 784).map(|i| (i * 37 % 256) as f32 / 255.0).collect();
        let set = EvalSet { x, labels: vec![0; 40] };
        let ranges = input_ranges(&net, &set, Calibration::MinMax);
        for (evaluation, bits) in [(Evaluation::Simulated, 4), (Evaluation::Integer, 4), (Evaluation::Integer, 8)] {
            let ev = Evaluator::new(&net, ranges.clone(), 0).evaluated_by(evaluation);
            let bits = BitWidth::new(bits).unwrap();
            assert_eq!(ev.shared_steps(0, &set.x, bits).is_some(), evaluation == Evaluation::Integer && bits == 8);
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let mut cur = Plan::uniform(4, bits, Rounding::Nearest);
            let mut acts = Activations::new(&ev, &cur, &set.x);
            for _ in 0..300 {
                let k = rng.random_range(0..4);
                let mut trial = cur.clone();
                trial.layers[k].rounding = Rounding::SEARCHED[rng.random_range(0..3)];
                let tail = acts.run(&trial, k);
                assert_eq!(*tail[tail.len() - 1], ev.logits(&trial, &set).unwrap(), "{}", trial.code());
                if rng.random_bool(0.3) {
                    acts.accept(&trial, k, tail);
                    cur = trial;
                }
            }
        }
    }
}
