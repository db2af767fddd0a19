//! The 3x3 convolution on the host (valid or same padding, ReLU, identity skip, then 2x2
//! max-pool, no pool or global average pool): forward here, backward in [`backward`], every
//! sum in the order the crate documents.

mod backward;

pub use backward::backward;

use crate::CHUNK;
use crate::simd;
use mpq_net::layout::{avg2, global_avg, pad1};
use mpq_net::{LayerKind, Pool};
use rayon::prelude::*;

/// The layer on images `x` (channel-major, one after another) into `out`: one chunk of a
/// batch; the caller splits the batch.
pub fn forward(kind: &LayerKind, x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
    let (wi, wo) = (kind.input_width(), kind.output_width());
    for (img, dst) in x.chunks(wi).zip(out.chunks_mut(wo)) {
        let z = conv_pre(kind, img, w, b);
        conv_post(kind, &z, img, dst);
    }
}

/// The layer on a batch `x`: its output and its pre-activations `[rows, c_out, s, s]` (the
/// sums before ReLU, skip and pooling), which the backward pass needs.
pub fn forward_keep(kind: &LayerKind, x: &[f32], w: &[f32], b: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let LayerKind::Conv { c_out, .. } = *kind else { return (Vec::new(), Vec::new()) };
    let (wi, wo) = (kind.input_width(), kind.output_width());
    let rows = x.len() / wi;
    let zw = c_out * kind.conv_side() * kind.conv_side();
    let (mut out, mut z) = (vec![0f32; rows * wo], vec![0f32; rows * zw]);
    out.par_chunks_mut(CHUNK * wo).zip(z.par_chunks_mut(CHUNK * zw)).zip(x.par_chunks(CHUNK * wi)).for_each(
        |((o, zs), xs)| {
            for ((img, dst), zd) in xs.chunks(wi).zip(o.chunks_mut(wo)).zip(zs.chunks_mut(zw)) {
                zd.copy_from_slice(&conv_pre(kind, img, w, b));
                conv_post(kind, zd, img, dst);
            }
        },
    );
    (out, z)
}

/// Valid 3x3 convolution of one image `[c_in, side, side]`: `[c_out, side-2, side-2]`, on the
/// [`simd::path`] in use.
pub fn conv3x3(img: &[f32], w: &[f32], b: &[f32], c_in: usize, c_out: usize, side: usize) -> Vec<f32> {
    simd::conv3x3_on(simd::path(), img, w, b, c_in, c_out, side)
}

/// A conv layer's pre-activation `[c_out, s, s]` of one image (`s` = [`LayerKind::conv_side`]).
pub fn conv_pre(kind: &LayerKind, img: &[f32], w: &[f32], b: &[f32]) -> Vec<f32> {
    let LayerKind::Conv { c_in, c_out, side_in, same, .. } = *kind else { return Vec::new() };
    if same {
        conv3x3(&pad1(img, c_in, side_in, 0.0), w, b, c_in, c_out, side_in + 2)
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
}
