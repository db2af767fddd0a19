//! The integer inference engine. Each quantized layer quantizes its input with the plan's
//! rounding to integer codes, multiplies them with the integer weight codes accumulating in
//! i32, and rescales once per output (`acc * s_x * s_w + b`). Full-precision layers run in
//! f32. Examples run in parallel (rayon); the inner products are written so the compiler
//! vectorizes them (widening i16 multiply-adds on x86-64 with SSE2/AVX2).

use crate::format::{LayerKind, QLayer, QModel};
use crate::{LowbitError, pack};
use rayon::prelude::*;

#[derive(Clone, Copy)]
enum Round {
    Nearest,
    Floor,
    Ceil,
}

enum Weights {
    Int(Vec<i16>),
    Float(Vec<f32>),
}

struct Layer {
    kind: LayerKind,
    round: Round,
    in_scale: f32,
    in_zero: i32,
    in_qmax: i32,
    weights: Weights,
    /// Per output row: s_x * s_w (quantized) or 1 (float).
    out_scale: Vec<f32>,
    bias: Vec<f32>,
    cols: usize,
}

/// A packed model with its codes unpacked once, ready to run.
pub struct Engine {
    layers: Vec<Layer>,
}

fn dot_i16(a: &[i16], b: &[i16]) -> i32 {
    let mut acc = [0i32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] as i32 * y[i] as i32;
        }
    }
    let tail: i32 = ra.iter().zip(rb).map(|(&x, &y)| x as i32 * y as i32).sum();
    acc.iter().sum::<i32>() + tail
}

fn dot_f32(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    acc.iter().sum::<f32>() + ra.iter().zip(rb).map(|(x, y)| x * y).sum::<f32>()
}

impl Layer {
    fn from(l: &QLayer) -> Result<Layer, LowbitError> {
        let (rows, cols) = l.kind.weight_shape();
        let round = match l.rounding.as_str() {
            "nearest" => Round::Nearest,
            "floor" => Round::Floor,
            "ceil" => Round::Ceil,
            other => {
                return Err(LowbitError::Unsupported(format!(
                    "layer {}: rounding `{other}` has no integer kernel",
                    l.name
                )));
            }
        };
        if l.bits == 16 {
            return Err(LowbitError::Unsupported(format!("layer {}: 16-bit inputs do not fit the i16 kernel", l.name)));
        }
        let (weights, out_scale) = if l.bits >= 32 {
            (Weights::Float(l.weights.clone()), vec![1.0; rows])
        } else {
            let s = |r: usize| l.scales.get(r).or(l.scales.first()).copied().unwrap_or(1.0);
            (Weights::Int(pack::unpack(&l.codes, rows * cols, l.bits)), (0..rows).map(|r| l.in_scale * s(r)).collect())
        };
        Ok(Layer {
            kind: l.kind.clone(),
            round,
            in_scale: l.in_scale,
            in_zero: l.in_zero,
            in_qmax: l.in_qmax,
            weights,
            out_scale,
            bias: l.bias.clone(),
            cols,
        })
    }

    /// Input codes minus the zero point, as the kernel multiplies them.
    fn codes(&self, x: &[f32]) -> Vec<i16> {
        x.iter()
            .map(|&v| {
                let s = v / self.in_scale;
                let r = match self.round {
                    Round::Nearest => s.round_ties_even(),
                    Round::Floor => s.floor(),
                    Round::Ceil => s.ceil(),
                };
                ((r as i32).saturating_add(self.in_zero).clamp(0, self.in_qmax) - self.in_zero) as i16
            })
            .collect()
    }

    /// `out[r] = scale[r] * <w_r, x> + b[r]` over the rows of the weight matrix.
    fn rows(&self, x: &[f32], xq: Option<&[i16]>, r: usize) -> f32 {
        let acc = match (&self.weights, xq) {
            (Weights::Int(w), Some(q)) => dot_i16(&w[r * self.cols..(r + 1) * self.cols], q) as f32,
            (Weights::Float(w), _) => dot_f32(&w[r * self.cols..(r + 1) * self.cols], x),
            (Weights::Int(_), None) => 0.0,
        };
        acc * self.out_scale[r] + self.bias[r]
    }

    fn run(&self, x: &[f32]) -> Vec<f32> {
        let quantized = matches!(self.weights, Weights::Int(_));
        match self.kind {
            LayerKind::Linear { d_out, relu, residual, .. } => {
                let xq = quantized.then(|| self.codes(x));
                let seen: Vec<f32> = match &xq {
                    Some(q) => q.iter().map(|&c| c as f32 * self.in_scale).collect(),
                    None => x.to_vec(),
                };
                (0..d_out)
                    .map(|r| {
                        let y = self.rows(&seen, xq.as_deref(), r);
                        let y = if relu { y.max(0.0) } else { y };
                        if residual { y + seen[r] } else { y }
                    })
                    .collect()
            }
            LayerKind::Conv { c_in, c_out, side_in } => {
                let o = side_in - 2;
                let xq = quantized.then(|| self.codes(x));
                let seen: Vec<f32> = match &xq {
                    Some(q) => q.iter().map(|&c| c as f32 * self.in_scale).collect(),
                    None => x.to_vec(),
                };
                let mut conv = vec![0f32; c_out * o * o];
                let (mut pf, mut pq) = (vec![0f32; c_in * 9], vec![0i16; c_in * 9]);
                for oy in 0..o {
                    for ox in 0..o {
                        for c in 0..c_in {
                            for ky in 0..3 {
                                for kx in 0..3 {
                                    let at = c * side_in * side_in + (oy + ky) * side_in + ox + kx;
                                    pf[c * 9 + ky * 3 + kx] = seen[at];
                                    if let Some(q) = &xq {
                                        pq[c * 9 + ky * 3 + kx] = q[at];
                                    }
                                }
                            }
                        }
                        for r in 0..c_out {
                            conv[r * o * o + oy * o + ox] =
                                self.rows(&pf, xq.as_ref().map(|_| pq.as_slice()), r).max(0.0);
                        }
                    }
                }
                let p = o / 2;
                let mut out = vec![0f32; c_out * p * p];
                for r in 0..c_out {
                    for py in 0..p {
                        for px in 0..p {
                            let v = |dy: usize, dx: usize| conv[r * o * o + (2 * py + dy) * o + 2 * px + dx];
                            out[r * p * p + py * p + px] = v(0, 0).max(v(0, 1)).max(v(1, 0)).max(v(1, 1));
                        }
                    }
                }
                out
            }
        }
    }
}

/// Examples processed together so each weight row is loaded once per tile.
const TILE: usize = 16;

impl Layer {
    /// A Linear layer over a tile of examples: each weight row is read once and applied
    /// to every example of the tile while it is in cache.
    fn run_tile(&self, xs: &[Vec<f32>]) -> Vec<Vec<f32>> {
        let LayerKind::Linear { d_out, relu, residual, .. } = self.kind else {
            return xs.iter().map(|x| self.run(x)).collect();
        };
        let quantized = matches!(self.weights, Weights::Int(_));
        let qs: Vec<Option<Vec<i16>>> = xs.iter().map(|x| quantized.then(|| self.codes(x))).collect();
        let seen: Vec<Vec<f32>> = xs
            .iter()
            .zip(&qs)
            .map(|(x, q)| match q {
                Some(q) => q.iter().map(|&c| c as f32 * self.in_scale).collect(),
                None => x.clone(),
            })
            .collect();
        let mut out = vec![vec![0f32; d_out]; xs.len()];
        for r in 0..d_out {
            for (e, o) in out.iter_mut().enumerate() {
                let y = self.rows(&seen[e], qs[e].as_deref(), r);
                let y = if relu { y.max(0.0) } else { y };
                o[r] = if residual { y + seen[e][r] } else { y };
            }
        }
        out
    }
}

impl Engine {
    /// Unpacks the codes of every layer.
    pub fn new(m: &QModel) -> Result<Engine, LowbitError> {
        Ok(Engine { layers: m.layers.iter().map(Layer::from).collect::<Result<_, _>>()? })
    }

    /// Logits `[n, 10]` for `n` flattened 28x28 images in [0, 1].
    pub fn forward(&self, x: &[f32], n: usize) -> Vec<f32> {
        let width = (x.len() / n.max(1)).max(1);
        x.par_chunks(width * TILE)
            .flat_map_iter(|tile| {
                let mut hs: Vec<Vec<f32>> = tile.chunks(width).map(<[f32]>::to_vec).collect();
                for l in &self.layers {
                    hs = l.run_tile(&hs);
                }
                hs.into_iter().flatten()
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integer_dot_matches_float() {
        let a: Vec<i16> = (0..77).map(|i| (i * 13 % 255) as i16 - 127).collect();
        let b: Vec<i16> = (0..77).map(|i| (i * 7 % 15) as i16 - 7).collect();
        let want: i64 = a.iter().zip(&b).map(|(&x, &y)| x as i64 * y as i64).sum();
        assert_eq!(dot_i16(&a, &b) as i64, want);
    }
}
