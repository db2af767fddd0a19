//! The conv layer's backward pass, in the fixed summation order of the crate: `HostNet::backprop`
//! chains it with the other layers' backward passes.

use super::{general, padded};
use crate::grad::LayerGrads;
use crate::simd;
use mpq_net::{Carry, ConvGeom, LayerKind, Pool};
use rayon::prelude::*;

/// Backward of a conv layer (any kernel and stride, valid or same, ReLU, identity skip,
/// two-layer skips, pooling; a max-pool sends the gradient to the first maximum of each
/// window) at input `x`, weight `w` and kept pre-activations `z`; dL/dx only when `need_dx`.
/// Same padding runs as a valid convolution of the zero-padded input, whose border gradient
/// is then dropped.
pub fn backward(kind: &LayerKind, x: &[f32], w: &[f32], z: &[f32], dy: &[f32], need_dx: bool) -> LayerGrads {
    conv_grads(kind, x, w, post_grads(kind, x, z, dy), need_dx)
}

/// One image's gradients from the layer's output back to its pre-activation.
#[derive(Debug, Clone, Default)]
pub struct Part {
    /// dL/dz, `[c_out, s, s]`: what the convolution's own gradients start from.
    pub dz: Vec<f32>,
    /// What reaches the layer's own input around the convolution: the identity skip's
    /// gradient, or that of the input the layer passes on where it opens a two-layer skip
    /// (empty where neither).
    pub skip: Vec<f32>,
    /// The carried input's gradient where the layer closes a two-layer skip (else empty).
    pub carried: Vec<f32>,
}

/// Each image's [`Part`] from the gradient `dy` of the layer's output, at input `x` and kept
/// pre-activations `z` (the values the ReLU saw).
pub fn post_grads(kind: &LayerKind, x: &[f32], z: &[f32], dy: &[f32]) -> Vec<Part> {
    let (wi, wo, zw) = (kind.input_width(), kind.output_width(), kind.outputs() * kind.conv_side().pow(2));
    let (own_in, own_out) = (kind.own_input_width(), kind.own_output_width());
    z.par_chunks(zw.max(1))
        .zip(x.par_chunks(wi))
        .zip(dy.par_chunks(wo))
        .map(|((zi, x0), gy)| {
            let (dz, skip) = post_backward(kind, zi, &x0[..own_in], &gy[..own_out]);
            let skip = if kind.carry() == Carry::Open { gy[own_out..].to_vec() } else { skip };
            let carried = kind.shortcut().map(|sc| sc.grad(&dz)).unwrap_or_default();
            Part { dz, skip, carried }
        })
        .collect()
}

/// The convolution's gradients from each image's [`Part`] at input `x` and weight `w`:
/// dL/dw, dL/db, and dL/dx (the layer's own input, then any carried one) when `need_dx`.
pub fn conv_grads(kind: &LayerKind, x: &[f32], w: &[f32], parts: Vec<Part>, need_dx: bool) -> LayerGrads {
    let Some(g) = kind.conv_geom() else { return LayerGrads::default() };
    let (c_in, c_out, side_in, side, s) = (g.c_in, g.c_out, g.side_in, g.side, g.o);
    let (wi, own_in) = (kind.input_width(), kind.own_input_width());
    let dx: Vec<f32> = if need_dx {
        parts
            .par_iter()
            .flat_map_iter(|p| {
                let d = if g.is_3x3_stride1() {
                    simd::run_on(
                        simd::path(),
                        #[inline(always)]
                        || conv_input_grad(&p.dz, w, (c_in, c_out, side)),
                    )
                } else {
                    general::input_grad(&p.dz, w, &g)
                };
                let mut d = if g.pad > 0 { crop(&d, c_in, side_in, g.pad) } else { d };
                d.iter_mut().zip(&p.skip).for_each(|(a, &s)| *a += s);
                d.extend_from_slice(&p.carried);
                d
            })
            .collect()
    } else {
        Vec::new()
    };
    let dzs: Vec<Vec<f32>> = parts.into_iter().map(|p| p.dz).collect();
    // Each channel's bias gradient: every image's plane summed in order from 0, then the
    // images in order from 0.
    let db = (0..c_out)
        .map(|co| dzs.iter().fold(0f32, |t, dz| t + dz[co * s * s..][..s * s].iter().fold(0f32, |a, &v| a + v)))
        .collect();
    let padded: Vec<f32> = x.par_chunks(wi).flat_map_iter(|row| padded(&row[..own_in], &g).into_owned()).collect();
    LayerGrads { dx, dw: conv_weight_grad(&padded, &dzs, w.len(), &g), db }
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
        Pool::Avg2 => avg2_backward(g, c_out, s),
        Pool::Max2 => {
            let a: Vec<f32> = z.iter().zip(x0).map(|(&v, &x)| v.max(0.0) + x).collect();
            max2_backward(&a, g, c_out, s)
        }
    };
    let dz = z.iter().zip(&da).map(|(&zv, &d)| if zv > 0.0 { d } else { 0.0 }).collect();
    (dz, if residual { da } else { Vec::new() })
}

/// The gradient of 2x2 average pool of `[c, s, s]`: a quarter of each window's gradient to
/// each of its four values (none to the last row and column of an odd side).
fn avg2_backward(g: &[f32], c: usize, s: usize) -> Vec<f32> {
    let p = s / 2;
    let mut d = vec![0f32; c * s * s];
    for ch in 0..c {
        for y in 0..2 * p {
            for x in 0..2 * p {
                d[ch * s * s + y * s + x] = g[ch * p * p + (y / 2) * p + x / 2] / 4.0;
            }
        }
    }
    d
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

/// The interior `[c, side, side]` of `[c, side + 2n, side + 2n]`.
fn crop(d: &[f32], c: usize, side: usize, n: usize) -> Vec<f32> {
    let p = side + 2 * n;
    (0..c)
        .flat_map(|ch| (0..side).flat_map(move |y| (0..side).map(move |x| d[ch * p * p + (y + n) * p + x + n])))
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

/// dL/dx of one image from its dL/dz (the transposed 3x3 valid convolution). Each element
/// adds its products in (output channel, tap) order from 0. `dz`'s rows are widened to the
/// input's side with zeros, so each tap's update is one contiguous run over the plane (long
/// vectors instead of rows of `side - 2`); the zeros it adds past a row's end change nothing,
/// since an element that starts at +0 and adds products is never -0.
#[inline(always)]
fn conv_input_grad(dz: &[f32], w: &[f32], (c_in, c_out, side): (usize, usize, usize)) -> Vec<f32> {
    let o = side - 2;
    let mut dzp = vec![0f32; c_out * o * side];
    for (dst, src) in dzp.chunks_exact_mut(side).zip(dz.chunks_exact(o)) {
        dst[..o].copy_from_slice(src);
    }
    let run = (o - 1) * side + o;
    let mut d = vec![0f32; c_in * side * side];
    for (co, g) in dzp.chunks_exact(o * side).enumerate() {
        for (ci, plane) in d.chunks_exact_mut(side * side).enumerate() {
            for t in 0..9 {
                let wv = w[(co * c_in + ci) * 9 + t];
                let dst = &mut plane[t / 3 * side + t % 3..][..run];
                dst.iter_mut().zip(&g[..run]).for_each(|(a, &gv)| *a += wv * gv);
            }
        }
    }
    d
}

/// dL/dw summed over the batch `x` with per-image dL/dz `dzs`: each image's sums (pixels in
/// row-major order from 0), then the images in order from 0.
fn conv_weight_grad(x: &[f32], dzs: &[Vec<f32>], n_w: usize, g: &ConvGeom) -> Vec<f32> {
    let dims = (g.c_in, g.c_out, g.side);
    let parts: Vec<Vec<f32>> = x
        .par_chunks(dims.0 * dims.2 * dims.2)
        .zip(dzs)
        .map(|(img, dz)| {
            if !g.is_3x3_stride1() {
                return general::weight_grad(img, dz, g);
            }
            simd::run_on(
                simd::path(),
                #[inline(always)]
                || image_weight_grad(img, dz, dims),
            )
        })
        .collect();
    let mut dw = vec![0f32; n_w];
    for p in &parts {
        dw.iter_mut().zip(p).for_each(|(a, &v)| *a += v);
    }
    dw
}

/// Output channels per vector of [`image_weight_grad`].
const LANES: usize = 8;

/// One image's dL/dw `[c_out, c_in, 9]`. The output channels run side by side, eight to a
/// vector: `dz` is transposed to `[pixel, c_out]` (padded with zero channels to whole
/// vectors), and each (input channel, tap) keeps one sum per output channel, to which every
/// pixel adds its product in row-major order.
#[inline(always)]
fn image_weight_grad(img: &[f32], dz: &[f32], (c_in, c_out, side): (usize, usize, usize)) -> Vec<f32> {
    let (o, blocks) = (side - 2, c_out.div_ceil(LANES));
    let mut dzt = vec![[0f32; LANES]; o * o * blocks];
    for (co, plane) in dz.chunks_exact(o * o).enumerate() {
        for (p, &g) in plane.iter().enumerate() {
            dzt[p * blocks + co / LANES][co % LANES] = g;
        }
    }
    let mut out = vec![0f32; c_out * c_in * 9];
    let mut put = |ci: usize, b0: usize, t: usize, sums: &[[f32; LANES]]| {
        for (i, lanes) in sums.iter().enumerate() {
            for (l, &v) in lanes.iter().enumerate() {
                let co = (b0 + i) * LANES + l;
                if co < c_out {
                    out[(co * c_in + ci) * 9 + t] = v;
                }
            }
        }
    };
    for (ci, src) in img.chunks_exact(side * side).enumerate().take(c_in) {
        let mut b0 = 0;
        while b0 < blocks {
            let step = if blocks - b0 >= 2 { 2 } else { 1 };
            for ky in 0..3 {
                let sums = if step == 2 {
                    row_sums::<2>(src, &dzt, (blocks, b0), (o, side), ky).map(|s| s.to_vec())
                } else {
                    row_sums::<1>(src, &dzt, (blocks, b0), (o, side), ky).map(|s| s.to_vec())
                };
                for (kx, s) in sums.iter().enumerate() {
                    put(ci, b0, ky * 3 + kx, s);
                }
            }
            b0 += step;
        }
    }
    out
}

/// The sums of kernel row `ky`'s three taps for output-channel vectors `b0..b0 + B` of one
/// input channel `src`: each pixel's product added in row-major order from 0, the 3 x B
/// vectors in registers (independent chains, so the adds' latency hides).
#[inline(always)]
fn row_sums<const B: usize>(
    src: &[f32],
    dzt: &[[f32; LANES]],
    (blocks, b0): (usize, usize),
    (o, side): (usize, usize),
    ky: usize,
) -> [[[f32; LANES]; B]; 3] {
    let mut s = [[[0f32; LANES]; B]; 3];
    for (y, rows) in dzt.chunks_exact(o * blocks).enumerate() {
        let line = &src[(y + ky) * side..][..o + 2];
        for (x, g) in rows.chunks_exact(blocks).enumerate() {
            for (kx, sk) in s.iter_mut().enumerate() {
                let v = line[x + kx];
                for (sb, gb) in sk.iter_mut().zip(&g[b0..b0 + B]) {
                    for (a, &gv) in sb.iter_mut().zip(gb) {
                        *a += v * gv;
                    }
                }
            }
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tests::noise;

    /// The batch's dL/dw from [`general::weight_grad`]: each image's, then the images in order.
    fn general_weight_grad(imgs: &[f32], dzs: &[Vec<f32>], g: &ConvGeom) -> Vec<f32> {
        let mut dw = vec![0f32; g.c_out * g.depth()];
        for (img, dz) in imgs.chunks(g.c_in * g.side * g.side).zip(dzs) {
            dw.iter_mut().zip(general::weight_grad(img, dz, g)).for_each(|(a, v)| *a += v);
        }
        dw
    }

    /// The restructured sums equal the plain sequential ones bit for bit: each output adds
    /// its products in the documented order, starting from 0 (partial and whole vectors of
    /// output channels, one and several input channels).
    #[test]
    fn backward_sums_keep_their_order_bit_for_bit() {
        // Partial and whole vectors of output channels, one and several input channels.
        for (c_in, c_out, side) in [(2, 3, 9), (3, 17, 13), (1, 8, 28)] {
            let o = side - 2;
            let imgs = noise(4 * c_in * side * side, 5);
            let dzs: Vec<Vec<f32>> = (0..4).map(|n| noise(c_out * o * o, 6 + n)).collect();
            let w = noise(c_out * c_in * 9, 9);
            let g = LayerKind::conv3(c_in, c_out, side, false, false, Pool::None).conv_geom().unwrap();
            let dw = conv_weight_grad(&imgs, &dzs, c_out * c_in * 9, &g);
            assert_eq!(dw, general_weight_grad(&imgs, &dzs, &g), "the general loops give the same bits");
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
            let dx = conv_input_grad(&dzs[0], &w, (c_in, c_out, side));
            assert_eq!(dx, general::input_grad(&dzs[0], &w, &g), "the general loops give the same bits");
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
}
