//! The convolution on the host (any kernel side and stride, valid or same padding, ReLU,
//! identity skip, then a 2x2 pool, no pool or global average pool): forward here, backward in
//! [`backward`], every sum in the order the crate documents. 3x3 stride-1 layers run the
//! tuned kernels, the others [`general`]'s loops, in the same order.

mod backward;
pub mod general;

pub use backward::{Part, backward, conv_grads, post_grads};

use crate::CHUNK;
use crate::batchnorm::{BatchNorm, BnCache};
use crate::simd;
use mpq_net::layout::{avg2, global_avg, pad};
use mpq_net::{Carry, LayerKind, Pool};
use rayon::prelude::*;
use std::borrow::Cow;

/// The layer on images `x` (channel-major, one after another) into `out`: one chunk of a
/// batch; the caller splits the batch.
pub fn forward(kind: &LayerKind, x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
    let (wi, wo) = (kind.input_width(), kind.output_width());
    for (row, dst) in x.chunks(wi).zip(out.chunks_mut(wo)) {
        let z = pre_activation(kind, row, w, b);
        finish(kind, &z, row, dst);
    }
}

/// The pre-activation of one input row: the convolution of the layer's own input, plus the
/// shortcut of a carried input where the layer closes a two-layer skip.
fn pre_activation(kind: &LayerKind, row: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let own = kind.own_input_width();
    let mut z = conv_pre(kind, &row[..own], w, b);
    if let Some(s) = kind.shortcut() {
        s.add(&row[own..], &mut z);
    }
    z
}

/// The carried input's shortcut added to `z` where the layer closes a two-layer skip, then
/// [`finish`]: what follows the convolution (and its batch norm) of one row.
fn close_and_finish(kind: &LayerKind, z: &mut [f32], row: &[f32], dst: &mut [f32]) {
    if let Some(s) = kind.shortcut() {
        s.add(&row[kind.own_input_width()..], z);
    }
    finish(kind, z, row, dst);
}

/// ReLU, skip and pooling of `z` into the row's output, then the layer's own input after it
/// where the layer opens a two-layer skip.
fn finish(kind: &LayerKind, z: &[f32], row: &[f32], dst: &mut [f32]) {
    let (own_in, own_out) = (kind.own_input_width(), kind.own_output_width());
    conv_post(kind, z, &row[..own_in], &mut dst[..own_out]);
    if kind.carry() == Carry::Open {
        dst[own_out..].copy_from_slice(&row[..own_in]);
    }
}

/// The layer on a batch `x`: its output and its pre-activations `[rows, c_out, s, s]` (the
/// sums before ReLU, skip and pooling; with a carried input's shortcut added where the layer
/// closes a two-layer skip), which the backward pass needs.
pub fn forward_keep(kind: &LayerKind, x: &[f32], w: &[f32], b: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let LayerKind::Conv { c_out, .. } = *kind else { return (Vec::new(), Vec::new()) };
    let (wi, wo) = (kind.input_width(), kind.output_width());
    let rows = x.len() / wi;
    let zw = c_out * kind.conv_side() * kind.conv_side();
    let (mut out, mut z) = (vec![0f32; rows * wo], vec![0f32; rows * zw]);
    out.par_chunks_mut(CHUNK * wo).zip(z.par_chunks_mut(CHUNK * zw)).zip(x.par_chunks(CHUNK * wi)).for_each(
        |((o, zs), xs)| {
            for ((row, dst), zd) in xs.chunks(wi).zip(o.chunks_mut(wo)).zip(zs.chunks_mut(zw)) {
                zd.copy_from_slice(&pre_activation(kind, row, w, b));
                finish(kind, zd, row, dst);
            }
        },
    );
    (out, z)
}

/// [`forward_keep`] with batch normalization after the convolution, in training mode: the
/// batch's convolutions, `bn`'s training forward over them (updating its running
/// statistics), then per image the carried input's shortcut, ReLU, skip and pooling. Returns
/// the output, the values the ReLU saw (`[rows, c_out, s, s]`, for [`post_grads`]) and what
/// `bn`'s backward pass needs.
pub fn forward_keep_bn(
    kind: &LayerKind,
    x: &[f32],
    w: &[f32],
    b: &[f32],
    bn: &mut BatchNorm,
) -> (Vec<f32>, Vec<f32>, BnCache) {
    let (wi, wo, own) = (kind.input_width(), kind.output_width(), kind.own_input_width());
    let plane = kind.conv_side() * kind.conv_side();
    let mut z: Vec<f32> = x.par_chunks(wi).flat_map_iter(|row| conv_pre(kind, &row[..own], w, b)).collect();
    let cache = bn.train_forward(&mut z, plane);
    let mut out = vec![0f32; x.len() / wi * wo];
    out.par_chunks_mut(wo)
        .zip(z.par_chunks_mut(kind.outputs() * plane))
        .zip(x.par_chunks(wi))
        .for_each(|((dst, zd), row)| close_and_finish(kind, zd, row, dst));
    (out, z, cache)
}

/// The layer with batch normalization after the convolution in inference mode (`bn`'s
/// running statistics): what the folded convolution computes, up to rounding.
pub fn forward_bn_infer(kind: &LayerKind, x: &[f32], w: &[f32], b: &[f32], bn: &BatchNorm) -> Vec<f32> {
    let (wi, wo, own) = (kind.input_width(), kind.output_width(), kind.own_input_width());
    let plane = kind.conv_side() * kind.conv_side();
    let mut out = vec![0f32; x.len() / wi * wo];
    out.par_chunks_mut(wo).zip(x.par_chunks(wi)).for_each(|(dst, row)| {
        let mut z = conv_pre(kind, &row[..own], w, b);
        bn.infer(&mut z, plane);
        close_and_finish(kind, &mut z, row, dst);
    });
    out
}

/// Valid 3x3 convolution of one image `[c_in, side, side]`: `[c_out, side-2, side-2]`, on the
/// [`simd::path`] in use.
pub fn conv3x3(img: &[f32], w: &[f32], b: &[f32], c_in: usize, c_out: usize, side: usize) -> Vec<f32> {
    simd::conv3x3_on(simd::path(), img, w, b, c_in, c_out, side)
}

/// A conv layer's pre-activation `[c_out, s, s]` of one image (`s` = [`LayerKind::conv_side`]).
pub fn conv_pre(kind: &LayerKind, img: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let Some(g) = kind.conv_geom() else { return Vec::new() };
    let padded = padded(img, &g);
    if g.is_3x3_stride1() {
        conv3x3(&padded, w, b, g.c_in, g.c_out, g.side)
    } else {
        general::forward(&padded, w, b, &g)
    }
}

/// One image with the layer's zero border (itself when it has none).
pub(crate) fn padded<'a>(img: &'a [f32], g: &mpq_net::ConvGeom) -> Cow<'a, [f32]> {
    if g.pad == 0 { Cow::Borrowed(img) } else { Cow::Owned(pad(img, g.c_in, g.side_in, g.pad, 0.0)) }
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
                *d = global_avg(plane);
            }
        }
        Pool::Avg2 => {
            let p = s / 2;
            for (d, plane) in dst.chunks_exact_mut(p * p).zip(a.chunks_exact(s * s)) {
                avg2(plane, s, d);
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
    use crate::tests::pattern;

    /// The tiled convolution gives, bit for bit, the plain sum: bias first, then the taps
    /// in weight order (channel counts that are not multiples of the tile, rows wider and
    /// narrower than a tile).
    #[test]
    fn conv3x3_equals_the_sequential_sum_bit_for_bit() {
        for (c_in, c_out, side) in [(1, 8, 28), (8, 16, 13), (3, 5, 15), (2, 1, 3), (4, 6, 20)] {
            let (img, w, b) = (pattern(c_in * side * side, 3), pattern(c_out * c_in * 9, 5), pattern(c_out, 7));
            let got = conv3x3(&img, &w, &b, c_in, c_out, side);
            let g = LayerKind::conv3(c_in, c_out, side, false, false, Pool::None).conv_geom().unwrap();
            assert_eq!(got, general::forward(&img, &w, &b, &g), "the general loops give the same bits");
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

    /// Pointwise and strided layers (valid and same) give the plain sequential sum over the
    /// zero-padded image, bit for bit, at the output side PyTorch's `Conv2d` gives.
    #[test]
    fn kernels_and_strides_equal_the_sequential_sum() {
        for (k, stride, same, side) in
            [(1, 1, false, 9), (1, 2, false, 9), (3, 2, true, 14), (3, 2, false, 15), (3, 2, true, 7)]
        {
            let (c_in, c_out) = (3, 5);
            let kind = LayerKind::conv(c_in, c_out, side, same, k, stride, Pool::None);
            let (img, w, b) = (pattern(c_in * side * side, 3), pattern(c_out * c_in * k * k, 5), pattern(c_out, 7));
            let got = conv_pre(&kind, &img, &w, &b);
            let (pad, o) = (if same { (k - 1) / 2 } else { 0 }, kind.conv_side());
            assert_eq!(o, (side + 2 * pad - k) / stride + 1);
            let at = |ci: usize, y: usize, x: usize| {
                let (y, x) = (y as isize - pad as isize, x as isize - pad as isize);
                let inside = (0..side as isize).contains(&y) && (0..side as isize).contains(&x);
                if inside { img[ci * side * side + y as usize * side + x as usize] } else { 0.0 }
            };
            for (co, y, x) in (0..c_out).flat_map(|co| (0..o).flat_map(move |y| (0..o).map(move |x| (co, y, x)))) {
                let want = (0..c_in * k * k).fold(b[co], |acc, t| {
                    let (ci, ky, kx) = (t / (k * k), t % (k * k) / k, t % k);
                    acc + w[co * c_in * k * k + t] * at(ci, y * stride + ky, x * stride + kx)
                });
                assert_eq!(got[(co * o + y) * o + x].to_bits(), want.to_bits(), "k {k} s {stride} at {co},{y},{x}");
            }
        }
    }
}
