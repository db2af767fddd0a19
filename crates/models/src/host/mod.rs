//! The network on the host: the same stages as [`Net`], computed in plain Rust f32 with a
//! fixed order of every sum, so a result depends on the weights and inputs alone, never on
//! the CPU's SIMD level, the backend's kernels or the thread count. Quantized evaluation,
//! calibration, searches and gradients run here; burn trains.
//!
//! Order of sums: an output element starts at its bias and adds its products in the order
//! of the weight's input index (`c * 9 + ky * 3 + kx` for convolutions). Nothing is fused
//! (Rust never contracts `a * b + c` into an FMA), and work is split across threads by
//! example only, so every element is computed the same way whatever the split.

#[cfg(target_arch = "x86_64")]
mod conv_avx2;
mod conv_grad;
pub mod grad;
mod kernels;
pub mod simd;
pub mod train;

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

    /// [`HostNet::stage`] with weight `w`, also returning the layer's pre-activations (the
    /// sums before ReLU, skip and pooling; `[rows, c_out, s, s]` for convolutions), which
    /// the backward pass needs. The output has the same bits as [`HostNet::stage`]'s.
    pub fn stage_keep(&self, k: usize, x: &[f32], w: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let kind = &self.kinds[k];
        let (wi, wo, b) = (kind.input_width(), kind.output_width(), &self.biases[k]);
        let rows = x.len() / wi;
        match *kind {
            LayerKind::Linear { d_in, d_out, relu, residual } => {
                let mut z = vec![0f32; rows * d_out];
                z.par_chunks_mut(CHUNK * d_out)
                    .zip(x.par_chunks(CHUNK * d_in))
                    .for_each(|(o, xs)| linear(xs, w, b, d_in, d_out, o));
                let mut out = z.clone();
                for (row, xr) in out.chunks_mut(d_out).zip(x.chunks(d_in)) {
                    if relu {
                        row.iter_mut().for_each(|v| *v = v.max(0.0));
                    }
                    if residual {
                        row.iter_mut().zip(xr).for_each(|(v, &a)| *v += a);
                    }
                }
                (out, z)
            }
            LayerKind::Conv { c_out, .. } => {
                let zw = c_out * kind.conv_side() * kind.conv_side();
                let (mut out, mut z) = (vec![0f32; rows * wo], vec![0f32; rows * zw]);
                out.par_chunks_mut(CHUNK * wo)
                    .zip(z.par_chunks_mut(CHUNK * zw))
                    .zip(x.par_chunks(CHUNK * wi))
                    .for_each(|((o, zs), xs)| {
                        for ((img, dst), zd) in xs.chunks(wi).zip(o.chunks_mut(wo)).zip(zs.chunks_mut(zw)) {
                            zd.copy_from_slice(&conv_pre(kind, img, w, b));
                            conv_post(kind, zd, img, dst);
                        }
                    });
                (out, z)
            }
        }
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

    /// `n` values, every fifth zero (where depends on `s`), negatives, no pattern a kernel
    /// could exploit.
    pub(super) fn pattern(n: usize, s: usize) -> Vec<f32> {
        (0..n).map(|i| if i % 5 == s % 5 { 0.0 } else { (((i * s * 7919) % 2001) as f32 - 1000.0) / 377.0 }).collect()
    }

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

    /// The tiled kernel gives, bit for bit, the plain sum: bias first, then `k` ascending
    /// (full tiles, edge tiles in both directions, zero inputs and negative values).
    #[test]
    fn linear_equals_the_sequential_sum_bit_for_bit() {
        for (rows, d_in, d_out) in [(1, 1, 1), (4, 16, 16), (7, 13, 5), (9, 784, 37), (6, 20, 26), (33, 64, 48)] {
            let (x, w, b) = (pattern(rows * d_in, 3), pattern(d_in * d_out, 5), pattern(d_out, 7));
            let mut got = vec![0f32; rows * d_out];
            linear(&x, &w, &b, d_in, d_out, &mut got);
            for i in 0..rows {
                for j in 0..d_out {
                    let want = (0..d_in).fold(b[j], |acc, k| acc + x[i * d_in + k] * w[k * d_out + j]);
                    assert_eq!(got[i * d_out + j], want, "{rows}x{d_in}x{d_out} at ({i}, {j})");
                }
            }
        }
    }

    /// The tiled convolution gives, bit for bit, the plain sum: bias first, then the taps
    /// in weight order (channel counts that are not multiples of the tile, rows wider and
    /// narrower than a tile).
    #[test]
    fn conv3x3_equals_the_sequential_sum_bit_for_bit() {
        for (c_in, c_out, side) in [(1, 8, 28), (8, 16, 13), (3, 5, 15), (2, 1, 3), (4, 6, 20)] {
            let (img, w, b) = (pattern(c_in * side * side, 3), pattern(c_out * c_in * 9, 5), pattern(c_out, 7));
            let got = conv3x3(&img, &w, &b, c_in, c_out, side);
            let o = side - 2;
            for co in 0..c_out {
                for y in 0..o {
                    for x in 0..o {
                        let want = (0..c_in * 9).fold(b[co], |acc, t| {
                            let (ci, ky, kx) = (t / 9, t % 9 / 3, t % 3);
                            acc + w[co * c_in * 9 + t] * img[ci * side * side + (y + ky) * side + x + kx]
                        });
                        assert_eq!(
                            got[(co * o + y) * o + x].to_bits(),
                            want.to_bits(),
                            "{c_in}x{c_out}x{side} at {co},{y},{x}"
                        );
                    }
                }
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
