//! The network on the host: the same stages as [`Net`], computed in plain Rust f32 with a
//! fixed order of every sum, so a result depends on the weights and inputs alone, never on
//! the CPU's SIMD level, the backend's kernels or the thread count. Quantized evaluation,
//! calibration, searches and gradients run here; burn trains.
//!
//! Order of sums: an output element starts at its bias and adds its products in the order
//! of the weight's input index (`c * 9 + ky * 3 + kx` for convolutions). Nothing is fused
//! (Rust never contracts `a * b + c` into an FMA), and work is split across threads by
//! example only, so every element is computed the same way whatever the split.

pub mod grad;
pub mod simd;

use crate::net::Pool;
use crate::{LayerKind, Net};
use rayon::prelude::*;

/// Examples per parallel work item.
const CHUNK: usize = 32;

/// A trained network's parameters on the host, with its architecture.
#[derive(Debug, Clone)]
pub struct HostNet {
    /// Layer kinds in forward order.
    pub kinds: Vec<LayerKind>,
    /// Each layer's weight, in the layout of [`Net::weight`] (`[d_in, d_out]`, `[c_out, c_in, 3, 3]`).
    pub weights: Vec<Vec<f32>>,
    /// Each layer's bias (`d_out` or `c_out` values).
    pub biases: Vec<Vec<f32>>,
}

impl HostNet {
    /// Copies a burn network's parameters to the host.
    pub fn from_net(net: &Net) -> HostNet {
        let kinds: Vec<LayerKind> = net.arch().layers.iter().map(|l| l.kind.clone()).collect();
        let weights = (0..kinds.len()).map(|k| net.weight(k).to_vec()).collect();
        let biases = (0..kinds.len()).map(|k| net.bias(k)).collect();
        HostNet { kinds, weights, biases }
    }

    /// Number of quantizable layers.
    pub fn n_layers(&self) -> usize {
        self.kinds.len()
    }

    /// Runs layer `k` on a batch `x` (rows of its input width) with weight `w` (the layer's
    /// own when `None`); returns the next layer's input for the same rows.
    pub fn stage(&self, k: usize, x: &[f32], w: Option<&[f32]>) -> Vec<f32> {
        let kind = &self.kinds[k];
        let (wi, wo) = (kind.input_width(), kind.output_width());
        let w = w.unwrap_or(&self.weights[k]);
        let mut out = vec![0f32; x.len() / wi * wo];
        out.par_chunks_mut(CHUNK * wo).zip(x.par_chunks(CHUNK * wi)).for_each(|(o, xs)| match *kind {
            LayerKind::Linear { d_in, d_out, relu, residual } => {
                linear(xs, w, &self.biases[k], d_in, d_out, o);
                for (row, xr) in o.chunks_mut(d_out).zip(xs.chunks(d_in)) {
                    if relu {
                        row.iter_mut().for_each(|v| *v = v.max(0.0));
                    }
                    if residual {
                        row.iter_mut().zip(xr).for_each(|(v, &a)| *v += a);
                    }
                }
            }
            LayerKind::Conv { .. } => {
                for (img, dst) in xs.chunks(wi).zip(o.chunks_mut(wo)) {
                    let z = conv_pre(kind, img, w, &self.biases[k]);
                    conv_post(kind, &z, img, dst);
                }
            }
        });
        out
    }

    /// Logits `[n, 10]` of a batch of flattened images, at full precision.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        (0..self.n_layers()).fold(x.to_vec(), |h, k| self.stage(k, &h, None))
    }
}

/// `out[i, j] = b[j] + Σ_k x[i, k] w[k, j]` with `k` ascending, on the [`simd::path`] in use.
pub fn linear(x: &[f32], w: &[f32], b: &[f32], d_in: usize, d_out: usize, out: &mut [f32]) {
    simd::linear_on(simd::path(), x, w, b, d_in, d_out, out)
}

/// Valid 3x3 convolution of one image `[c_in, side, side]`: `[c_out, side-2, side-2]`, on the
/// [`simd::path`] in use.
pub fn conv3x3(img: &[f32], w: &[f32], b: &[f32], c_in: usize, c_out: usize, side: usize) -> Vec<f32> {
    simd::conv3x3_on(simd::path(), img, w, b, c_in, c_out, side)
}

/// `img` `[c, side, side]` with one zero on every border: `[c, side + 2, side + 2]`.
pub fn pad1(img: &[f32], c: usize, side: usize) -> Vec<f32> {
    let p = side + 2;
    let mut out = vec![0f32; c * p * p];
    for ch in 0..c {
        for y in 0..side {
            out[ch * p * p + (y + 1) * p + 1..][..side].copy_from_slice(&img[(ch * side + y) * side..][..side]);
        }
    }
    out
}

/// A conv layer's pre-activation `[c_out, s, s]` of one image (`s` = [`LayerKind::conv_side`]).
pub fn conv_pre(kind: &LayerKind, img: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let LayerKind::Conv { c_in, c_out, side_in, same, .. } = *kind else { return Vec::new() };
    if same {
        conv3x3(&pad1(img, c_in, side_in), w, b, c_in, c_out, side_in + 2)
    } else {
        conv3x3(img, w, b, c_in, c_out, side_in)
    }
}

/// ReLU, identity skip (adds `img`) and pooling of one image's pre-activation `z` into `dst`.
pub fn conv_post(kind: &LayerKind, z: &[f32], img: &[f32], dst: &mut [f32]) {
    let LayerKind::Conv { c_out, residual, pool, .. } = *kind else { return };
    let s = kind.conv_side();
    match pool {
        Pool::Max2 if !residual => relu_pool(z, c_out, s, dst),
        _ => {
            let mut a: Vec<f32> = z.iter().map(|v| v.max(0.0)).collect();
            if residual {
                a.iter_mut().zip(img).for_each(|(v, &x)| *v += x);
            }
            pool_plain(&a, c_out, s, pool, dst);
        }
    }
}

/// `pool` of activations `a` `[c, s, s]` into `dst` (no ReLU).
fn pool_plain(a: &[f32], c: usize, s: usize, pool: Pool, dst: &mut [f32]) {
    match pool {
        Pool::None => dst.copy_from_slice(a),
        Pool::GlobalAvg => {
            for (d, plane) in dst.iter_mut().zip(a.chunks(s * s)) {
                *d = plane.iter().fold(0f32, |t, &v| t + v) / (s * s) as f32;
            }
        }
        Pool::Max2 => {
            let p = s / 2;
            for ch in 0..c {
                for y in 0..p {
                    for x in 0..p {
                        let at = |dy: usize, dx: usize| a[ch * s * s + (2 * y + dy) * s + 2 * x + dx];
                        dst[ch * p * p + y * p + x] = at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1));
                    }
                }
            }
        }
    }
}

/// The body of [`linear`], four rows at a time so each weight row is read once per four
/// examples. Zero inputs (pixels, ReLU outputs) are skipped: adding `0 * w` changes nothing
/// but the sign of a zero sum.
#[inline(always)]
fn linear_body(x: &[f32], w: &[f32], b: &[f32], d_in: usize, d_out: usize, out: &mut [f32]) {
    for (xs, os) in x.chunks(4 * d_in).zip(out.chunks_mut(4 * d_out)) {
        for row in os.chunks_mut(d_out) {
            row.copy_from_slice(b);
        }
        let rows = xs.len() / d_in;
        if rows == 4 {
            let (o01, o23) = os.split_at_mut(2 * d_out);
            let (o0, o1) = o01.split_at_mut(d_out);
            let (o2, o3) = o23.split_at_mut(d_out);
            for k in 0..d_in {
                let a = [xs[k], xs[d_in + k], xs[2 * d_in + k], xs[3 * d_in + k]];
                if a == [0.0; 4] {
                    continue;
                }
                let wr = &w[k * d_out..(k + 1) * d_out];
                for j in 0..d_out {
                    o0[j] += a[0] * wr[j];
                    o1[j] += a[1] * wr[j];
                    o2[j] += a[2] * wr[j];
                    o3[j] += a[3] * wr[j];
                }
            }
        } else {
            for (xr, or) in xs.chunks(d_in).zip(os.chunks_mut(d_out)) {
                for (k, &a) in xr.iter().enumerate() {
                    if a != 0.0 {
                        or.iter_mut().zip(&w[k * d_out..(k + 1) * d_out]).for_each(|(o, &wv)| *o += a * wv);
                    }
                }
            }
        }
    }
}

/// The body of [`conv3x3`]: each output plane starts at its bias and adds the taps in
/// weight order.
#[inline(always)]
fn conv3x3_body(img: &[f32], w: &[f32], b: &[f32], c_in: usize, c_out: usize, side: usize) -> Vec<f32> {
    let o = side - 2;
    let mut z = vec![0f32; c_out * o * o];
    for (co, plane) in z.chunks_mut(o * o).enumerate() {
        plane.fill(b[co]);
        for ci in 0..c_in {
            let src = &img[ci * side * side..(ci + 1) * side * side];
            for ky in 0..3 {
                for kx in 0..3 {
                    let wv = w[((co * c_in + ci) * 3 + ky) * 3 + kx];
                    for y in 0..o {
                        let s = &src[(y + ky) * side + kx..][..o];
                        plane[y * o..(y + 1) * o].iter_mut().zip(s).for_each(|(p, &v)| *p += wv * v);
                    }
                }
            }
        }
    }
    z
}

/// ReLU then 2x2 max-pool with stride 2 (floor) of `[c, s, s]` into `dst` `[c, s/2, s/2]`.
pub fn relu_pool(z: &[f32], c: usize, s: usize, dst: &mut [f32]) {
    let p = s / 2;
    for ch in 0..c {
        for y in 0..p {
            for x in 0..p {
                let at = |dy: usize, dx: usize| z[ch * s * s + (2 * y + dy) * s + 2 * x + dx];
                let m = at(0, 0).max(at(0, 1)).max(at(1, 0)).max(at(1, 1));
                dst[ch * p * p + y * p + x] = m.max(0.0);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ModelConfig;
    use burn::prelude::*;

    fn images(n: usize) -> Vec<f32> {
        (0..n * 784).map(|i| if i % 7 < 3 { 0.0 } else { ((i * 31 % 255) as f32) / 255.0 }).collect()
    }

    #[test]
    fn host_forward_matches_burn_for_every_model_kind() {
        let dev = Device::flex();
        let cfgs = [
            ModelConfig::Mlp { hidden: vec![32, 16] },
            ModelConfig::Cnn { channels: [4, 8], hidden: 16 },
            ModelConfig::ResMlp { width: 24, depth: 2 },
            ModelConfig::ResCnn { channels: 5, depth: 2 },
            ModelConfig::PlainCnn { channels: 5, depth: 3 },
        ];
        for cfg in cfgs {
            let net = cfg.init(&dev, 3);
            let n = 9;
            let x = images(n);
            let want = net
                .forward(Tensor::<2>::from_data(TensorData::new(x.clone(), [n, 784]), &dev))
                .into_data()
                .try_to_vec::<f32>()
                .unwrap();
            let got = HostNet::from_net(&net).forward(&x);
            assert_eq!(got.len(), want.len());
            for (g, w) in got.iter().zip(&want) {
                assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{cfg:?}: {g} vs {w}");
            }
        }
    }

    #[test]
    fn results_do_not_depend_on_the_split_into_chunks() {
        let net = ModelConfig::Cnn { channels: [4, 8], hidden: 16 }.init(&Device::flex(), 5);
        let host = HostNet::from_net(&net);
        let x = images(70);
        let all = host.forward(&x);
        let one: Vec<f32> = x.chunks(784).flat_map(|r| host.forward(r)).collect();
        assert_eq!(all, one, "bit-identical whether examples run alone or in chunks");
    }
}
