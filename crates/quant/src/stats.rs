//! Statistics for honest comparisons: bootstrap confidence intervals, rank correlation and
//! temperature scaling.

use mpq_models::metrics;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A mean with a confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Interval {
    /// Sample mean.
    pub mean: f64,
    /// Lower bound.
    pub lo: f64,
    /// Upper bound.
    pub hi: f64,
}

/// Percentile bootstrap 95% interval of the mean of `values` (`reps` resamples, seeded).
pub fn bootstrap_mean(values: &[f64], reps: usize, seed: u64) -> Interval {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n.max(1) as f64;
    if n < 2 {
        return Interval { mean, lo: mean, hi: mean };
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> =
        (0..reps.max(1)).map(|_| (0..n).map(|_| values[rng.random_range(0..n)]).sum::<f64>() / n as f64).collect();
    means.sort_by(f64::total_cmp);
    let at = |q: f64| means[((means.len() - 1) as f64 * q).round() as usize];
    Interval { mean, lo: at(0.025), hi: at(0.975) }
}

fn ranks(v: &[f64]) -> Vec<f64> {
    let mut idx: Vec<usize> = (0..v.len()).collect();
    idx.sort_by(|&a, &b| v[a].total_cmp(&v[b]));
    let mut r = vec![0.0; v.len()];
    let mut i = 0;
    while i < idx.len() {
        let mut j = i;
        while j + 1 < idx.len() && v[idx[j + 1]] == v[idx[i]] {
            j += 1;
        }
        for &k in &idx[i..=j] {
            r[k] = (i + j) as f64 / 2.0;
        }
        i = j + 1;
    }
    r
}

/// Spearman rank correlation (ties get average ranks); NaN for fewer than 2 points.
pub fn spearman(a: &[f64], b: &[f64]) -> f64 {
    let (ra, rb) = (ranks(a), ranks(b));
    let n = a.len() as f64;
    let (ma, mb) = (ra.iter().sum::<f64>() / n, rb.iter().sum::<f64>() / n);
    let cov: f64 = ra.iter().zip(&rb).map(|(x, y)| (x - ma) * (y - mb)).sum();
    let va: f64 = ra.iter().map(|x| (x - ma).powi(2)).sum();
    let vb: f64 = rb.iter().map(|y| (y - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

/// The temperature T > 0 minimising the cross-entropy of `logits / T` (golden-section
/// search on ln T in [ln 0.05, ln 20]); fitted on calibration logits only.
pub fn fit_temperature(logits: &[f32], labels: &[i64]) -> f64 {
    let f = |lt: f64| metrics::score(logits, labels, lt.exp()).loss;
    let (mut a, mut b) = (0.05f64.ln(), 20f64.ln());
    let g = (5f64.sqrt() - 1.0) / 2.0;
    let (mut c, mut d) = (b - g * (b - a), a + g * (b - a));
    let (mut fc, mut fd) = (f(c), f(d));
    for _ in 0..60 {
        if fc < fd {
            b = d;
            d = c;
            fd = fc;
            c = b - g * (b - a);
            fc = f(c);
        } else {
            a = c;
            c = d;
            fc = fd;
            d = a + g * (b - a);
            fd = f(d);
        }
    }
    ((a + b) / 2.0).exp()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_known_case() {
        let v: Vec<f64> = (0..200).map(|i| if i % 2 == 0 { 1.0 } else { -1.0 }).collect();
        let ci = bootstrap_mean(&v, 4000, 1);
        assert!(ci.mean.abs() < 1e-12);
        // Standard error is 1/sqrt(200) ≈ 0.0707, so the 95% half-width is about 0.139.
        assert!((ci.hi - 0.139).abs() < 0.02 && (ci.lo + 0.139).abs() < 0.02, "{ci:?}");
        let c = bootstrap_mean(&[3.0, 3.0, 3.0], 100, 0);
        assert_eq!((c.lo, c.hi), (3.0, 3.0));
    }

    #[test]
    fn spearman_cases() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    }

    #[test]
    fn temperature_recovers_a_known_scale() {
        // Labels drawn so that logits/2 are calibrated: the fit should land near T = 2.
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let (mut logits, mut labels) = (Vec::new(), Vec::new());
        for _ in 0..4000 {
            let z: Vec<f64> = (0..3).map(|_| rng.random_range(-3.0..3.0)).collect();
            let p: Vec<f64> = z.iter().map(|v| (v / 2.0).exp()).collect();
            let s: f64 = p.iter().sum();
            let u = rng.random::<f64>() * s;
            let y = if u < p[0] {
                0
            } else if u < p[0] + p[1] {
                1
            } else {
                2
            };
            logits.extend(z.iter().map(|&v| v as f32));
            labels.push(y);
        }
        let t = fit_temperature(&logits, &labels);
        assert!((t - 2.0).abs() < 0.2, "T = {t}");
    }
}
