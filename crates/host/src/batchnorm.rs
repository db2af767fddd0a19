//! Batch normalization over the channels of a convolution's output: the training forward
//! (batch statistics) and its backward, the running statistics inference uses, and folding
//! into the preceding convolution, the deployed form that quantization and the integer
//! engine see (one weight and one bias per output channel, nothing in between).
//!
//! Layout: `z` is `[rows, c, plane]` (a convolution's pre-activation, `plane` = side²).
//! Every per-channel statistic sums in a fixed order (row by row, then across the plane) in
//! f64, so it is the same on every CPU and thread count.

/// One batch-norm layer's parameters and running statistics (PyTorch's defaults and update
/// rule: the running variance takes the unbiased batch variance).
#[derive(Debug, Clone, PartialEq)]
pub struct BatchNorm {
    /// Scale per channel (trained).
    pub gamma: Vec<f32>,
    /// Shift per channel (trained).
    pub beta: Vec<f32>,
    /// Running mean per channel (what inference and folding use).
    pub mean: Vec<f32>,
    /// Running variance per channel.
    pub var: Vec<f32>,
    /// Added to the variance before its square root.
    pub eps: f32,
    /// Weight of the newest batch in the running statistics.
    pub momentum: f32,
}

/// What the training forward keeps for the backward pass.
#[derive(Debug, Clone)]
pub struct BnCache {
    /// The normalized values `(z - mean) / sqrt(var + eps)`, `[rows, c, plane]`.
    pub xhat: Vec<f32>,
    /// `1 / sqrt(var + eps)` of the batch, per channel.
    pub inv_std: Vec<f32>,
}

/// Per-channel mean and biased variance of `z` `[rows, c, plane]`, summed in a fixed order.
fn batch_stats(z: &[f32], c: usize, plane: usize) -> (Vec<f64>, Vec<f64>) {
    let count = (z.len() / c).max(1) as f64;
    let (mut sum, mut sq) = (vec![0f64; c], vec![0f64; c]);
    for row in z.chunks(c * plane) {
        for (ch, p) in row.chunks(plane).enumerate() {
            sum[ch] += p.iter().map(|&v| f64::from(v)).sum::<f64>();
        }
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / count).collect();
    for row in z.chunks(c * plane) {
        for (ch, p) in row.chunks(plane).enumerate() {
            sq[ch] += p.iter().map(|&v| (f64::from(v) - mean[ch]).powi(2)).sum::<f64>();
        }
    }
    (mean, sq.iter().map(|s| s / count).collect())
}

impl BatchNorm {
    /// A fresh layer of `c` channels: scale 1, shift 0, running mean 0 and variance 1.
    pub fn new(c: usize) -> BatchNorm {
        BatchNorm {
            gamma: vec![1.0; c],
            beta: vec![0.0; c],
            mean: vec![0.0; c],
            var: vec![1.0; c],
            eps: 1e-5,
            momentum: 0.1,
        }
    }

    /// Channels.
    pub fn channels(&self) -> usize {
        self.gamma.len()
    }

    /// Per channel, the scale and shift inference applies: `y = a z + s`.
    fn affine(&self) -> Vec<(f32, f32)> {
        (0..self.channels())
            .map(|ch| {
                let inv = 1.0 / (f64::from(self.var[ch]) + f64::from(self.eps)).sqrt();
                let a = f64::from(self.gamma[ch]) * inv;
                (a as f32, (f64::from(self.beta[ch]) - a * f64::from(self.mean[ch])) as f32)
            })
            .collect()
    }

    /// Inference with the running statistics, in place.
    pub fn infer(&self, z: &mut [f32], plane: usize) {
        let ab = self.affine();
        for row in z.chunks_mut(self.channels() * plane) {
            for (p, &(a, s)) in row.chunks_mut(plane).zip(&ab) {
                p.iter_mut().for_each(|v| *v = a * *v + s);
            }
        }
    }

    /// Training forward with the batch's statistics, in place; updates the running
    /// statistics and returns what [`BatchNorm::backward`] needs.
    pub fn train_forward(&mut self, z: &mut [f32], plane: usize) -> BnCache {
        let c = self.channels();
        let (mean, var) = batch_stats(z, c, plane);
        let count = (z.len() / c) as f64;
        let inv_std: Vec<f32> = var.iter().map(|v| (1.0 / (v + f64::from(self.eps)).sqrt()) as f32).collect();
        let mut xhat = vec![0f32; z.len()];
        for (row, xr) in z.chunks_mut(c * plane).zip(xhat.chunks_mut(c * plane)) {
            for (ch, (p, xp)) in row.chunks_mut(plane).zip(xr.chunks_mut(plane)).enumerate() {
                let m = mean[ch] as f32;
                for (v, x) in p.iter_mut().zip(xp) {
                    *x = (*v - m) * inv_std[ch];
                    *v = self.gamma[ch] * *x + self.beta[ch];
                }
            }
        }
        let k = f64::from(self.momentum);
        for ch in 0..c {
            let unbiased = if count > 1.0 { var[ch] * count / (count - 1.0) } else { var[ch] };
            self.mean[ch] = ((1.0 - k) * f64::from(self.mean[ch]) + k * mean[ch]) as f32;
            self.var[ch] = ((1.0 - k) * f64::from(self.var[ch]) + k * unbiased) as f32;
        }
        BnCache { xhat, inv_std }
    }

    /// Backward of [`BatchNorm::train_forward`]: turns `dy` (the gradient at the output) into
    /// the gradient at the input, in place, and returns the gradients of gamma and beta.
    pub fn backward(&self, cache: &BnCache, dy: &mut [f32], plane: usize) -> (Vec<f32>, Vec<f32>) {
        let c = self.channels();
        let count = (dy.len() / c) as f64;
        let (mut dgamma, mut dbeta) = (vec![0f64; c], vec![0f64; c]);
        for (row, xr) in dy.chunks(c * plane).zip(cache.xhat.chunks(c * plane)) {
            for (ch, (p, xp)) in row.chunks(plane).zip(xr.chunks(plane)).enumerate() {
                for (&g, &x) in p.iter().zip(xp) {
                    dbeta[ch] += f64::from(g);
                    dgamma[ch] += f64::from(g) * f64::from(x);
                }
            }
        }
        for (row, xr) in dy.chunks_mut(c * plane).zip(cache.xhat.chunks(c * plane)) {
            for (ch, (p, xp)) in row.chunks_mut(plane).zip(xr.chunks(plane)).enumerate() {
                let k = f64::from(self.gamma[ch]) * f64::from(cache.inv_std[ch]) / count;
                for (g, &x) in p.iter_mut().zip(xp) {
                    *g = (k * (count * f64::from(*g) - dbeta[ch] - f64::from(x) * dgamma[ch])) as f32;
                }
            }
        }
        (dgamma.iter().map(|&v| v as f32).collect(), dbeta.iter().map(|&v| v as f32).collect())
    }

    /// Folds the running statistics into the preceding convolution's weight `[c_out, k]`
    /// and bias `[c_out]`: the folded convolution alone computes what convolution then
    /// [`BatchNorm::infer`] computed.
    pub fn fold(&self, w: &mut [f32], b: &mut [f32]) {
        let k = w.len() / self.channels();
        for (ch, &(a, s)) in self.affine().iter().enumerate() {
            w[ch * k..(ch + 1) * k].iter_mut().for_each(|v| *v *= a);
            b[ch] = a * b[ch] + s;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simd::{conv3x3_on, path};
    use crate::tests::{noise, pattern};

    /// A layer with statistics far from the defaults, as after training.
    fn trained(c: usize) -> BatchNorm {
        let v = |s: u32, lo: f32, span: f32| noise(c, s).iter().map(|x| lo + span * (x + 0.5)).collect::<Vec<_>>();
        BatchNorm {
            gamma: v(1, 0.3, 1.5),
            beta: v(2, -0.5, 1.0),
            mean: v(3, -2.0, 4.0),
            var: v(4, 0.05, 3.0),
            ..BatchNorm::new(c)
        }
    }

    /// Convolution then batch norm equals the folded convolution within 1e-5 (relative to
    /// the output's scale), on images and statistics with no special structure.
    #[test]
    fn folded_convolution_equals_convolution_then_batch_norm() {
        for (c_in, c_out, side) in [(1, 8, 28), (8, 16, 13), (16, 16, 9)] {
            let (img, mut w, mut b) = (pattern(c_in * side * side, 3), noise(c_out * c_in * 9, 5), noise(c_out, 7));
            let bn = trained(c_out);
            let plane = (side - 2) * (side - 2);
            let mut want = conv3x3_on(path(), &img, &w, &b, c_in, c_out, side);
            bn.infer(&mut want, plane);
            bn.fold(&mut w, &mut b);
            let got = conv3x3_on(path(), &img, &w, &b, c_in, c_out, side);
            let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
            let worst = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
            assert!(worst <= 1e-5 * scale, "{c_in}x{c_out}x{side}: {worst} (scale {scale})");
        }
    }

    /// The training forward normalizes each channel to mean beta and standard deviation
    /// gamma over the batch, and moves the running statistics toward the batch's.
    #[test]
    fn training_forward_uses_batch_statistics() {
        let (c, plane, rows) = (3, 5, 4);
        let mut z = pattern(rows * c * plane, 11);
        let (mean, var) = batch_stats(&z, c, plane);
        let mut bn = BatchNorm { gamma: vec![2.0, 1.0, 0.5], beta: vec![0.1, -1.0, 3.0], ..BatchNorm::new(c) };
        bn.train_forward(&mut z, plane);
        let (m2, v2) = batch_stats(&z, c, plane);
        for ch in 0..c {
            assert!((m2[ch] - f64::from(bn.beta[ch])).abs() < 1e-5, "channel {ch} mean {}", m2[ch]);
            let want = f64::from(bn.gamma[ch]).powi(2) * var[ch] / (var[ch] + 1e-5);
            assert!((v2[ch] - want).abs() < 1e-4 * want.max(1.0), "channel {ch} variance {} vs {want}", v2[ch]);
            assert!((f64::from(bn.mean[ch]) - 0.1 * mean[ch]).abs() < 1e-5);
            let n = (rows * plane) as f64;
            assert!((f64::from(bn.var[ch]) - (0.9 + 0.1 * var[ch] * n / (n - 1.0))).abs() < 1e-4);
        }
    }

    /// The backward pass equals central finite differences of a weighted sum of the
    /// outputs, for the input, gamma and beta.
    #[test]
    fn backward_equals_finite_differences() {
        let (c, plane, rows) = (2, 3, 4);
        let z0: Vec<f32> = pattern(rows * c * plane, 7).iter().map(|v| v * 0.5).collect();
        let coef = noise(z0.len(), 9);
        let base = BatchNorm { gamma: vec![1.5, 0.7], beta: vec![0.2, -0.3], ..BatchNorm::new(c) };
        let loss = |bn: &BatchNorm, z: &[f32]| -> f64 {
            let (mut y, mut b) = (z.to_vec(), bn.clone());
            b.train_forward(&mut y, plane);
            y.iter().zip(&coef).map(|(a, k)| f64::from(*a) * f64::from(*k)).sum()
        };
        let mut dz = coef.clone();
        let cache = base.clone().train_forward(&mut z0.clone(), plane);
        let (dgamma, dbeta) = base.backward(&cache, &mut dz, plane);
        let h = 1e-2f32;
        let diff = |plus: f64, minus: f64| (plus - minus) / (2.0 * f64::from(h));
        for i in 0..z0.len() {
            let (mut a, mut b) = (z0.clone(), z0.clone());
            a[i] += h;
            b[i] -= h;
            let num = diff(loss(&base, &a), loss(&base, &b));
            assert!((num - f64::from(dz[i])).abs() < 2e-3, "dz[{i}]: {num} vs {}", dz[i]);
        }
        for ch in 0..c {
            let (mut a, mut b) = (base.clone(), base.clone());
            (a.gamma[ch], b.gamma[ch]) = (a.gamma[ch] + h, b.gamma[ch] - h);
            let num = diff(loss(&a, &z0), loss(&b, &z0));
            assert!((num - f64::from(dgamma[ch])).abs() < 2e-3, "dgamma[{ch}]: {num} vs {}", dgamma[ch]);
            let (mut a, mut b) = (base.clone(), base.clone());
            (a.beta[ch], b.beta[ch]) = (a.beta[ch] + h, b.beta[ch] - h);
            let num = diff(loss(&a, &z0), loss(&b, &z0));
            assert!((num - f64::from(dbeta[ch])).abs() < 2e-3, "dbeta[{ch}]: {num} vs {}", dbeta[ch]);
        }
    }
}
