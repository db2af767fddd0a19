//! The linear layer on the host: `y = x W + b`, ReLU if asked, identity skip if asked;
//! forward (with or without its pre-activations kept) and backward, every sum in the order
//! the crate documents.

use crate::CHUNK;
use crate::grad::LayerGrads;
use crate::simd;
use mpq_net::LayerKind;
use rayon::prelude::*;

/// `out[i, j] = b[j] + Σ_k x[i, k] w[k, j]` with `k` ascending, on the [`simd::path`] in use.
pub fn linear(x: &[f32], w: &[f32], b: &[f32], d_in: usize, d_out: usize, out: &mut [f32]) {
    simd::linear_on(simd::path(), x, w, b, d_in, d_out, out)
}

/// ReLU and identity skip of pre-activation rows `out` (in place), the inputs `x` beside.
fn post(out: &mut [f32], x: &[f32], (d_in, d_out): (usize, usize), relu: bool, residual: bool) {
    for (row, xr) in out.chunks_mut(d_out).zip(x.chunks(d_in)) {
        if relu {
            row.iter_mut().for_each(|v| *v = v.max(0.0));
        }
        if residual {
            row.iter_mut().zip(xr).for_each(|(v, &a)| *v += a);
        }
    }
}

/// The layer on rows `x` into `out` (one chunk of a batch; the caller splits the batch).
pub fn forward(kind: &LayerKind, x: &[f32], w: &[f32], b: &[f32], out: &mut [f32]) {
    let LayerKind::Linear { d_in, d_out, relu, residual } = *kind else { return };
    linear(x, w, b, d_in, d_out, out);
    post(out, x, (d_in, d_out), relu, residual);
}

/// The layer on a batch `x`: its output and its pre-activations (the sums before ReLU and
/// skip), which the backward pass needs.
pub fn forward_keep(kind: &LayerKind, x: &[f32], w: &[f32], b: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let LayerKind::Linear { d_in, d_out, relu, residual } = *kind else { return (Vec::new(), Vec::new()) };
    let mut z = vec![0f32; x.len() / d_in * d_out];
    z.par_chunks_mut(CHUNK * d_out)
        .zip(x.par_chunks(CHUNK * d_in))
        .for_each(|(o, xs)| linear(xs, w, b, d_in, d_out, o));
    let mut out = z.clone();
    post(&mut out, x, (d_in, d_out), relu, residual);
    (out, z)
}

/// Backward at input `x`, weight `w`, pre-activations `z` and output gradient `dy`:
/// dz = dy where ReLU passed it; dx = dz Wᵀ (+ dy through the skip) when `need_dx`,
/// dW = xᵀ dz, db = Σ dz; sums over examples in example order.
pub fn backward(kind: &LayerKind, x: &[f32], w: &[f32], z: &[f32], dy: &[f32], need_dx: bool) -> LayerGrads {
    let LayerKind::Linear { d_in, d_out, relu, residual } = *kind else { return LayerGrads::default() };
    let dz: Vec<f32> = z.iter().zip(dy).map(|(&zv, &g)| if relu && zv <= 0.0 { 0.0 } else { g }).collect();
    let skip = if residual { Some(dy) } else { None };
    let rows = dz.len() / d_out;
    let dx = if need_dx { input_grad(w, &dz, (d_in, d_out), skip) } else { Vec::new() };
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
fn input_grad(w: &[f32], dz: &[f32], (d_in, d_out): (usize, usize), skip: Option<&[f32]>) -> Vec<f32> {
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
    use crate::tests::{noise, pattern};

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

    /// The restructured input gradient equals the plain sequential sum bit for bit: each
    /// output adds its products in the documented order, starting from 0, then the skip.
    #[test]
    fn input_gradient_keeps_its_order_bit_for_bit() {
        let (rows, d_in, d_out) = (5, 37, 13);
        let (w, dz, skip) = (noise(d_in * d_out, 2), noise(rows * d_out, 3), noise(rows * d_in, 4));
        let dx = input_grad(&w, &dz, (d_in, d_out), Some(&skip));
        for i in 0..rows {
            for kk in 0..d_in {
                let s = (0..d_out).fold(0f32, |s, j| s + w[kk * d_out + j] * dz[i * d_out + j]);
                assert_eq!(dx[i * d_in + kk].to_bits(), (skip[i * d_in + kk] + s).to_bits(), "dx[{i}][{kk}]");
            }
        }
    }
}
