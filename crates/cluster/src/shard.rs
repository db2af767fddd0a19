//! Sharding a sweep over several processes or machines: which share of the expanded runs a
//! process takes (`--shard I/N`, a SLURM array task, a Kubernetes Indexed Job), assigned
//! deterministically and balanced by each run's expected cost.

use crate::{ClusterError, Result};
use mpq_experiment::config::RunSpec;

/// Returns a [`ClusterError::Environment`] with a formatted message.
macro_rules! bail {
    ($($msg:tt)+) => {
        return Err(ClusterError::Environment(format!($($msg)+)))
    };
}
use mpq_models::net::LayerKind;

/// One process's share of a sweep: shard `index` of `count` (0-based).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based shard index, below `count`.
    pub index: usize,
    /// Number of shards the sweep is split into.
    pub count: usize,
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl std::str::FromStr for Shard {
    type Err = String;

    /// Parses `I/N` with `0 <= I < N`.
    fn from_str(s: &str) -> std::result::Result<Shard, String> {
        let bad = || format!("`{s}` is not a shard: write I/N with 0 <= I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
        Shard::new(index, count).ok_or_else(bad)
    }
}

impl Shard {
    /// `Some` when `index < count` (and `count >= 1`).
    pub fn new(index: usize, count: usize) -> Option<Shard> {
        (index < count).then_some(Shard { index, count })
    }

    /// The shard a scheduler's environment names when no `--shard` is given. A Kubernetes
    /// Indexed Job gives the index (`JOB_COMPLETION_INDEX`) and `--shards` the count. In a
    /// SLURM array task without `--shards`, the shard is `SLURM_ARRAY_TASK_ID -
    /// SLURM_ARRAY_TASK_MIN` of `SLURM_ARRAY_TASK_COUNT` (arrays may start anywhere); with
    /// `--shards N` it is `SLURM_ARRAY_TASK_ID` of N, so that resubmitting some shards of a
    /// sweep (`--array=2,5`) keeps their numbers.
    pub fn from_env(count: Option<usize>, var: &dyn Fn(&str) -> Option<String>) -> Result<Option<Shard>> {
        let num = |name: &str| -> Result<Option<usize>> {
            match var(name) {
                None => Ok(None),
                Some(v) => match v.trim().parse() {
                    Ok(n) => Ok(Some(n)),
                    Err(_) => bail!("environment variable {name}={v:?} is not a non-negative integer"),
                },
            }
        };
        let (index, count) = match (num("JOB_COMPLETION_INDEX")?, num("SLURM_ARRAY_TASK_ID")?) {
            (Some(i), _) => (Some(i), count),
            (None, Some(id)) if count.is_some() => (Some(id), count),
            (None, Some(id)) => {
                let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
                let Some(i) = id.checked_sub(min) else {
                    bail!("SLURM_ARRAY_TASK_ID {id} is below SLURM_ARRAY_TASK_MIN {min}")
                };
                (Some(i), num("SLURM_ARRAY_TASK_COUNT")?)
            }
            (None, None) => (None, count),
        };
        match (index, count) {
            (None, None) => Ok(None),
            (Some(i), Some(n)) => match Shard::new(i, n) {
                Some(s) => Ok(Some(s)),
                None => bail!("shard index {i} (from the environment) is not below the shard count {n}"),
            },
            (None, Some(n)) => bail!(
                "--shards {n} needs a shard index: pass --shard I/{n}, or run inside a SLURM array task or a Kubernetes Indexed Job (JOB_COMPLETION_INDEX)"
            ),
            (Some(i), None) => bail!(
                "shard index {i} from the environment needs a shard count: pass --shards N (SLURM_ARRAY_TASK_COUNT was not set)"
            ),
        }
    }
}

/// Expected seconds of one run on a 2-core machine, for balancing only (results never depend
/// on it): a fixed part plus multiply-adds per digit, convolutions weighted as measured on the
/// main experiment (a CNN run costs about four MLP runs).
pub fn expected_cost(spec: &RunSpec) -> f64 {
    let (mut linear, mut conv) = (0.0, 0.0);
    for l in spec.model.arch().layers {
        match l.kind {
            LayerKind::Linear { d_in, d_out, .. } => linear += (d_in * d_out) as f64,
            LayerKind::Conv { .. } => {
                let side = l.kind.conv_side() as f64;
                conv += l.kind.weight_count() as f64 * side * side;
            }
        }
    }
    6.0 + 0.015 * linear / 1e3 + 0.2 * conv / 1e3
}

/// The shard of every run (same order as `specs`): longest expected cost first, each to the
/// least loaded shard so far (ties to the lower index, equal costs in id order), so shards
/// finish together. Deterministic: it depends only on the runs and `count`.
pub fn assign(specs: &[RunSpec], count: usize) -> Vec<usize> {
    let count = count.max(1);
    let mut order: Vec<usize> = (0..specs.len()).collect();
    let cost: Vec<f64> = specs.iter().map(expected_cost).collect();
    order.sort_by(|&a, &b| cost[b].total_cmp(&cost[a]).then_with(|| specs[a].id.cmp(&specs[b].id)));
    let mut load = vec![0.0f64; count];
    let mut owner = vec![0; specs.len()];
    for i in order {
        let s = (0..count).min_by(|&x, &y| load[x].total_cmp(&load[y]).then(x.cmp(&y))).unwrap_or(0);
        owner[i] = s;
        load[s] += cost[i];
    }
    owner
}

/// The runs of `specs` that `shard` owns, in id order.
pub fn select(specs: &[RunSpec], shard: Shard) -> Vec<RunSpec> {
    let owner = assign(specs, shard.count);
    specs.iter().zip(owner).filter(|(_, o)| *o == shard.index).map(|(s, _)| s.clone()).collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use mpq_experiment::config::Experiment;
    use std::collections::HashMap;

    fn specs() -> Vec<RunSpec> {
        let text =
            std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../experiments/mnist.toml")).unwrap();
        Experiment::parse(std::path::Path::new("mnist.toml"), &text).unwrap().expand()
    }

    #[test]
    fn parses_and_rejects_shards() {
        assert_eq!("2/4".parse::<Shard>().unwrap(), Shard { index: 2, count: 4 });
        for bad in ["4/4", "1", "a/2", "0/0", "-1/3", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn reads_slurm_and_kubernetes_environments() {
        let env = |pairs: &[(&str, &str)]| {
            let m: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            move |k: &str| m.get(k).cloned()
        };
        let slurm =
            env(&[("SLURM_ARRAY_TASK_ID", "7"), ("SLURM_ARRAY_TASK_MIN", "5"), ("SLURM_ARRAY_TASK_COUNT", "4")]);
        assert_eq!(Shard::from_env(None, &slurm).unwrap(), Some(Shard { index: 2, count: 4 }));
        // Resubmitted shards keep their numbers when the count is given.
        let again =
            env(&[("SLURM_ARRAY_TASK_ID", "5"), ("SLURM_ARRAY_TASK_MIN", "5"), ("SLURM_ARRAY_TASK_COUNT", "1")]);
        assert_eq!(Shard::from_env(Some(8), &again).unwrap(), Some(Shard { index: 5, count: 8 }));
        assert!(Shard::from_env(Some(4), &again).is_err(), "task id beyond the count");
        let k8s = env(&[("JOB_COMPLETION_INDEX", "1")]);
        assert_eq!(Shard::from_env(Some(3), &k8s).unwrap(), Some(Shard { index: 1, count: 3 }));
        assert!(Shard::from_env(None, &k8s).is_err(), "an index without a count");
        assert!(Shard::from_env(Some(3), &env(&[])).is_err(), "a count without an index");
        assert_eq!(Shard::from_env(None, &env(&[])).unwrap(), None);
        assert!(Shard::from_env(None, &env(&[("SLURM_ARRAY_TASK_ID", "x"), ("SLURM_ARRAY_TASK_COUNT", "2")])).is_err());
    }

    #[test]
    fn every_run_has_one_owner_and_shards_are_balanced() {
        let specs = specs();
        for count in 1..=7 {
            let mut seen: Vec<String> =
                (0..count).flat_map(|i| select(&specs, Shard::new(i, count).unwrap())).map(|s| s.id).collect();
            seen.sort();
            assert_eq!(seen, specs.iter().map(|s| s.id.clone()).collect::<Vec<_>>(), "{count} shards");
            let loads: Vec<f64> = (0..count)
                .map(|i| select(&specs, Shard::new(i, count).unwrap()).iter().map(expected_cost).sum())
                .collect();
            let (lo, hi) = loads.iter().fold((f64::MAX, 0.0f64), |(l, h), &x| (l.min(x), h.max(x)));
            let largest = specs.iter().map(expected_cost).fold(0.0, f64::max);
            assert!(hi - lo <= largest + 1e-9, "{count} shards: loads {loads:?}");
        }
        assert_eq!(assign(&specs, 4), assign(&specs, 4), "deterministic");
        let cnn = specs.iter().find(|s| s.id.starts_with("cnn")).unwrap();
        let mlp = specs.iter().find(|s| s.id.starts_with("mlp")).unwrap();
        assert!(expected_cost(cnn) > 3.0 * expected_cost(mlp));
    }
}
