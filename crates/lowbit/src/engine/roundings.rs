//! One linear layer under nearest, floor and ceil at once, for searches that try all three
//! on the same input. Where the three roundings give that input the same codes (inputs on
//! the grid, such as 8-bit pixels), only the weight codes differ, by 0 or 1:
//! `nearest = floor + E` and `ceil = floor + D` with `E`, `D` in {0, 1}. One product with
//! the floor codes, one with `E`, and for ceil the row sums of the input codes less the few
//! products where `D` is 0 (weights on the grid) give all three sums exactly, in place of
//! three full products. `E` is packed as 8-bit codes; on images `avx2` runs it, as the
//! floor product, over each row's nonzero pairs (its `vpmaddubsw` path, which 0/1 codes
//! qualify for, skips no zero depths: 1.5 times as long on the MLP's first layer).

use super::linear::linear_tail;
use super::{Layer, Weights, chunk_rows, usable, zeros};
use crate::LowbitError;
use crate::format::QLayer;
use crate::gemm::{self, Kernel, PackedB};
use crate::pack;
use mpq_net::{LayerKind, Rounding};
use rayon::prelude::*;

/// The one-layer engines of a linear layer under nearest, floor and ceil (in that order),
/// with the same input quantization and weight scales, and what sharing their products
/// needs.
pub struct Roundings {
    layers: [Layer; 3],
    kernel: Kernel,
    /// `E`: nearest less floor weight codes, packed for `kernel`.
    up: PackedB,
    /// Where ceil equals floor (`D = 0`): per depth that has any, its columns.
    flat: Vec<(usize, Vec<usize>)>,
}

impl Roundings {
    /// The three layers, packed for `kernel`; an error where this CPU lacks `kernel`, or they
    /// are not one linear layer under the three roundings, or their weight codes do not
    /// differ by 0 or 1, or more than an eighth of the weights lie on the grid (sharing
    /// would not pay).
    pub fn new(l: [&QLayer; 3], kernel: Kernel) -> Result<Roundings, LowbitError> {
        usable(kernel)?;
        let refuse = |why: &str| Err(LowbitError::Unsupported(format!("layer {}: {why}", l[0].name)));
        let LayerKind::Linear { d_in, d_out, .. } = l[0].kind else { return refuse("not a linear layer") };
        let order = Rounding::SEARCHED;
        let alike = |x: &QLayer| {
            (x.kind == l[0].kind && x.bits == l[0].bits && x.scales == l[0].scales)
                && (x.in_scale.to_bits(), x.in_zero, x.in_qmax) == (l[0].in_scale.to_bits(), l[0].in_zero, l[0].in_qmax)
        };
        if l[0].bits > 8 || !l.iter().zip(order).all(|(x, r)| x.rounding == r && alike(x)) {
            return refuse("not one quantized linear layer under nearest, floor and ceil");
        }
        let [near, floor, ceil] = l.map(|x| pack::unpack(&x.codes, d_in * d_out, x.bits.get()));
        // Codes are stored one output after another: index o * d_in + depth.
        let mut e = vec![0i16; d_in * d_out];
        let mut flat = vec![Vec::new(); d_in];
        for (i, ((&n, &f), &c)) in near.iter().zip(&floor).zip(&ceil).enumerate() {
            if !(0..=1).contains(&(n - f)) || !(0..=1).contains(&(c - f)) {
                return refuse("weight codes under nearest and ceil are not floor's or one more");
            }
            e[i] = n - f;
            if c == f {
                flat[i % d_in].push(i / d_in);
            }
        }
        if flat.iter().map(Vec::len).sum::<usize>() * 8 > d_in * d_out {
            return refuse("too many weights on the grid");
        }
        let [a, b, c] = l;
        Ok(Roundings {
            layers: [Layer::from(a, kernel)?, Layer::from(b, kernel)?, Layer::from(c, kernel)?],
            kernel,
            up: PackedB::new(kernel, &e, d_out, d_in, 8),
            flat: flat.into_iter().enumerate().filter(|(_, cols)| !cols.is_empty()).collect(),
        })
    }

    /// Whether the three roundings give the first example of `x` the same input codes, as
    /// sharing products needs (inputs on the grid); [`Roundings::forward`] checks every
    /// example and runs the three layers apart where they differ.
    pub fn shares(&self, x: &[f32]) -> bool {
        let lf = &self.layers[1];
        let LayerKind::Linear { d_in, .. } = lf.kind else { return false };
        let (Some(first), true) = (x.get(..d_in), int(lf).is_some()) else { return false };
        self.floor_is_ceil(first, &mut vec![0u8; d_in], &mut vec![0u8; d_in])
    }

    /// Floor's codes of one example `xr` into `floor`, and whether ceil's (into the scratch
    /// `ceil`, of the same length) are the same.
    fn floor_is_ceil(&self, xr: &[f32], floor: &mut [u8], ceil: &mut [u8]) -> bool {
        let [_, lf, lc] = &self.layers;
        gemm::input_codes(self.kernel, &lf.input, xr, floor);
        gemm::input_codes(self.kernel, &lc.input, xr, ceil);
        floor == ceil
    }

    /// The layer's outputs under nearest, floor and ceil for `n` inputs stored one after
    /// another, each equal bit for bit to its own engine's [`super::Engine::forward`].
    pub fn forward(&self, x: &[f32], n: usize) -> [Vec<f32>; 3] {
        let width = (x.len() / n.max(1)).max(1);
        let (per, out_width) = (chunk_rows(self.kernel, n), self.layers[0].kind.output_width());
        // Each chunk writes its rows in place, as in `Engine::forward`.
        let len = x.len() / width * out_width;
        let mut out = [zeros(len), zeros(len), zeros(len)];
        let [on, of, oc] = &mut out;
        let rows = out_width * per;
        let (on, of, oc) = (on.par_chunks_mut(rows), of.par_chunks_mut(rows), oc.par_chunks_mut(rows));
        on.zip(of).zip(oc).zip(x.par_chunks(width * per)).for_each(|(((dn, df), dc), chunk)| {
            self.chunk(chunk, chunk.len() / width, [dn, df, dc]);
        });
        out
    }

    /// [`Roundings::forward`] on `t` examples, into `dst`.
    fn chunk(&self, x: &[f32], t: usize, dst: [&mut [f32]; 3]) {
        let [_, lf, lc] = &self.layers;
        let (Some(bn), Some(b), Some(bc), LayerKind::Linear { d_in, d_out, relu, residual }) =
            (int(&self.layers[0]), int(lf), int(lc), lf.kind.clone())
        else {
            return self.separately(x, t, dst);
        };
        let (kp, np) = (b.kp, b.np);
        // Floor and ceil codes; where they agree, nearest's agree too (it lies between them,
        // and clamping keeps the order). Layers whose inputs are off the grid show it in the
        // first example, before the rest is quantized.
        let (mut a, mut ca) = (vec![0u8; t * kp], vec![0u8; kp]);
        for (ar, xr) in a.chunks_exact_mut(kp).zip(x.chunks_exact(d_in)) {
            if !self.floor_is_ceil(xr, &mut ar[..d_in], &mut ca[..d_in]) {
                return self.separately(x, t, dst);
            }
        }
        let mut floor = vec![0i32; t * np];
        gemm::gemm(self.kernel, &a, t, b, &mut floor);
        let mut near = vec![0i32; t * np];
        gemm::gemm(self.kernel, &a, t, &self.up, &mut near);
        near.iter_mut().zip(&floor).for_each(|(v, &f)| *v += f);
        let seen = residual.then(|| lf.seen(&a, kp, d_in));
        // Each rounding rescaled with its own column sums, scales and biases.
        let tail = |l: &Layer, c: &[i32], own: &PackedB, y: &mut [f32]| {
            l.rescale_into(c, own, d_out, y);
            linear_tail(y, seen.as_deref(), (d_in, d_out), relu);
        };
        let [ln, _, _] = &self.layers;
        let [yn, yf, yc] = dst;
        tail(ln, &near, bn, yn);
        tail(lf, &floor, b, yf);
        // Ceil's sums from floor's, in place.
        for (row, ar) in floor.chunks_exact_mut(np).zip(a.chunks_exact(kp)) {
            let sum = ar.iter().map(|&v| v as i32).sum::<i32>();
            row[..d_out].iter_mut().for_each(|v| *v += sum);
            for (depth, cols) in &self.flat {
                let v = ar[*depth] as i32;
                if v != 0 {
                    cols.iter().for_each(|&j| row[j] -= v);
                }
            }
        }
        tail(lc, &floor, bc, yc);
    }

    /// The three layers on `t` examples into `dst`, each with its own products; integer
    /// layers take their three inputs' codes from one pass over `x` ([`gemm::input_codes3`]).
    fn separately(&self, x: &[f32], t: usize, dst: [&mut [f32]; 3]) {
        let [ln, lf, lc] = &self.layers;
        let (Some(bn), Some(bf), Some(bc), LayerKind::Linear { d_in, d_out, relu, residual }) =
            (int(ln), int(lf), int(lc), lf.kind.clone())
        else {
            return self.layers.iter().zip(dst).for_each(|(l, d)| l.run_into(self.kernel, x, t, d));
        };
        let packed = [bn, bf, bc];
        let mut codes = packed.map(|b| vec![0u8; t * b.kp]);
        let [an, af, ac] = &mut codes;
        let rows = an.chunks_exact_mut(bn.kp).zip(af.chunks_exact_mut(bf.kp)).zip(ac.chunks_exact_mut(bc.kp));
        for (((rn, rf), rc), xr) in rows.zip(x.chunks_exact(d_in)) {
            gemm::input_codes3(self.kernel, &lf.input, xr, [&mut rn[..d_in], &mut rf[..d_in], &mut rc[..d_in]]);
        }
        for (((l, b), a), y) in self.layers.iter().zip(packed).zip(&codes).zip(dst) {
            l.int_products_into(self.kernel, a, t, b, d_out, y);
            let seen = residual.then(|| l.seen(a, b.kp, d_in));
            linear_tail(y, seen.as_deref(), (d_in, d_out), relu);
        }
    }
}

/// A layer's integer weights, if it has them.
fn int(l: &Layer) -> Option<&PackedB> {
    match &l.weights {
        Weights::Int(b) => Some(b),
        Weights::Float(_) => None,
    }
}
