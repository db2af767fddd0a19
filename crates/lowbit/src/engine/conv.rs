//! A 3x3 convolution on the engine: im2col plus GEMM a few images at a time (same padding:
//! the input codes are padded with the zero point, which stands for 0), then ReLU, the
//! identity skip and pooling.

use super::patches::{im2col, im2col_pixels, to_pixels};
use super::pool::{max_pool_sums, relu_pool, relu_skip_pool};
use super::{Layer, Weights};
use crate::gemm::{self, Kernel, PackedB};
use mpq_net::layout::{pad1, pad1_into};
use mpq_net::{LayerKind, Pool};

/// Images a convolution runs at a time.
const CONV_IMAGES: usize = 4;

/// What one group of images needs on the integer path, allocated once per call and reused
/// group after group. Each group writes every value it reads, except the patches' padding
/// columns, which no group writes and stay zero.
struct Scratch {
    /// One image's codes, channel-major.
    img: Vec<u8>,
    /// The same with a border of the zero point (same padding).
    padded: Vec<u8>,
    /// One (padded) image's codes, pixel-major.
    pixels: Vec<u8>,
    /// The group's patches, rows of `kp` codes.
    patches: Vec<u8>,
    /// Their integer sums, rows of `np`.
    sums: Vec<i32>,
    /// The sums after a 2x2 max-pool, channel-major.
    pooled: Vec<i32>,
}

impl Scratch {
    /// Buffers for groups of up to `images` images.
    fn new(kind: &LayerKind, b: &PackedB, images: usize) -> Scratch {
        let LayerKind::Conv { c_in, side_in, same, .. } = *kind else { unreachable!("convolutions only") };
        let (o, side) = (kind.conv_side(), if same { side_in + 2 } else { side_in });
        let rows = images * o * o;
        Scratch {
            img: vec![0; c_in * side_in * side_in],
            padded: vec![0; c_in * side * side],
            pixels: vec![0; c_in * side * side],
            patches: vec![0; rows * b.kp],
            sums: vec![0; rows * b.np],
            pooled: vec![0; images * (o / 2) * (o / 2) * b.np],
        }
    }
}

impl Layer {
    /// The convolution on `t` images of `x`, into `dst` (`t` output rows). A few images at
    /// a time: the unfolded codes, sums and pre-activations of a whole chunk (megabytes for
    /// the first layer) were written to fresh memory each call; a few images' worth stays
    /// in cache and leaves the results unchanged.
    pub(super) fn run_conv(&self, kernel: Kernel, x: &[f32], t: usize, dst: &mut [f32]) {
        let LayerKind::Conv { c_in, c_out, side_in, .. } = self.kind else { return };
        let (per, width) = (c_in * side_in * side_in, self.kind.output_width());
        let groups = x[..t * per].chunks(CONV_IMAGES * per).zip(dst.chunks_mut(CONV_IMAGES * width));
        match &self.weights {
            Weights::Int(b) => {
                let mut s = Scratch::new(&self.kind, b, t.min(CONV_IMAGES));
                // The rescaling is increasing where every output scale is positive: the
                // largest sum of a window rescales to the largest value, so a max-pool can
                // pool the sums and rescale a quarter of them, with the same results.
                let increasing = self.out_scale[..c_out].iter().all(|s| s.is_finite() && *s > 0.0);
                for (g, d) in groups {
                    self.int_group(kernel, b, (g, g.len() / per), &mut s, increasing, d);
                }
            }
            Weights::Float(w) => groups.for_each(|(g, d)| self.float_group(w, g, g.len() / per, d)),
        }
    }

    /// [`Layer::run_conv`] on one group of `t` images with integer weights.
    fn int_group(
        &self,
        kernel: Kernel,
        b: &PackedB,
        (x, t): (&[f32], usize),
        s: &mut Scratch,
        increasing: bool,
        dst: &mut [f32],
    ) {
        let LayerKind::Conv { c_in, c_out, side_in, residual, pool, .. } = self.kind else { return };
        let o = self.kind.conv_side();
        let m = t * o * o;
        // The skip adds the input as the layer saw it: quantized.
        let mut seen = if residual { vec![0f32; t * c_in * side_in * side_in] } else { Vec::new() };
        self.int_sums(kernel, b, x, t, s, &mut seen);
        if pool == Pool::Max2 && increasing {
            let p = o / 2;
            max_pool_sums(kernel, &s.sums, b.np, (t, c_out), o, &mut s.pooled);
            self.rescale_relu_planes(&s.pooled[..t * c_out * p * p], b, c_out, p * p, dst);
            return;
        }
        self.conv_tail(&self.rescale(&s.sums[..m * b.np], b, m, c_out), &seen, t, dst);
    }

    /// [`Layer::run_conv`] on one group of `t` images with f32 weights.
    fn float_group(&self, w: &[f32], x: &[f32], t: usize, dst: &mut [f32]) {
        let LayerKind::Conv { c_in, c_out, side_in, same, residual, .. } = self.kind else { return };
        let (o, per, k) = (self.kind.conv_side(), c_in * side_in * side_in, c_in * 9);
        let side = if same { side_in + 2 } else { side_in };
        let m = t * o * o;
        let mut a = vec![0f32; m * k];
        for (e, xe) in x.chunks_exact(per).enumerate() {
            let dst = &mut a[e * o * o * k..];
            if same {
                im2col(&pad1(xe, c_in, side_in, 0.0), c_in, side, k, dst);
            } else {
                im2col(xe, c_in, side, k, dst);
            }
        }
        let seen = if residual { &x[..t * per] } else { &[][..] };
        self.conv_tail(&self.float_products(w, &a, m, k, c_out), seen, t, dst);
    }

    /// ReLU, the skip (`seen`, empty without one) and pooling of `t` images of
    /// pre-activations `y` (pixel-major), into `dst` channel-major.
    fn conv_tail(&self, y: &[f32], seen: &[f32], t: usize, dst: &mut [f32]) {
        let LayerKind::Conv { c_out, pool, .. } = self.kind else { return };
        let o = self.kind.conv_side();
        // A skip never meets a max-pool (refused when the layer is built).
        let out = match pool {
            Pool::Max2 => relu_pool(y, t, c_out, o),
            Pool::None | Pool::GlobalAvg => relu_skip_pool(y, seen, t, c_out, o, pool == Pool::GlobalAvg),
        };
        dst.copy_from_slice(&out);
    }

    /// The integer sums of `t` images into `s.sums` (pixel-major rows of `b.np`), and the
    /// input as the layer saw it into `seen` where there is a skip.
    fn int_sums(&self, kernel: Kernel, b: &PackedB, x: &[f32], t: usize, s: &mut Scratch, seen: &mut [f32]) {
        let LayerKind::Conv { c_in, side_in, same, residual, .. } = self.kind else { return };
        let (o, per) = (self.kind.conv_side(), c_in * side_in * side_in);
        let side = if same { side_in + 2 } else { side_in };
        let zero = self.input.zero as u8;
        for (e, xe) in x.chunks_exact(per).enumerate() {
            gemm::input_codes(kernel, &self.input, xe, &mut s.img);
            if residual {
                let (z, sc) = (self.input.zero, self.input.scale);
                let dst = &mut seen[e * per..(e + 1) * per];
                dst.iter_mut().zip(&s.img).for_each(|(d, &c)| *d = (c as i32 - z) as f32 * sc);
            }
            // Pixel-major, so that a patch row is three runs of channels (the weights'
            // depths are in the same order).
            if same {
                pad1_into(&s.img, c_in, side_in, zero, &mut s.padded);
                to_pixels(&s.padded, c_in, side, &mut s.pixels);
            } else {
                to_pixels(&s.img, c_in, side, &mut s.pixels);
            }
            im2col_pixels(&s.pixels, c_in, side, b.kp, &mut s.patches[e * o * o * b.kp..]);
        }
        let m = t * o * o;
        gemm::gemm(kernel, &s.patches[..m * b.kp], m, b, &mut s.sums[..m * b.np]);
    }

    /// ReLU of the rescaled sums `c`, stored channel-major (`[image][c_out][plane]`), into
    /// `dst` in the same order: the values [`Layer::rescale`] and then [`relu_pool`] give,
    /// one channel's plane at a time (each with one scale and bias, so the loop vectorizes).
    pub(super) fn rescale_relu_planes(&self, c: &[i32], b: &PackedB, c_out: usize, plane: usize, dst: &mut [f32]) {
        let z = self.input.zero;
        let per = b.colsum[..c_out].iter().zip(&self.out_scale[..c_out]).zip(&self.bias[..c_out]).cycle();
        for ((d, cp), ((&cs, &s), &bb)) in dst.chunks_exact_mut(plane).zip(c.chunks_exact(plane)).zip(per) {
            for (v, &acc) in d.iter_mut().zip(cp) {
                *v = ((acc - z * cs) as f32 * s + bb).max(0.0);
            }
        }
    }
}
