//! Training with batch normalization after convolutions: the host network plus one
//! [`BatchNorm`] per convolution that has one, a training step that normalizes with the
//! batch's statistics (and moves the running ones), and the folded network (each batch norm
//! folded into its convolution) that inference, quantization and the integer engine see.

use crate::batchnorm::{BatchNorm, BnCache};
use crate::grad::{Grads, LayerGrads, ce_grad};
use crate::{HostNet, conv, linear};
use mpq_net::LayerKind;

/// A host network in training, with batch norm after some convolutions.
#[derive(Debug, Clone, Default)]
pub struct BnNet {
    /// Weights and biases of every layer (before folding).
    pub net: HostNet,
    /// Layer `k`'s batch norm, if it has one (convolutions only).
    pub bns: Vec<Option<BatchNorm>>,
}

/// The gradients of every batch norm's scale and shift (empty for layers without one).
#[derive(Debug, Clone, Default)]
pub struct BnGrads {
    /// dL/dgamma per layer.
    pub gamma: Vec<Vec<f32>>,
    /// dL/dbeta per layer.
    pub beta: Vec<Vec<f32>>,
}

impl BnNet {
    /// `net` with a fresh batch norm after every convolution for which `with_bn` holds.
    pub fn new(net: HostNet, with_bn: impl Fn(&LayerKind) -> bool) -> BnNet {
        let bns = net.kinds.iter().map(|k| (k.is_conv() && with_bn(k)).then(|| BatchNorm::new(k.outputs()))).collect();
        BnNet { net, bns }
    }

    /// The deployed network: each batch norm's running statistics folded into its
    /// convolution's weight and bias.
    pub fn folded(&self) -> HostNet {
        let mut net = self.net.clone();
        for ((w, b), bn) in net.weights.iter_mut().zip(net.biases.iter_mut()).zip(&self.bns) {
            if let Some(bn) = bn {
                bn.fold(w, b);
            }
        }
        net
    }

    /// Logits of `x` with every batch norm in inference mode (running statistics), the
    /// network before folding: what [`BnNet::folded`] must reproduce.
    pub fn infer(&self, x: &[f32]) -> Vec<f32> {
        (0..self.net.n_layers()).fold(x.to_vec(), |h, k| match &self.bns[k] {
            Some(bn) => conv::forward_bn_infer(&self.net.kinds[k], &h, &self.net.weights[k], &self.net.biases[k], bn),
            None => self.net.stage(k, &h, None),
        })
    }

    /// One training pass on a batch: the logits (normalized with the batch's statistics),
    /// the gradients of the mean cross-entropy against `y` for every weight, bias and batch
    /// norm, and the running statistics moved toward the batch's.
    pub fn train_backprop(&mut self, x: &[f32], y: &[i64]) -> (Grads, BnGrads, Vec<f32>) {
        let n = self.net.n_layers();
        let mut inputs = vec![x.to_vec()];
        // Each layer's pre-activations as the ReLU saw them, and its batch norm's cache.
        let mut kept: Vec<(Vec<f32>, Option<BnCache>)> = Vec::new();
        for k in 0..n {
            let (kind, w, b) = (&self.net.kinds[k], &self.net.weights[k], &self.net.biases[k]);
            let (next, z, cache) = match &mut self.bns[k] {
                Some(bn) => {
                    let (o, z, c) = conv::forward_keep_bn(kind, &inputs[k], w, b, bn);
                    (o, z, Some(c))
                }
                None => {
                    let (o, z) = self.net.stage_keep(k, &inputs[k], w);
                    (o, z, None)
                }
            };
            inputs.push(next);
            kept.push((z, cache));
        }
        let logits = inputs.pop().unwrap_or_default();
        let mut dy = ce_grad(&logits, y);
        let mut g = Grads { weight: vec![Vec::new(); n], bias: vec![Vec::new(); n], input: vec![Vec::new(); n] };
        let mut bg = BnGrads { gamma: vec![Vec::new(); n], beta: vec![Vec::new(); n] };
        for k in (0..n).rev() {
            let (kind, w) = (&self.net.kinds[k], &self.net.weights[k]);
            let (z, cache) = &kept[k];
            let lg: LayerGrads = match (&self.bns[k], cache) {
                (Some(bn), Some(cache)) => {
                    let mut parts = conv::post_grads(kind, &inputs[k], z, &dy);
                    let mut dz: Vec<f32> = parts.iter().flat_map(|p| p.dz.iter().copied()).collect();
                    let plane = kind.conv_side() * kind.conv_side();
                    (bg.gamma[k], bg.beta[k]) = bn.backward(cache, &mut dz, plane);
                    for (p, d) in parts.iter_mut().zip(dz.chunks(kind.outputs() * plane)) {
                        p.dz.copy_from_slice(d);
                    }
                    conv::conv_grads(kind, &inputs[k], w, parts, k > 0)
                }
                _ => match kind {
                    LayerKind::Linear { .. } => linear::backward(kind, &inputs[k], w, z, &dy, k > 0),
                    LayerKind::Conv { .. } => conv::backward(kind, &inputs[k], w, z, &dy, k > 0),
                },
            };
            (g.weight[k], g.bias[k]) = (lg.dw, lg.db);
            dy = lg.dx;
        }
        (g, bg, logits)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::noise;
    use mpq_net::{Carry, Pool};

    /// A strided stem and a basic block that changes shape (option A shortcut), global
    /// average pooling, a linear head: batch norm after every convolution.
    fn net() -> BnNet {
        let conv = LayerKind::block;
        let kinds = vec![
            conv(1, 3, 12, 1, Pool::None, Carry::None),
            conv(3, 4, 12, 2, Pool::None, Carry::Open),
            conv(4, 4, 6, 1, Pool::GlobalAvg, Carry::Close { c: 3, side: 12 }),
            LayerKind::Linear { d_in: 4, d_out: 10, relu: false, residual: false },
        ];
        let weights = kinds.iter().enumerate().map(|(i, k)| noise(k.weight_count(), 3 + i as u32)).collect();
        let biases = kinds.iter().enumerate().map(|(i, k)| noise(k.outputs(), 9 + i as u32)).collect();
        BnNet::new(HostNet { kinds, weights, biases }, |_| true)
    }

    fn batch(rows: usize) -> (Vec<f32>, Vec<i64>) {
        let x = noise(rows * 144, 17).iter().map(|v| v + 0.5).collect();
        (x, (0..rows as i64).map(|i| i * 7 % 10).collect())
    }

    fn loss(logits: &[f32], y: &[i64]) -> f64 {
        logits
            .chunks(10)
            .zip(y)
            .map(|(l, &c)| {
                let m = l.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(f64::from(v)));
                let s: f64 = l.iter().map(|&v| (f64::from(v) - m).exp()).sum();
                m + s.ln() - f64::from(l[c as usize])
            })
            .sum::<f64>()
            / y.len() as f64
    }

    /// After a few training passes (running statistics away from their start), the folded
    /// network's logits equal convolution-then-batch-norm's within 1e-5.
    #[test]
    fn folded_network_equals_batch_norm_inference() {
        let (mut bn, (x, y)) = (net(), batch(6));
        for _ in 0..5 {
            bn.train_backprop(&x, &y);
        }
        assert!(bn.bns[0].as_ref().is_some_and(|b| b.mean.iter().any(|m| m.abs() > 1e-3)));
        let (want, got) = (bn.infer(&x), bn.folded().forward(&x));
        let scale = want.iter().fold(1f32, |m, v| m.max(v.abs()));
        let worst = got.iter().zip(&want).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(worst <= 1e-5 * scale, "{worst} (logits up to {scale})");
    }

    /// The training pass's gradients (weights, biases, batch norms' scale and shift) equal
    /// central differences of the training-mode loss.
    #[test]
    fn training_gradients_match_finite_differences() {
        let (base, (x, y)) = (net(), batch(5));
        let (g, bg, _) = base.clone().train_backprop(&x, &y);
        let at = |f: &dyn Fn(&mut BnNet)| {
            let mut n = base.clone();
            f(&mut n);
            let (_, _, l) = n.train_backprop(&x, &y);
            loss(&l, &y)
        };
        let h = 1e-2f32;
        let check = |what: &str, plus: f64, minus: f64, an: f32| {
            let fd = (plus - minus) / (2.0 * f64::from(h));
            assert!((fd - f64::from(an)).abs() < 2e-3 + 0.05 * f64::from(an).abs(), "{what}: fd {fd} vs {an}");
        };
        for k in 0..4 {
            for i in [0, base.net.weights[k].len() / 2] {
                let (p, m) = (at(&|n| n.net.weights[k][i] += h), at(&|n| n.net.weights[k][i] -= h));
                check(&format!("w[{k}][{i}]"), p, m, g.weight[k][i]);
            }
        }
        for k in 0..3 {
            let (p, m) =
                (at(&|n| n.bns[k].as_mut().unwrap().gamma[1] += h), at(&|n| n.bns[k].as_mut().unwrap().gamma[1] -= h));
            check(&format!("gamma[{k}]"), p, m, bg.gamma[k][1]);
            let (p, m) =
                (at(&|n| n.bns[k].as_mut().unwrap().beta[0] += h), at(&|n| n.bns[k].as_mut().unwrap().beta[0] -= h));
            check(&format!("beta[{k}]"), p, m, bg.beta[k][0]);
        }
    }
}
