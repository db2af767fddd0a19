//! Statistics behind every verdict, at the repeat counts used (5 to 20 seeds): Student-t
//! intervals and p-values over per-seed values, multiplicity corrections across a family of
//! claims (Holm for the primary claims, Benjamini-Hochberg for exploratory ones), Spearman
//! rank correlation. (A test measures the t interval's coverage at the repeat counts used.)

use statrs::distribution::{ChiSquared, ContinuousCDF, StudentsT};

/// A mean over seeds with its two-sided interval and the p-value of "mean = null".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    /// Sample mean.
    pub mean: f64,
    /// Lower bound of the interval.
    pub lo: f64,
    /// Upper bound of the interval.
    pub hi: f64,
    /// Two-sided p-value of the one-sample t-test against the null value.
    pub p: f64,
    /// How many values the mean is over.
    pub n: usize,
}

/// One-sample Student-t interval at `level` (e.g. 0.95) and two-sided p-value against
/// `null`. Fewer than 2 values: a zero-width interval and p = 1; zero spread: p = 0 unless
/// every value equals `null`.
pub fn t_test(values: &[f64], null: f64, level: f64) -> TTest {
    let n = values.len();
    let mean = values.iter().sum::<f64>() / n.max(1) as f64;
    if n < 2 {
        return TTest { mean, lo: mean, hi: mean, p: 1.0, n };
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let se = (var / n as f64).sqrt();
    let Ok(t) = StudentsT::new(0.0, 1.0, (n - 1) as f64) else {
        return TTest { mean, lo: f64::NAN, hi: f64::NAN, p: 1.0, n };
    };
    let q = t.inverse_cdf(0.5 + level / 2.0);
    let p = if se > 0.0 {
        2.0 * (1.0 - t.cdf(((mean - null) / se).abs()))
    } else if mean == null {
        1.0
    } else {
        0.0
    };
    TTest { mean, lo: mean - q * se, hi: mean + q * se, p, n }
}

/// The standard error behind a two-sided Student-t interval `[lo, hi]` at `level` over `n`
/// values (its half-width over the t quantile), so that two intervals can be compared. NaN
/// for fewer than 2 values.
pub fn se_of_interval(lo: f64, hi: f64, n: usize, level: f64) -> f64 {
    match StudentsT::new(0.0, 1.0, n.saturating_sub(1) as f64) {
        Ok(t) if n >= 2 => (hi - lo) / 2.0 / t.inverse_cdf(0.5 + level / 2.0),
        _ => f64::NAN,
    }
}

/// Upper-tail probability of a chi-square variable on `k` degrees of freedom at `x`: how
/// surprising a sum of `k` squared z-scores is if each is standard normal. 1 for `k` = 0.
pub fn chi_square_upper(x: f64, k: usize) -> f64 {
    match ChiSquared::new(k as f64) {
        Ok(c) if k > 0 => 1.0 - c.cdf(x),
        _ => 1.0,
    }
}

/// Holm's step-down adjusted p-values (family-wise error control), in the input order.
pub fn holm(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running = 0f64;
    for (rank, &i) in idx.iter().enumerate() {
        running = running.max(((m - rank) as f64 * p[i]).min(1.0));
        out[i] = running;
    }
    out
}

/// Benjamini-Hochberg adjusted p-values (false-discovery-rate control), in the input order.
pub fn benjamini_hochberg(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut idx: Vec<usize> = (0..m).collect();
    idx.sort_by(|&a, &b| p[a].total_cmp(&p[b]));
    let mut out = vec![0.0; m];
    let mut running = 1f64;
    for (rank, &i) in idx.iter().enumerate().rev() {
        running = running.min((p[i] * m as f64 / (rank + 1) as f64).min(1.0));
        out[i] = running;
    }
    out
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

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    #[test]
    fn t_test_known_case() {
        // mean 2, sd 1, n = 4: se 0.5, t(3) 97.5% quantile 3.182446.
        let t = t_test(&[1.0, 2.0, 3.0, 2.0], 0.0, 0.95);
        let sd = (2.0f64 / 3.0).sqrt();
        assert!((t.hi - (2.0 + 3.182446 * sd / 2.0)).abs() < 1e-5, "{t:?}");
        assert!((t.p - 0.01628).abs() < 2e-4, "{t:?}"); // t = 4.899 on 3 df
        assert_eq!(t_test(&[3.0, 3.0], 3.0, 0.95).p, 1.0);
        assert_eq!(t_test(&[3.0, 3.0], 0.0, 0.95).p, 0.0);
    }

    #[test]
    fn interval_standard_errors_and_chi_square_tails_match_hand_computation() {
        let t = t_test(&[1.0, 2.0, 3.0, 2.0], 0.0, 0.95);
        let se = se_of_interval(t.lo, t.hi, t.n, 0.95);
        assert!((se - (2.0f64 / 3.0).sqrt() / 2.0).abs() < 1e-9, "{se}");
        assert!(se_of_interval(0.0, 1.0, 1, 0.95).is_nan());
        // chi-square upper 5% points: 3.841 on 1 df, 18.307 on 10 df.
        assert!((chi_square_upper(3.841459, 1) - 0.05).abs() < 1e-6);
        assert!((chi_square_upper(18.307038, 10) - 0.05).abs() < 1e-6);
        assert_eq!(chi_square_upper(5.0, 0), 1.0);
    }

    #[test]
    fn corrections_match_hand_computation() {
        let p = [0.01, 0.04, 0.03, 0.2];
        let h = holm(&p);
        for (a, b) in h.iter().zip([0.04, 0.09, 0.09, 0.2]) {
            assert!((a - b).abs() < 1e-12, "{h:?}");
        }
        let bh = benjamini_hochberg(&p);
        for (a, b) in bh.iter().zip([0.04, 0.0533333333, 0.0533333333, 0.2]) {
            assert!((a - b).abs() < 1e-9, "{bh:?}");
        }
    }

    /// Coverage of 95% intervals for the mean over per-seed values drawn from known
    /// symmetric distributions (per-seed ΔL are means over many test examples, so close to
    /// normal), at the repeat counts experiments use: the t interval must cover at least 93%
    /// of the time, and no more than 97% (an interval too wide would pass the first bound).
    #[test]
    fn t_interval_covers_at_small_n() {
        let mut rng = ChaCha8Rng::seed_from_u64(17);
        let trials = 4000;
        type Draw = fn(&mut ChaCha8Rng) -> f64;
        let draws: [(&str, Draw); 3] = [
            ("normal", |r| {
                let (u, v): (f64, f64) = (r.random(), r.random());
                (-2.0 * (1.0 - u).ln()).sqrt() * (std::f64::consts::TAU * v).cos()
            }),
            ("logistic", |r| {
                let u: f64 = r.random_range(1e-12..1.0);
                (u / (1.0 - u)).ln()
            }),
            ("laplace", |r| {
                let u: f64 = r.random_range(-0.5..0.5);
                -u.signum() * (1.0 - 2.0 * u.abs()).ln()
            }),
        ];
        for n in [5usize, 10] {
            for (name, draw) in draws {
                let mut t_hits = 0;
                for _ in 0..trials {
                    let v: Vec<f64> = (0..n).map(|_| draw(&mut rng)).collect();
                    let t = t_test(&v, 0.0, 0.95);
                    t_hits += usize::from(t.lo <= 0.0 && 0.0 <= t.hi);
                }
                let tc = t_hits as f64 / trials as f64;
                eprintln!("n = {n:2} {name:8} coverage: student-t {tc:.3}");
                assert!((0.93..=0.97).contains(&tc), "t interval covers {tc} at n = {n} ({name})");
            }
        }
    }

    #[test]
    fn spearman_cases() {
        assert!((spearman(&[1.0, 2.0, 3.0], &[10.0, 20.0, 30.0]) - 1.0).abs() < 1e-12);
        assert!((spearman(&[1.0, 2.0, 3.0], &[3.0, 2.0, 1.0]) + 1.0).abs() < 1e-12);
    }
}
