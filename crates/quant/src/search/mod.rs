//! Search strategies over per-layer rounding at one bit width. Every strategy scores plans
//! on the calibration set it is given, and only on that.

pub mod beam;
mod greedy;
pub mod hawq;
pub mod mixed;
pub mod taylor;

use crate::eval::{EvalSet, Evaluator, score_logits};
use crate::{BitWidth, Plan, QuantError, Rounding};
pub use greedy::{greedy, greedy_from, greedy_in};
use mpq_models::Metrics;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A plan with its calibration score.
#[derive(Debug, Clone)]
pub struct Evaluated {
    /// The plan.
    pub plan: Plan,
    /// Calibration loss and accuracy.
    pub calib: Metrics,
}

/// The outcome of a search: the chosen plan and what it cost.
#[derive(Debug, Clone)]
pub struct Found {
    /// The plan with the lowest calibration loss the strategy saw.
    pub best: Evaluated,
    /// Full-plan evaluations performed.
    pub evaluations: usize,
}

/// Largest exhaustive search allowed (3^L configs).
pub const EXHAUSTIVE_LIMIT: usize = 3usize.pow(9);

/// Every configuration of an exhaustive search, in lexicographic order (layer 0 slowest).
#[derive(Debug, Clone)]
pub struct Exhaustive {
    /// All 3^L plans with calibration scores.
    pub configs: Vec<Evaluated>,
    /// Layer stages computed (the cost prefix reuse saves).
    pub stage_evals: usize,
}

impl Exhaustive {
    /// The config with the lowest calibration loss.
    pub fn best(&self) -> Found {
        let best = self.configs.iter().min_by(|a, b| a.calib.loss.total_cmp(&b.calib.loss)).cloned();
        Found {
            best: best.unwrap_or_else(|| Evaluated {
                plan: Plan { layers: vec![] },
                calib: Metrics { loss: f64::NAN, acc: 0.0 },
            }),
            evaluations: self.configs.len(),
        }
    }
}

fn decode(mut i: usize, n: usize) -> Vec<Rounding> {
    let mut r = vec![Rounding::Nearest; n];
    for k in (0..n).rev() {
        r[k] = Rounding::SEARCHED[i % 3];
        i /= 3;
    }
    r
}

struct Dfs<'a, 'b> {
    ev: &'a Evaluator<'b>,
    set: &'a EvalSet,
    bits: BitWidth,
    prefix: Vec<Rounding>,
    out: Vec<Evaluated>,
    stage_evals: usize,
    progress: &'a mut dyn FnMut(usize, usize),
    total: usize,
}

impl Dfs<'_, '_> {
    fn visit(&mut self, k: usize, h: &[f32]) -> Result<(), QuantError> {
        for (r, next) in Rounding::SEARCHED.into_iter().zip(self.ev.steps(k, h, self.bits)) {
            self.stage_evals += 1;
            self.prefix.push(r);
            if k + 1 == self.ev.n_layers() {
                let plan = Plan::from_roundings(self.bits, &self.prefix);
                let calib = score_logits(&next, &self.set.labels, &plan)?;
                self.out.push(Evaluated { plan, calib });
                (self.progress)(self.out.len(), self.total);
            } else {
                self.visit(k + 1, &next)?;
            }
            self.prefix.pop();
        }
        Ok(())
    }
}

/// Scores all 3^L rounding configs at `bits`. With `reuse`, configs sharing their first k
/// layers share the activations after layer k (depth-first enumeration); without it every
/// config is run from the input (the naive baseline the speed-up is measured against).
pub fn exhaustive(
    ev: &Evaluator,
    bits: BitWidth,
    set: &EvalSet,
    reuse: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Exhaustive, QuantError> {
    let n = ev.n_layers();
    let total = 3u128.pow(n as u32);
    if total > EXHAUSTIVE_LIMIT as u128 {
        return Err(QuantError::TooMany { layers: n, configs: total, limit: EXHAUSTIVE_LIMIT });
    }
    let total = total as usize;
    if reuse {
        let mut d =
            Dfs { ev, set, bits, prefix: vec![], out: Vec::with_capacity(total), stage_evals: 0, progress, total };
        d.visit(0, &set.x)?;
        return Ok(Exhaustive { configs: d.out, stage_evals: d.stage_evals });
    }
    let mut configs = Vec::with_capacity(total);
    for i in 0..total {
        let plan = Plan::from_roundings(bits, &decode(i, n));
        let calib = ev.score(&plan, set)?;
        configs.push(Evaluated { plan, calib });
        progress(i + 1, total);
    }
    Ok(Exhaustive { configs, stage_evals: total * n })
}

impl Exhaustive {
    /// The score this table holds for `plan` (an error if the plan is not one of its configs).
    pub fn score(&self, plan: &Plan) -> Result<Metrics, QuantError> {
        lookup(self, plan)
    }
}

pub(super) fn lookup(table: &Exhaustive, plan: &Plan) -> Result<Metrics, QuantError> {
    let idx = plan
        .layers
        .iter()
        .try_fold(0usize, |i, c| Rounding::SEARCHED.iter().position(|&r| r == c.rounding).map(|r| i * 3 + r));
    idx.and_then(|i| table.configs.get(i))
        .filter(|e| e.plan == *plan)
        .map(|e| e.calib)
        .ok_or(QuantError::NotInTable { plan: plan.code() })
}

/// The best-of-`n` random null drawn exactly as [`random_best`] draws it (same seed, same
/// plans), scored by lookup in an exhaustive table of the same set.
pub fn random_best_in(table: &Exhaustive, bits: BitWidth, n: usize, seed: u64) -> Result<Found, QuantError> {
    let layers = table.configs.first().map_or(0, |c| c.plan.layers.len());
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut best: Option<Evaluated> = None;
    for _ in 0..n.max(1) {
        let r: Vec<Rounding> = (0..layers).map(|_| Rounding::SEARCHED[rng.random_range(0..3)]).collect();
        let plan = Plan::from_roundings(bits, &r);
        let calib = lookup(table, &plan)?;
        if best.as_ref().is_none_or(|b| calib.loss < b.calib.loss) {
            best = Some(Evaluated { plan, calib });
        }
    }
    let best = best.ok_or(QuantError::Serde("no random plan".into()))?;
    Ok(Found { best, evaluations: n.max(1) })
}

/// The null baseline: `n` uniformly random rounding assignments (seeded), the one with the
/// lowest calibration loss kept (the first drawn among equals). The plans are scored in
/// lexicographic order, each reusing the activations of the prefix it shares with the one
/// before (the first few layers of a few hundred plans of many layers are shared often):
/// the same numbers as scoring each from the input.
pub fn random_best(ev: &Evaluator, bits: BitWidth, set: &EvalSet, n: usize, seed: u64) -> Result<Found, QuantError> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let draws: Vec<Vec<usize>> =
        (0..n.max(1)).map(|_| (0..ev.n_layers()).map(|_| rng.random_range(0..3)).collect()).collect();
    let plan = |d: &[usize]| Plan::from_roundings(bits, &d.iter().map(|&i| Rounding::SEARCHED[i]).collect::<Vec<_>>());
    let mut order: Vec<usize> = (0..draws.len()).collect();
    order.sort_by(|&a, &b| draws[a].cmp(&draws[b]));
    // `acts[k]`: the input of layer k under the plan scored last (`acts[0]`: the images).
    let mut acts: Vec<Vec<f32>> = vec![set.x.clone()];
    let mut scores: Vec<Option<Result<Metrics, QuantError>>> = draws.iter().map(|_| None).collect();
    let mut last: Option<&[usize]> = None;
    for i in order {
        let d = &draws[i];
        let shared = last.map_or(0, |l| l.iter().zip(d).take_while(|(a, b)| a == b).count());
        acts.truncate(shared + 1);
        let p = plan(d);
        for (k, c) in p.layers.iter().enumerate().skip(shared) {
            let next = ev.step(k, &acts[k], *c);
            acts.push(next);
        }
        scores[i] = Some(score_logits(&acts[d.len()], &set.labels, &p));
        last = Some(d);
    }
    let mut best: Option<Evaluated> = None;
    for (d, s) in draws.iter().zip(scores) {
        let calib = s.ok_or(QuantError::Serde("a random plan was not scored".into()))??;
        if best.as_ref().is_none_or(|b| calib.loss < b.calib.loss) {
            best = Some(Evaluated { plan: plan(d), calib });
        }
    }
    let best = best.ok_or(QuantError::Serde("no random plan".into()))?;
    Ok(Found { best, evaluations: n.max(1) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_is_lexicographic() {
        assert_eq!(decode(0, 2), [Rounding::Nearest, Rounding::Nearest]);
        assert_eq!(decode(1, 2), [Rounding::Nearest, Rounding::Floor]);
        assert_eq!(decode(3, 2), [Rounding::Floor, Rounding::Nearest]);
        assert_eq!(decode(8, 2), [Rounding::Ceil, Rounding::Ceil]);
    }
}
