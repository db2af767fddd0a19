//! Gradients of the mean cross-entropy on the host, in the fixed summation order of
//! [`super`]: with respect to each layer's weight and each layer's input. Used by the
//! first-order (Taylor) predictor and the Hessian-trace (HAWQ) baseline, so that what they
//! choose does not depend on the CPU either.

use super::conv_grad::conv_backward;
use super::{HostNet, simd};
use crate::LayerKind;
use rayon::prelude::*;

/// Gradients of one batch's mean loss.
#[derive(Debug, Clone)]
pub struct Grads {
    /// dL/dW per layer, in the weight's layout.
    pub weight: Vec<Vec<f32>>,
    /// dL/db per layer.
    pub bias: Vec<Vec<f32>>,
    /// dL/dx per layer: the gradient with respect to the layer's input, rows per example
    /// (empty for the first layer when not asked for).
    pub input: Vec<Vec<f32>>,
}

/// One layer's gradients.
#[derive(Debug, Clone, Default)]
pub(super) struct LayerGrads {
    /// dL/dx, rows per example (empty when not needed).
    pub dx: Vec<f32>,
    /// dL/dW in the weight's layout.
    pub dw: Vec<f32>,
    /// dL/db.
    pub db: Vec<f32>,
}

/// dL/dlogits of the mean cross-entropy: `(softmax - onehot) / n`, computed in f64.
pub fn ce_grad(logits: &[f32], labels: &[i64]) -> Vec<f32> {
    let n = labels.len().max(1);
    let c = logits.len() / n;
    let mut g = vec![0f32; logits.len()];
    for (i, &y) in labels.iter().enumerate() {
        let row = &logits[i * c..(i + 1) * c];
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let e: Vec<f64> = row.iter().map(|&v| libm::exp(v as f64 - m)).collect();
        let s: f64 = e.iter().sum();
        for j in 0..c {
            let t = if j as i64 == y { 1.0 } else { 0.0 };
            g[i * c + j] = ((e[j] / s - t) / n as f64) as f32;
        }
    }
    g
}

impl HostNet {
    /// Gradients of the mean cross-entropy of `x` (flattened images) against `y`, with the
    /// layers' weights replaced by `weights` where given.
    pub fn gradients(&self, x: &[f32], y: &[i64], weights: Option<&[Vec<f32>]>) -> Grads {
        self.backprop(x, y, weights, true).0
    }

    /// [`HostNet::gradients`] and the logits they were taken at; dL/dx of the first layer
    /// only when `first_input` (training does not need it, and it costs as much as that
    /// layer's forward pass).
    pub fn backprop(&self, x: &[f32], y: &[i64], weights: Option<&[Vec<f32>]>, first_input: bool) -> (Grads, Vec<f32>) {
        let w = |k: usize| weights.map_or(&self.weights[k], |ws| &ws[k]);
        let n = self.n_layers();
        let (mut inputs, mut pre) = (vec![x.to_vec()], Vec::with_capacity(n));
        for k in 0..n {
            let (next, z) = self.stage_keep(k, &inputs[k], w(k));
            inputs.push(next);
            pre.push(z);
        }
        let logits = inputs.pop().unwrap_or_default();
        let mut dy = ce_grad(&logits, y);
        let mut g = Grads { weight: vec![Vec::new(); n], bias: vec![Vec::new(); n], input: vec![Vec::new(); n] };
        for k in (0..n).rev() {
            let need_dx = k > 0 || first_input;
            let lg = match self.kinds[k] {
                LayerKind::Linear { d_in, d_out, relu, residual } => {
                    let dz: Vec<f32> =
                        pre[k].iter().zip(&dy).map(|(&zv, &g)| if relu && zv <= 0.0 { 0.0 } else { g }).collect();
                    let skip = if residual { Some(dy.as_slice()) } else { None };
                    linear_backward(&inputs[k], w(k), &dz, (d_in, d_out), skip, need_dx)
                }
                LayerKind::Conv { .. } => conv_backward(&self.kinds[k], &inputs[k], w(k), &pre[k], &dy, need_dx),
            };
            (g.weight[k], g.bias[k], g.input[k]) = (lg.dw, lg.db, lg.dx.clone());
            dy = lg.dx;
        }
        (g, logits)
    }
}

/// dx = dz Wᵀ (+ `skip`) when `need_dx`, dW = xᵀ dz, db = Σ dz; sums over examples in
/// example order.
fn linear_backward(
    x: &[f32],
    w: &[f32],
    dz: &[f32],
    (d_in, d_out): (usize, usize),
    skip: Option<&[f32]>,
    need_dx: bool,
) -> LayerGrads {
    let rows = dz.len() / d_out;
    let dx = if need_dx { linear_input_grad(w, dz, (d_in, d_out), skip) } else { Vec::new() };
    let mut dw = vec![0f32; d_in * d_out];
    dw.par_chunks_mut(d_out).enumerate().for_each(|(kk, dwr)| {
        simd::run_on(simd::path(), || {
            for i in 0..rows {
                let a = x[i * d_in + kk];
                if a != 0.0 {
                    dwr.iter_mut().zip(&dz[i * d_out..(i + 1) * d_out]).for_each(|(o, &g)| *o += a * g);
                }
            }
        })
    });
    let mut db = vec![0f32; d_out];
    for r in dz.chunks_exact(d_out) {
        db.iter_mut().zip(r).for_each(|(o, &g)| *o += g);
    }
    LayerGrads { dx, dw, db }
}

/// dx = dz Wᵀ (+ `skip`).
fn linear_input_grad(w: &[f32], dz: &[f32], (d_in, d_out): (usize, usize), skip: Option<&[f32]>) -> Vec<f32> {
    let rows = dz.len() / d_out;
    let mut dx = skip.map_or_else(|| vec![0f32; rows * d_in], <[f32]>::to_vec);
    // Each dx[kk] adds w[kk][j] * dz[j] in j order, from 0, then joins dx: with w transposed
    // the d_in sums run side by side (vectors) instead of one latency-bound chain at a time.
    let mut wt = vec![0f32; d_in * d_out];
    for (kk, wr) in w.chunks_exact(d_out).enumerate().take(d_in) {
        for (j, &v) in wr.iter().enumerate() {
            wt[j * d_in + kk] = v;
        }
    }
    dx.par_chunks_mut(d_in).zip(dz.par_chunks(d_out)).for_each_init(
        || vec![0f32; d_in],
        |s, (dxr, dzr)| {
            simd::run_on(simd::path(), || {
                s.fill(0.0);
                for (&g, wtr) in dzr.iter().zip(wt.chunks_exact(d_in)) {
                    s.iter_mut().zip(wtr).for_each(|(a, &wv)| *a += wv * g);
                }
                dxr.iter_mut().zip(s.iter()).for_each(|(v, &t)| *v += t);
            })
        },
    );
    dx
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModelConfig;
    use burn::prelude::*;

    fn loss(h: &HostNet, x: &[f32], y: &[i64], ws: &[Vec<f32>]) -> f64 {
        let mut a = x.to_vec();
        for (k, w) in ws.iter().enumerate() {
            a = h.stage(k, &a, Some(w));
        }
        crate::metrics::score(&a, y, 1.0).loss
    }

    fn noise(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1u32 << 24) as f32 - 0.5)
            .collect()
    }

    /// The restructured sums equal the plain sequential ones bit for bit: each output adds
    /// its products in the documented order, starting from 0.
    #[test]
    fn backward_sums_keep_their_order_bit_for_bit() {
        let (rows, d_in, d_out) = (5, 37, 13);
        let (w, dz, skip) = (noise(d_in * d_out, 2), noise(rows * d_out, 3), noise(rows * d_in, 4));
        let dx = linear_input_grad(&w, &dz, (d_in, d_out), Some(&skip));
        for i in 0..rows {
            for kk in 0..d_in {
                let s = (0..d_out).fold(0f32, |s, j| s + w[kk * d_out + j] * dz[i * d_out + j]);
                assert_eq!(dx[i * d_in + kk].to_bits(), (skip[i * d_in + kk] + s).to_bits(), "dx[{i}][{kk}]");
            }
        }
        // Partial and whole vectors of output channels, one and several input channels.
        for (c_in, c_out, side) in [(2, 3, 9), (3, 17, 13), (1, 8, 28)] {
            let o = side - 2;
            let imgs = noise(4 * c_in * side * side, 5);
            let dzs: Vec<Vec<f32>> = (0..4).map(|n| noise(c_out * o * o, 6 + n)).collect();
            let w = noise(c_out * c_in * 9, 9);
            let dw = crate::host::conv_grad::conv_weight_grad(&imgs, &dzs, c_out * c_in * 9, (c_in, c_out, side));
            for (co, ci, t) in (0..c_out).flat_map(|co| (0..c_in).flat_map(move |ci| (0..9).map(move |t| (co, ci, t))))
            {
                let mut want = 0f32;
                for (img, dz) in imgs.chunks(c_in * side * side).zip(&dzs) {
                    let mut s = 0f32;
                    for y in 0..o {
                        for xo in 0..o {
                            s += img[ci * side * side + (y + t / 3) * side + t % 3 + xo] * dz[co * o * o + y * o + xo];
                        }
                    }
                    want += s;
                }
                assert_eq!(dw[(co * c_in + ci) * 9 + t].to_bits(), want.to_bits(), "dw[{co}][{ci}][{t}]");
            }
            let dx = crate::host::conv_grad::conv_input_grad(&dzs[0], &w, (c_in, c_out, side));
            for (ci, y, x) in (0..c_in).flat_map(|ci| (0..side).flat_map(move |y| (0..side).map(move |x| (ci, y, x)))) {
                let mut want = 0f32;
                for (co, t) in (0..c_out).flat_map(|co| (0..9).map(move |t| (co, t))) {
                    let (yy, xx) = (y as isize - (t / 3) as isize, x as isize - (t % 3) as isize);
                    if (0..o as isize).contains(&yy) && (0..o as isize).contains(&xx) {
                        want += w[(co * c_in + ci) * 9 + t] * dzs[0][co * o * o + yy as usize * o + xx as usize];
                    }
                }
                assert_eq!(dx[(ci * side + y) * side + x].to_bits(), want.to_bits(), "dx[{ci}][{y}][{x}]");
            }
        }
    }

    /// Every layer's weight and bias gradients against central differences, on an MLP, a
    /// residual MLP and CNNs; training's pass (no first-layer dL/dx) gives the same.
    #[test]
    fn weight_gradients_match_finite_differences() {
        let x: Vec<f32> = (0..3 * 784).map(|i| ((i * 17 % 97) as f32) / 97.0).collect();
        let y = [3i64, 7, 1];
        let cfgs = [
            ModelConfig::Mlp { hidden: vec![16] },
            ModelConfig::ResMlp { width: 12, depth: 2 },
            ModelConfig::Cnn { channels: [3, 4], hidden: 8 },
            ModelConfig::ResCnn { channels: 3, depth: 2 },
            ModelConfig::PlainCnn { channels: 3, depth: 2 },
        ];
        for cfg in cfgs {
            let h = HostNet::from_net(&cfg.init(&Device::flex(), 11));
            let g = h.gradients(&x, &y, None);
            for k in 0..h.n_layers() {
                for idx in [0, h.weights[k].len() / 2, h.weights[k].len() - 1] {
                    let eps = 1e-2f32;
                    let mut ws = h.weights.clone();
                    ws[k][idx] += eps;
                    let up = loss(&h, &x, &y, &ws);
                    ws[k][idx] -= 2.0 * eps;
                    let down = loss(&h, &x, &y, &ws);
                    let fd = (up - down) / (2.0 * eps as f64);
                    let an = g.weight[k][idx] as f64;
                    assert!((fd - an).abs() < 2e-3 + 0.05 * an.abs(), "{cfg:?} layer {k} [{idx}]: fd {fd} vs {an}");
                }
                for idx in [0, h.biases[k].len() - 1] {
                    // A bias moves every position of its channel: a smaller step keeps
                    // ReLU and max-pool choices where they are.
                    let eps = 1e-3f32;
                    let mut hb = h.clone();
                    hb.biases[k][idx] += eps;
                    let up = loss(&hb, &x, &y, &h.weights);
                    hb.biases[k][idx] -= 2.0 * eps;
                    let down = loss(&hb, &x, &y, &h.weights);
                    let fd = (up - down) / (2.0 * eps as f64);
                    let an = g.bias[k][idx] as f64;
                    assert!((fd - an).abs() < 2e-3 + 0.05 * an.abs(), "{cfg:?} bias {k} [{idx}]: fd {fd} vs {an}");
                }
            }
            let (t, _) = h.backprop(&x, &y, None, false);
            assert!(t.input[0].is_empty() && t.weight == g.weight && t.bias == g.bias, "{cfg:?}: training's pass");
        }
    }
}
