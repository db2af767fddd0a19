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
