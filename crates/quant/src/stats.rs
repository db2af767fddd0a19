//! Temperature scaling: the FP32 + temperature baseline that separates a lower loss from
//! merely shrunken logits.

use mpq_models::metrics;

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
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

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
