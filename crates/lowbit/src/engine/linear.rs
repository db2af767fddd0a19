//! A linear layer on the engine: its input quantized to codes, the integer GEMM, the rescale
//! per output, then ReLU and the identity path (the input as the layer saw it).

use super::{Layer, Weights};
use crate::gemm::{self, Kernel, PackedB};
use crate::scratch;
use std::cell::RefCell;

thread_local! {
    /// A linear layer's input codes (rows of `kp`).
    static CODES: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
    /// Its integer sums (rows of `np`).
    static SUMS: RefCell<Vec<i32>> = const { RefCell::new(Vec::new()) };
}

impl Layer {
    /// A linear layer into `dst`: products, then ReLU, then the identity path (the input as
    /// the layer saw it: quantized on the integer path).
    pub(super) fn run_linear(
        &self,
        kernel: Kernel,
        x: &[f32],
        t: usize,
        (d_in, d_out): (usize, usize),
        (relu, residual): (bool, bool),
        dst: &mut [f32],
    ) {
        let seen = match &self.weights {
            Weights::Int(b) => scratch::with(&CODES, t * b.kp, 0, |a| {
                for (ar, xr) in a.chunks_exact_mut(b.kp).zip(x.chunks_exact(d_in)) {
                    gemm::input_codes(kernel, &self.input, xr, &mut ar[..d_in]);
                    ar[d_in..].fill(0);
                }
                self.int_products_into(kernel, a, t, b, d_out, dst);
                residual.then(|| self.seen(a, b.kp, d_in))
            }),
            Weights::Float(w) => {
                self.float_products_into(w, x, d_in, d_out, dst);
                residual.then(|| x[..t * d_in].to_vec())
            }
        };
        linear_tail(dst, seen.as_deref(), (d_in, d_out), relu);
    }

    /// A linear layer's rescaled products of `t` rows of input codes `a` (rows of `b.kp`)
    /// into `dst`, before ReLU and the identity path.
    pub(super) fn int_products_into(
        &self,
        kernel: Kernel,
        a: &[u8],
        t: usize,
        b: &PackedB,
        d_out: usize,
        dst: &mut [f32],
    ) {
        scratch::with(&SUMS, t * b.np, 0, |c| {
            gemm::gemm(kernel, a, t, b, c);
            self.rescale_into(c, b, d_out, dst);
        });
    }
}

/// A linear layer's pre-activations `y` (`[t][d_out]`), in place, after ReLU (if `relu`),
/// plus the identity path `seen` (`[t][d_in]`) where there is one.
pub(super) fn linear_tail(y: &mut [f32], seen: Option<&[f32]>, (d_in, d_out): (usize, usize), relu: bool) {
    for (e, row) in y.chunks_exact_mut(d_out).enumerate() {
        for (r, v) in row.iter_mut().enumerate() {
            let u = if relu { v.max(0.0) } else { *v };
            *v = match seen {
                Some(sx) => u + sx[e * d_in + r],
                None => u,
            };
        }
    }
}
