//! The one Adam on the host (and plain SGD): elementwise, exactly rounded updates of f32
//! vectors, so the same gradients give the same parameters on every CPU.

/// Where Adam's ε enters the step, the two conventions in use: they agree in exact
/// arithmetic and differ in the last bits, so each user keeps the one its results were made
/// with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AdamForm {
    /// burn's (`AdamConfig`): `p -= lr m c / (√v + ε √(1-β2ᵗ))` with `c = √(1-β2ᵗ) / (1-β1ᵗ)`;
    /// host training uses it so that both training engines run the same optimizer.
    Burn,
    /// The textbook one (PyTorch's, the AdaRound paper's): `p -= lr m̂ / (√v̂ + ε)` with
    /// `m̂ = m / (1-β1ᵗ)`, `v̂ = v / (1-β2ᵗ)`.
    Textbook,
}

/// Adam's state for one parameter vector.
#[derive(Debug, Clone)]
pub struct Adam {
    /// Which convention the step follows.
    pub form: AdamForm,
    /// First-moment decay.
    pub beta1: f32,
    /// Second-moment decay.
    pub beta2: f32,
    /// The ε of the denominator.
    pub eps: f32,
    m: Vec<f32>,
    v: Vec<f32>,
    t: i32,
}

impl Adam {
    /// Fresh state for `n` parameters.
    pub fn new(n: usize, form: AdamForm, beta1: f32, beta2: f32, eps: f32) -> Adam {
        Adam { form, beta1, beta2, eps, m: vec![0.0; n], v: vec![0.0; n], t: 0 }
    }

    /// burn's defaults (β1 0.9, β2 0.999, ε 1e-5) in burn's form.
    pub fn burn(n: usize) -> Adam {
        Adam::new(n, AdamForm::Burn, 0.9, 0.999, 1e-5)
    }

    /// One step of `p` along the gradient `g` at learning rate `lr`.
    pub fn step(&mut self, p: &mut [f32], g: &[f32], lr: f32) {
        self.t += 1;
        let (b1, b2, t) = (self.beta1, self.beta2, self.t);
        let moments = self.m.iter_mut().zip(self.v.iter_mut());
        match self.form {
            AdamForm::Burn => {
                let bc2 = (1.0 - b2.powi(t)).sqrt();
                let (cf, eps) = (bc2 / (1.0 - b1.powi(t)), self.eps * bc2);
                for ((p, &g), (m, v)) in p.iter_mut().zip(g).zip(moments) {
                    *m = *m * b1 + g * (1.0 - b1);
                    *v = *v * b2 + g * g * (1.0 - b2);
                    *p -= *m * cf / (v.sqrt() + eps) * lr;
                }
            }
            AdamForm::Textbook => {
                for ((p, &g), (m, v)) in p.iter_mut().zip(g).zip(moments) {
                    *m = b1 * *m + (1.0 - b1) * g;
                    *v = b2 * *v + (1.0 - b2) * g * g;
                    let (mh, vh) = (*m / (1.0 - b1.powi(t)), *v / (1.0 - b2.powi(t)));
                    *p -= lr * mh / (vh.sqrt() + self.eps);
                }
            }
        }
    }
}

/// One SGD step: `p -= g lr`.
pub fn sgd_step(p: &mut [f32], g: &[f32], lr: f32) {
    p.iter_mut().zip(g).for_each(|(p, &g)| *p -= g * lr);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both forms follow their formulas written out in f64 (to f32 rounding), and they agree
    /// with each other to within float error.
    #[test]
    fn both_forms_follow_their_formulas() {
        let g = [0.3f32, -1.2, 0.0, 4.0];
        for form in [AdamForm::Burn, AdamForm::Textbook] {
            let (mut a, mut p) = (Adam::new(4, form, 0.9, 0.999, 1e-8), [1.0f32, 2.0, 3.0, 4.0]);
            let (mut m, mut v) = ([0f64; 4], [0f64; 4]);
            let mut want = [1.0f64, 2.0, 3.0, 4.0];
            for t in 1..=3 {
                a.step(&mut p, &g, 0.01);
                for j in 0..4 {
                    let gj = g[j] as f64;
                    m[j] = 0.9 * m[j] + 0.1 * gj;
                    v[j] = 0.999 * v[j] + 0.001 * gj * gj;
                    let (mh, vh) = (m[j] / (1.0 - 0.9f64.powi(t)), v[j] / (1.0 - 0.999f64.powi(t)));
                    want[j] -= 0.01 * mh / (vh.sqrt() + 1e-8);
                }
            }
            for j in 0..4 {
                assert!((p[j] as f64 - want[j]).abs() < 1e-5, "{form:?} [{j}]: {} vs {}", p[j], want[j]);
            }
        }
        let mut p = [1.0f32, 2.0];
        sgd_step(&mut p, &[0.5, -1.0], 0.1);
        assert_eq!(p, [0.95, 2.1]);
    }
}
