//! Convolutions of any kernel side and stride (1x1 projections, strided downsampling), in
//! the same summation order as the tuned 3x3 stride-1 kernels: each output starts at its bias
//! and adds its taps in weight order; each input gradient adds its products in (output
//! channel, tap) order; each weight gradient adds one image's pixels in row-major order.
//! Plain loops: the tuned kernels serve the 3x3 stride-1 layers, these everything else.

use mpq_net::ConvGeom;

/// Pre-activations `[c_out, o, o]` of one padded image `[c_in, side, side]`.
pub fn forward(img: &[f32], w: &[f32], b: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (o, s, side, kk, depth) = (g.o, g.stride, g.side, g.taps(), g.depth());
    let mut out = vec![0f32; g.c_out * o * o];
    if o == 0 {
        return out;
    }
    for (co, plane) in out.chunks_exact_mut(o * o).enumerate() {
        plane.fill(b[co]);
        for (t, &wv) in w[co * depth..][..depth].iter().enumerate() {
            let (ci, ky, kx) = (t / kk, t % kk / g.k, t % g.k);
            let src = &img[ci * side * side..][..side * side];
            for (oy, row) in plane.chunks_exact_mut(o).enumerate() {
                let line = &src[(oy * s + ky) * side + kx..];
                row.iter_mut().enumerate().for_each(|(ox, v)| *v += wv * line[ox * s]);
            }
        }
    }
    out
}

/// dL/dx of one padded image `[c_in, side, side]` from its dL/dz `[c_out, o, o]`.
pub fn input_grad(dz: &[f32], w: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (o, s, side, kk) = (g.o, g.stride, g.side, g.taps());
    let mut d = vec![0f32; g.c_in * side * side];
    if o == 0 {
        return d;
    }
    for (co, gz) in dz.chunks_exact(o * o).enumerate() {
        for (ci, plane) in d.chunks_exact_mut(side * side).enumerate() {
            for t in 0..kk {
                let wv = w[(co * g.c_in + ci) * kk + t];
                let (ky, kx) = (t / g.k, t % g.k);
                for (oy, row) in gz.chunks_exact(o).enumerate() {
                    let line = &mut plane[(oy * s + ky) * side + kx..];
                    row.iter().enumerate().for_each(|(ox, &gv)| line[ox * s] += wv * gv);
                }
            }
        }
    }
    d
}

/// One image's dL/dw `[c_out, c_in, k * k]` from its padded input and dL/dz.
pub fn weight_grad(img: &[f32], dz: &[f32], g: &ConvGeom) -> Vec<f32> {
    let (o, s, side, kk) = (g.o, g.stride, g.side, g.taps());
    let mut out = vec![0f32; g.c_out * g.depth()];
    if o == 0 {
        return out;
    }
    for (co, gz) in dz.chunks_exact(o * o).enumerate() {
        for (t, dw) in out[co * g.depth()..][..g.depth()].iter_mut().enumerate() {
            let (ci, ky, kx) = (t / kk, t % kk / g.k, t % g.k);
            let src = &img[ci * side * side..][..side * side];
            let mut acc = 0f32;
            for (oy, row) in gz.chunks_exact(o).enumerate() {
                let line = &src[(oy * s + ky) * side + kx..];
                row.iter().enumerate().for_each(|(ox, &gv)| acc += line[ox * s] * gv);
            }
            *dw = acc;
        }
    }
    out
}
