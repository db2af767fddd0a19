//! Gradients of the mean cross-entropy on the host, in the fixed summation order of
//! [`super`]: with respect to each layer's weight and each layer's input. Used by the
//! first-order (Taylor) predictor and the Hessian-trace (HAWQ) baseline, so that what they
//! choose does not depend on the CPU either.

use super::{HostNet, conv3x3, linear, pad1, simd};
use crate::LayerKind;
use crate::net::Pool;
use rayon::prelude::*;

/// Gradients of one batch's mean loss.
#[derive(Debug, Clone)]
pub struct Grads {
    /// dL/dW per layer, in the weight's layout.
    pub weight: Vec<Vec<f32>>,
    /// dL/dx per layer: the gradient with respect to the layer's input, rows per example.
    pub input: Vec<Vec<f32>>,
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
        let w = |k: usize| weights.map_or(&self.weights[k], |ws| &ws[k]);
        let mut inputs = vec![x.to_vec()];
        for k in 0..self.n_layers() {
            let next = self.stage(k, &inputs[k], Some(w(k)));
            inputs.push(next);
        }
        let mut dy = ce_grad(&inputs[self.n_layers()], y);
        let n = self.n_layers();
        let (mut gw, mut gx) = (vec![Vec::new(); n], vec![Vec::new(); n]);
        for k in (0..n).rev() {
            let (dx, dw) = self.stage_backward(k, &inputs[k], w(k), &dy);
            gw[k] = dw;
            gx[k] = dx.clone();
            dy = dx;
        }
        Grads { weight: gw, input: gx }
    }

    /// Backward pass of layer `k` at input `x` with weight `w`, given dL/d(output) `dy`:
    /// returns (dL/dx, dL/dW).
    fn stage_backward(&self, k: usize, x: &[f32], w: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
        match self.kinds[k] {
            LayerKind::Linear { d_in, d_out, relu, residual } => {
                let mut z = vec![0f32; dy.len()];
                linear(x, w, &self.biases[k], d_in, d_out, &mut z);
                let dz: Vec<f32> = z.iter().zip(dy).map(|(&zv, &g)| if relu && zv <= 0.0 { 0.0 } else { g }).collect();
                linear_backward(x, w, &dz, d_in, d_out, if residual { Some(dy) } else { None })
            }
            LayerKind::Conv { .. } => conv_backward(&self.kinds[k], x, w, &self.biases[k], dy),
        }
    }
}

/// dx = dz Wᵀ (+ `skip`), dW = xᵀ dz; sums over examples in example order.
fn linear_backward(
    x: &[f32],
    w: &[f32],
    dz: &[f32],
    d_in: usize,
    d_out: usize,
    skip: Option<&[f32]>,
) -> (Vec<f32>, Vec<f32>) {
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
    (dx, dw)
}

/// Backward of a conv layer (3x3 valid or same, ReLU, identity skip, pooling; a max-pool
/// sends the gradient to the first maximum of each window). Same padding runs as a valid
/// convolution of the zero-padded input, whose border gradient is then dropped.
fn conv_backward(kind: &LayerKind, x: &[f32], w: &[f32], b: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let LayerKind::Conv { c_in, c_out, side_in, same, .. } = *kind else { return (Vec::new(), Vec::new()) };
    let (wi, wo) = (kind.input_width(), kind.output_width());
    let side = if same { side_in + 2 } else { side_in };
    let padded: Vec<f32> =
        if same { x.par_chunks(wi).flat_map_iter(|img| pad1(img, c_in, side_in)).collect() } else { x.to_vec() };
    let wp = c_in * side * side;
    // dL/dz per image, and the skip's share of dL/dx.
    let back: Vec<(Vec<f32>, Vec<f32>)> = padded
        .par_chunks(wp)
        .zip(x.par_chunks(wi))
        .zip(dy.par_chunks(wo))
        .map(|((img, x0), g)| post_backward(kind, &conv3x3(img, w, b, c_in, c_out, side), x0, g))
        .collect();
    let dx: Vec<f32> = back
        .par_iter()
        .flat_map_iter(|(dz, skip)| {
            let d = simd::run_on(simd::path(), || conv_input_grad(dz, w, (c_in, c_out, side)));
            let mut d = if same { crop1(&d, c_in, side_in) } else { d };
            d.iter_mut().zip(skip).for_each(|(a, &s)| *a += s);
            d
        })
        .collect();
    let dzs: Vec<Vec<f32>> = back.into_iter().map(|(dz, _)| dz).collect();
    (dx, conv_weight_grad(&padded, &dzs, w.len(), (c_in, c_out, side)))
}

/// dL/dz of one image's pre-activation `z` `[c_out, s, s]` (input `x0`) from the gradient
/// `g` of the layer's output, and the identity skip's dL/dx (empty without a skip).
fn post_backward(kind: &LayerKind, z: &[f32], x0: &[f32], g: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let LayerKind::Conv { c_out, residual, pool, .. } = *kind else { return (Vec::new(), Vec::new()) };
    let s = kind.conv_side();
    if pool == Pool::Max2 && !residual {
        return (pool_relu_backward(z, g, c_out, s), Vec::new());
    }
    // dL/d(activation after the skip), `[c_out, s, s]`.
    let da: Vec<f32> = match pool {
        Pool::None => g.to_vec(),
        Pool::GlobalAvg => g.iter().flat_map(|&v| std::iter::repeat_n(v / (s * s) as f32, s * s)).collect(),
        Pool::Max2 => {
            let a: Vec<f32> = z.iter().zip(x0).map(|(&v, &x)| v.max(0.0) + x).collect();
            max2_backward(&a, g, c_out, s)
        }
    };
    let dz = z.iter().zip(&da).map(|(&zv, &d)| if zv > 0.0 { d } else { 0.0 }).collect();
    (dz, if residual { da } else { Vec::new() })
}

/// The gradient of 2x2 max-pool of `a` `[c, s, s]`, to the first maximum of each window.
fn max2_backward(a: &[f32], g: &[f32], c: usize, s: usize) -> Vec<f32> {
    let p = s / 2;
    let mut d = vec![0f32; a.len()];
    for ch in 0..c {
        for py in 0..p {
            for px in 0..p {
                let idx = |dy: usize, dx: usize| ch * s * s + (2 * py + dy) * s + 2 * px + dx;
                let cands = [idx(0, 0), idx(0, 1), idx(1, 0), idx(1, 1)];
                let best = cands.into_iter().fold(cands[0], |m, c| if a[c] > a[m] { c } else { m });
                d[best] += g[ch * p * p + py * p + px];
            }
        }
    }
    d
}

/// The interior `[c, side, side]` of `[c, side + 2, side + 2]`.
fn crop1(d: &[f32], c: usize, side: usize) -> Vec<f32> {
    let p = side + 2;
    (0..c)
        .flat_map(|ch| (0..side).flat_map(move |y| (0..side).map(move |x| d[ch * p * p + (y + 1) * p + x + 1])))
        .collect()
}

/// dL/dz of one image's pre-activation `z` (channels of `o` x `o`) from the gradient `g` of
/// its ReLU + 2x2 max-pool output.
fn pool_relu_backward(z: &[f32], g: &[f32], c_out: usize, o: usize) -> Vec<f32> {
    let p = o / 2;
    let mut dz = vec![0f32; z.len()];
    for ch in 0..c_out {
        for py in 0..p {
            for px in 0..p {
                let idx = |dy: usize, dx: usize| ch * o * o + (2 * py + dy) * o + 2 * px + dx;
                let cands = [idx(0, 0), idx(0, 1), idx(1, 0), idx(1, 1)];
                let best = cands.into_iter().fold(cands[0], |m, c| if z[c] > z[m] { c } else { m });
                if z[best] > 0.0 {
                    dz[best] += g[ch * p * p + py * p + px];
                }
            }
        }
    }
    dz
}

/// dL/dx of one image from its dL/dz (the transposed 3x3 valid convolution).
fn conv_input_grad(dz: &[f32], w: &[f32], (c_in, c_out, side): (usize, usize, usize)) -> Vec<f32> {
    let o = side - 2;
    let mut d = vec![0f32; c_in * side * side];
    for co in 0..c_out {
        for ci in 0..c_in {
            for ky in 0..3 {
                for kx in 0..3 {
                    let wv = w[((co * c_in + ci) * 3 + ky) * 3 + kx];
                    for y in 0..o {
                        let dst = &mut d[ci * side * side + (y + ky) * side + kx..][..o];
                        dst.iter_mut().zip(&dz[co * o * o + y * o..][..o]).for_each(|(a, &g)| *a += wv * g);
                    }
                }
            }
        }
    }
    d
}

/// dL/dw summed over the batch `x` with per-image dL/dz `dzs`.
fn conv_weight_grad(x: &[f32], dzs: &[Vec<f32>], n_w: usize, (c_in, _c_out, side): (usize, usize, usize)) -> Vec<f32> {
    let (wi, o) = (c_in * side * side, side - 2);
    let mut dw = vec![0f32; n_w];
    dw.par_chunks_mut(9).enumerate().for_each(|(oc_ic, taps)| {
        let (co, ci) = (oc_ic / c_in, oc_ic % c_in);
        for (img, dz) in x.chunks(wi).zip(dzs) {
            let src = &img[ci * side * side..(ci + 1) * side * side];
            let g = &dz[co * o * o..(co + 1) * o * o];
            // Each tap sums its products in row-major order from 0; the nine sums advance
            // together, so nine independent chains hide the adds' latency.
            let mut s = [0f32; 9];
            for (y, gr) in g.chunks_exact(o).enumerate() {
                let rows: [&[f32]; 3] = std::array::from_fn(|ky| &src[(y + ky) * side..(y + ky + 1) * side]);
                for (xo, &gv) in gr.iter().enumerate() {
                    for (t, st) in s.iter_mut().enumerate() {
                        *st += rows[t / 3][t % 3 + xo] * gv;
                    }
                }
            }
            for (tap, v) in taps.iter_mut().zip(s) {
                *tap += v;
            }
        }
    });
    dw
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
        let (x, w, dz, skip) =
            (noise(rows * d_in, 1), noise(d_in * d_out, 2), noise(rows * d_out, 3), noise(rows * d_in, 4));
        let (dx, _) = linear_backward(&x, &w, &dz, d_in, d_out, Some(&skip));
        for i in 0..rows {
            for kk in 0..d_in {
                let s = (0..d_out).fold(0f32, |s, j| s + w[kk * d_out + j] * dz[i * d_out + j]);
                assert_eq!(dx[i * d_in + kk].to_bits(), (skip[i * d_in + kk] + s).to_bits(), "dx[{i}][{kk}]");
            }
        }
        let (c_in, c_out, side) = (2, 3, 9);
        let o = side - 2;
        let imgs = noise(4 * c_in * side * side, 5);
        let dzs: Vec<Vec<f32>> = (0..4).map(|n| noise(c_out * o * o, 6 + n)).collect();
        let dw = conv_weight_grad(&imgs, &dzs, c_out * c_in * 9, (c_in, c_out, side));
        for (co, ci, t) in (0..c_out).flat_map(|co| (0..c_in).flat_map(move |ci| (0..9).map(move |t| (co, ci, t)))) {
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
    }

    /// Every layer's weight gradient against central differences, on an MLP, a residual MLP
    /// and a CNN.
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
            }
        }
    }
}
