//! Mixed precision: pick one option (bits, rounding) per layer under a cost budget by a
//! grouped-knapsack dynamic program over measured per-layer loss changes.

/// One option of one layer: an integer cost and the loss change it is expected to cause.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Item {
    /// Cost in budget units (e.g. bytes, rounded up).
    pub cost: usize,
    /// Measured or predicted loss change.
    pub delta: f64,
}

/// Minimises the summed `delta` with exactly one item per group and total cost at most
/// `budget`; returns the chosen index per group, or `None` when no choice fits.
pub fn grouped_knapsack(groups: &[Vec<Item>], budget: usize) -> Option<Vec<usize>> {
    let inf = f64::INFINITY;
    // best[c]: lowest summed delta with total cost exactly c over the groups so far.
    let mut best = vec![inf; budget + 1];
    best[0] = 0.0;
    let mut picks: Vec<Vec<usize>> = Vec::with_capacity(groups.len());
    for g in groups {
        let mut next = vec![inf; budget + 1];
        let mut pick = vec![usize::MAX; budget + 1];
        for (c, &v) in best.iter().enumerate() {
            if v == inf {
                continue;
            }
            for (i, item) in g.iter().enumerate() {
                let nc = c + item.cost;
                if nc <= budget && v + item.delta < next[nc] {
                    next[nc] = v + item.delta;
                    pick[nc] = i;
                }
            }
        }
        best = next;
        picks.push(pick);
    }
    let (mut c, _) = best.iter().enumerate().filter(|(_, v)| v.is_finite()).min_by(|a, b| a.1.total_cmp(b.1))?;
    let mut out = vec![0; groups.len()];
    for (gi, g) in groups.iter().enumerate().rev() {
        let i = picks[gi][c];
        out[gi] = i;
        c -= g[i].cost;
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    fn brute(groups: &[Vec<Item>], budget: usize) -> Option<f64> {
        let mut best: Option<f64> = None;
        let total: usize = groups.iter().map(|g| g.len()).product();
        for mut i in 0..total {
            let (mut cost, mut d) = (0, 0.0);
            for g in groups {
                let it = g[i % g.len()];
                i /= g.len();
                cost += it.cost;
                d += it.delta;
            }
            if cost <= budget && best.is_none_or(|b| d < b) {
                best = Some(d);
            }
        }
        best
    }

    #[test]
    fn matches_brute_force_on_random_tables() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        for _ in 0..300 {
            let groups: Vec<Vec<Item>> = (0..rng.random_range(1..5))
                .map(|_| {
                    (0..rng.random_range(1..4))
                        .map(|_| Item { cost: rng.random_range(0..6), delta: rng.random_range(-1.0..1.0) })
                        .collect()
                })
                .collect();
            let budget = rng.random_range(0..12);
            let got = grouped_knapsack(&groups, budget);
            let want = brute(&groups, budget);
            match (got, want) {
                (None, None) => {}
                (Some(pick), Some(w)) => {
                    let cost: usize = pick.iter().zip(&groups).map(|(&i, g)| g[i].cost).sum();
                    let d: f64 = pick.iter().zip(&groups).map(|(&i, g)| g[i].delta).sum();
                    assert!(cost <= budget && (d - w).abs() < 1e-9, "{groups:?} {budget}: {d} vs {w}");
                }
                (g, w) => panic!("{groups:?} {budget}: {g:?} vs {w:?}"),
            }
        }
    }
}

use crate::eval::{EvalSet, Evaluator};
use crate::{BitWidth, Choice, Plan, QuantError, Rounding, Target};

/// One candidate for one layer with its measured or estimated loss change.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LayerOption {
    /// Bits and rounding.
    pub choice: Choice,
    /// Loss change attributed to this layer alone.
    pub delta: f64,
}

/// Per layer, the calibration loss change of quantizing only that layer at each bit width in
/// `bits` (32 = full precision, change 0) with each rounding in `roundings`.
pub fn measured_table(
    ev: &Evaluator,
    set: &EvalSet,
    bits: &[BitWidth],
    roundings: &[Rounding],
) -> Result<Vec<Vec<LayerOption>>, QuantError> {
    let n = ev.n_layers();
    let fp = ev.score(&Plan::full_precision(n), set)?.loss;
    // Full-precision inputs of every layer, shared by all single-layer plans.
    let inputs = crate::calib::stage_inputs(&ev.host, &set.x);
    let mut table = Vec::with_capacity(n);
    for (k, input) in inputs.iter().enumerate() {
        let mut row = Vec::new();
        for &b in bits {
            let rs: &[Rounding] = if b >= 32 { &[Rounding::Nearest] } else { roundings };
            for &r in rs {
                let choice = Choice { bits: b, rounding: r, target: Target::Both };
                let delta = if b >= 32 {
                    0.0
                } else {
                    let mut p = Plan::full_precision(n);
                    p.layers[k] = choice;
                    let mut h = ev.step(k, input, choice);
                    for j in k + 1..n {
                        h = ev.step(j, &h, p.layers[j]);
                    }
                    crate::eval::score_logits(&h, &set.labels, &p)?.loss - fp
                };
                row.push(LayerOption { choice, delta });
            }
        }
        table.push(row);
    }
    Ok(table)
}

/// Picks one option per layer minimising the summed delta with average bits per weight at
/// most `avg_bits` (weights of layer k count `weight_counts[k]`); costs are rounded up to a
/// grid of at most about 4000 cells, so the budget is never exceeded.
pub fn allocate(table: &[Vec<LayerOption>], weight_counts: &[usize], avg_bits: f64) -> Option<Plan> {
    // Costs are counted above the narrowest width, so the all-narrowest plan costs exactly 0
    // and a budget equal to that width stays feasible after rounding costs up.
    let min_bits = f64::from(table.iter().flatten().map(|o| o.choice.bits).min()?.get());
    let total: usize = weight_counts.iter().sum();
    let budget_bits = (avg_bits - min_bits) * total as f64;
    if budget_bits < 0.0 {
        return None;
    }
    let unit = (budget_bits / 4000.0).max(1.0);
    let groups: Vec<Vec<Item>> = table
        .iter()
        .zip(weight_counts)
        .map(|(row, &n)| {
            row.iter()
                .map(|o| Item {
                    cost: (((f64::from(o.choice.bits.get()) - min_bits) * n as f64) / unit).ceil() as usize,
                    delta: o.delta,
                })
                .collect()
        })
        .collect();
    let pick = grouped_knapsack(&groups, (budget_bits / unit).floor() as usize)?;
    Some(Plan { layers: pick.iter().zip(table).map(|(&i, row)| row[i].choice).collect() })
}
