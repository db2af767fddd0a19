//! A convolution on the engine (any kernel side and stride): im2col plus GEMM a few images
//! at a time (same padding: the input codes are padded with the zero point, which stands for
//! 0), then ReLU, the identity skip and pooling.

use super::patches::{im2col, im2col_pixels, to_pixels};
use super::pool::{max_pool_sums, relu_pool, relu_skip_pool};
use super::{Layer, Weights};
use crate::gemm::{self, Kernel, PackedB, direct};
use mpq_net::layout::{pad, pad_into};
use mpq_net::{Carry, LayerKind, Pool, Shortcut};

/// Images a convolution runs at a time.
const CONV_IMAGES: usize = 4;

/// What one group of images needs on the integer path, kept per thread and reused call
/// after call and group after group (allocating and zeroing it per call was a tenth of the
/// CNN's time). Each group writes every value it reads (the patches' padding columns
/// included), except the slack after `padded`, which only feeds sums that are discarded.
#[derive(Default)]
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
    /// A row of maxima per channel of a direct single-channel convolution (rows of
    /// `direct::out_stride`; empty unless the layer has tap pairs).
    rows: Vec<i32>,
}

thread_local! {
    /// This thread's [`Scratch`], between calls.
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

impl Scratch {
    /// Runs `f` on this thread's buffers, sized for groups of up to `images` images (their
    /// values are what the last user left).
    fn with<R>(kind: &LayerKind, b: &PackedB, images: usize, direct: bool, f: impl FnOnce(&mut Scratch) -> R) -> R {
        let Some(g) = kind.conv_geom() else { unreachable!("convolutions only") };
        let (c_in, c_out, side_in, o, side) = (g.c_in, g.c_out, g.side_in, g.o, g.side);
        let rows = images * o * o;
        let mut s = SCRATCH.with(|c| c.take());
        s.img.resize(c_in * side_in * side_in, 0);
        // 16 codes of slack: the direct kernel reads whole registers past the last pixel.
        s.padded.resize(c_in * side * side + 16, 0);
        s.pixels.resize(c_in * side * side, 0);
        // The direct kernel needs neither patches nor their sums.
        s.patches.resize(if direct { 0 } else { rows * b.kp }, 0);
        s.sums.resize(if direct { 0 } else { rows * b.np }, 0);
        s.pooled.resize(images * (o / 2) * (o / 2) * b.np, 0);
        s.rows.resize(if direct { c_out * direct::out_stride(o) } else { 0 }, 0);
        let r = f(&mut s);
        SCRATCH.with(|c| c.replace(s));
        r
    }
}

impl Layer {
    /// The convolution on `t` images of `x`, into `dst` (`t` output rows). A few images at
    /// a time: the unfolded codes, sums and pre-activations of a whole chunk (megabytes for
    /// the first layer) were written to fresh memory each call; a few images' worth stays
    /// in cache and leaves the results unchanged.
    pub(super) fn run_conv(&self, kernel: Kernel, x: &[f32], t: usize, dst: &mut [f32]) {
        let LayerKind::Conv { c_out, .. } = self.kind else { return };
        let (per, width) = (self.kind.input_width(), self.kind.output_width());
        let groups = x[..t * per].chunks(CONV_IMAGES * per).zip(dst.chunks_mut(CONV_IMAGES * width));
        match &self.weights {
            Weights::Int(b) => {
                // The rescaling is increasing where every output scale is positive: the
                // largest sum of a window rescales to the largest value, so a max-pool can
                // pool the sums and rescale a quarter of them, with the same results.
                let increasing = self.out_scale[..c_out].iter().all(|s| s.is_finite() && *s > 0.0);
                let direct = self.direct_pooled(increasing);
                Scratch::with(&self.kind, b, t.min(CONV_IMAGES), direct, |s| {
                    for (g, d) in groups {
                        self.int_group(kernel, b, (g, g.len() / per), s, increasing, d);
                    }
                });
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
        let LayerKind::Conv { c_out, residual, pool, carry, .. } = self.kind else { return };
        if self.direct_pooled(increasing) {
            return self.direct_group(kernel, (x, t), s, b, dst);
        }
        let o = self.kind.conv_side();
        let m = t * o * o;
        // The skip adds (and an opened two-layer skip passes on) the input as the layer saw
        // it: quantized.
        let keep = residual || carry == Carry::Open;
        let mut seen = if keep { vec![0f32; t * self.kind.own_input_width()] } else { Vec::new() };
        if pool == Pool::Max2 && increasing && carry == Carry::None {
            // A floor max-pool reads only the top-left 2p x 2p sums: the others (the last
            // row and column of an odd side) are not computed.
            let p = o / 2;
            self.int_sums(kernel, b, (x, t), 2 * p, s, &mut seen);
            max_pool_sums(kernel, &s.sums, b.np, (t, c_out), 2 * p, &mut s.pooled);
            self.rescale_relu_planes(&s.pooled[..t * c_out * p * p], b, c_out, p * p, dst);
            return;
        }
        self.int_sums(kernel, b, (x, t), o, s, &mut seen);
        self.conv_tail(self.rescale(&s.sums[..m * b.np], b, m, c_out), x, &seen, dst);
    }

    /// [`Layer::run_conv`] on one group of `t` images with f32 weights.
    fn float_group(&self, w: &[f32], x: &[f32], t: usize, dst: &mut [f32]) {
        let LayerKind::Conv { residual, .. } = self.kind else { return };
        let Some(g) = self.kind.conv_geom() else { return };
        let (o, per, k, c_out) = (g.o, self.kind.input_width(), g.depth(), g.c_out);
        let own = self.kind.own_input_width();
        let m = t * o * o;
        let mut a = vec![0f32; m * k];
        for (e, row) in x.chunks_exact(per).enumerate() {
            let (xe, dst) = (&row[..own], &mut a[e * o * o * k..]);
            if g.pad > 0 {
                im2col(&pad(xe, g.c_in, g.side_in, g.pad, 0.0), &g, k, dst);
            } else {
                im2col(xe, &g, k, dst);
            }
        }
        let keep = residual || self.kind.carry() == Carry::Open;
        let seen: std::borrow::Cow<[f32]> = match keep {
            false => (&[][..]).into(),
            true if per == own => (&x[..t * per]).into(),
            true => x.chunks_exact(per).flat_map(|row| row[..own].iter().copied()).collect::<Vec<_>>().into(),
        };
        self.conv_tail(self.float_products(w, &a, m, k, c_out), x, &seen, dst);
    }

    /// The shortcut of a carried input (the rest of each row of `x`) where the layer closes a
    /// two-layer skip; ReLU, the identity skip and pooling of the images' pre-activations `y`
    /// (pixel-major), into `dst` channel-major, each row followed by the layer's input as it
    /// saw it (`seen`) where the layer opens a two-layer skip.
    fn conv_tail(&self, mut y: Vec<f32>, x: &[f32], seen: &[f32], dst: &mut [f32]) {
        let LayerKind::Conv { c_out, pool, residual, carry, .. } = self.kind else { return };
        let (o, per, own_out) = (self.kind.conv_side(), self.kind.input_width(), self.kind.own_output_width());
        let t = y.len() / (o * o * c_out).max(1);
        if let Some(sc) = self.kind.shortcut() {
            add_shortcut(&sc, x, self.kind.own_input_width(), per, &mut y);
        }
        let skip = if residual { seen } else { &[][..] };
        // A skip never meets a max-pool (refused when the layer is built).
        let out = match pool {
            Pool::Max2 => relu_pool(&y, t, c_out, o),
            Pool::None | Pool::GlobalAvg | Pool::Avg2 => relu_skip_pool(&y, skip, t, c_out, o, pool),
        };
        if carry != Carry::Open {
            return dst.copy_from_slice(&out);
        }
        let own = self.kind.own_input_width();
        for ((row, o), s) in dst.chunks_exact_mut(own_out + own).zip(out.chunks_exact(own_out)).zip(seen.chunks(own)) {
            row[..own_out].copy_from_slice(o);
            row[own_out..].copy_from_slice(s);
        }
    }

    /// The integer sums of the top-left `o` x `o` outputs of `t` images into `s.sums`
    /// (pixel-major rows of `b.np`), and the input as the layer saw it into `seen` where
    /// there is a skip or the layer opens a two-layer skip.
    fn int_sums(
        &self,
        kernel: Kernel,
        b: &PackedB,
        (x, t): (&[f32], usize),
        o: usize,
        s: &mut Scratch,
        seen: &mut [f32],
    ) {
        let LayerKind::Conv { residual, carry, .. } = self.kind else { return };
        let Some(g) = self.kind.conv_geom() else { return };
        let (c_in, side_in, side) = (g.c_in, g.side_in, g.side);
        let (per, own) = (self.kind.input_width(), self.kind.own_input_width());
        let zero = self.input.zero as u8;
        for (e, row) in x.chunks_exact(per).enumerate() {
            gemm::input_codes(kernel, &self.input, &row[..own], &mut s.img);
            if residual || carry == Carry::Open {
                let (z, sc) = (self.input.zero, self.input.scale);
                let dst = &mut seen[e * own..(e + 1) * own];
                dst.iter_mut().zip(&s.img).for_each(|(d, &c)| *d = (c as i32 - z) as f32 * sc);
            }
            // Pixel-major, so that a patch row is `k` runs of channels (the weights' depths
            // are in the same order).
            if g.pad > 0 {
                pad_into(&s.img, c_in, side_in, g.pad, zero, &mut s.padded);
                to_pixels(&s.padded, c_in, side, &mut s.pixels);
            } else {
                to_pixels(&s.img, c_in, side, &mut s.pixels);
            }
            im2col_pixels(&s.pixels, &g.with_outputs(o), b.kp, &mut s.patches[e * o * o * b.kp..]);
        }
        let m = t * o * o;
        gemm::gemm(kernel, &s.patches[..m * b.kp], m, b, &mut s.sums[..m * b.np]);
    }

    /// Whether the layer runs [`Layer::direct_group`]: tap pairs, a 2x2 max-pool that can
    /// pool the sums (`increasing` rescaling), and no skip.
    fn direct_pooled(&self, increasing: bool) -> bool {
        let LayerKind::Conv { residual, pool, carry, .. } = self.kind else { return false };
        !self.taps.is_empty() && pool == Pool::Max2 && increasing && !residual && carry == Carry::None
    }

    /// [`Layer::int_group`] of a single-channel convolution computed directly: per image,
    /// the codes (padded with the zero point for same padding) and the 2x2 max-pool of their
    /// sums; then the rescaled ReLU of the pooled sums, as the GEMM path does.
    fn direct_group(&self, kernel: Kernel, (x, t): (&[f32], usize), s: &mut Scratch, b: &PackedB, dst: &mut [f32]) {
        let Some(g) = self.kind.conv_geom() else { return };
        let (c_out, side_in, same, o, side, per) = (g.c_out, g.side_in, g.pad > 0, g.o, g.side, g.side_in * g.side_in);
        let p = o / 2;
        for (e, xe) in x[..t * per].chunks_exact(per).enumerate() {
            // A valid convolution's codes go straight where the kernel reads them.
            if same {
                gemm::input_codes(kernel, &self.input, xe, &mut s.img);
                pad_into(&s.img, 1, side_in, g.pad, self.input.zero as u8, &mut s.padded);
            } else {
                gemm::input_codes(kernel, &self.input, xe, &mut s.padded[..per]);
            }
            let pooled = &mut s.pooled[e * c_out * p * p..][..c_out * p * p];
            let done = direct::single_channel_pooled(kernel, &s.padded, side, &self.taps, c_out, (&mut s.rows, pooled));
            assert!(done, "tap pairs are built only for kernels with a direct kernel");
        }
        self.rescale_relu_planes(&s.pooled[..t * c_out * p * p], b, c_out, p * p, dst);
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

/// Adds the shortcut of each image's carried input (`x`'s rows of `per` values after the
/// first `own`) to its pre-activations in `y` (pixel-major, `[image][pixel][c_out]`): the
/// values [`Shortcut::add`] adds on the host, +0 in the zero channels.
fn add_shortcut(sc: &Shortcut, x: &[f32], own: usize, per: usize, y: &mut [f32]) {
    let plane = sc.o * sc.o;
    let mut s = vec![0f32; sc.c_out * plane];
    for (row, ye) in x.chunks_exact(per).zip(y.chunks_exact_mut(plane * sc.c_out)) {
        s.fill(0.0);
        sc.add(&row[own..], &mut s);
        for (p, px) in ye.chunks_exact_mut(sc.c_out).enumerate() {
            px.iter_mut().enumerate().for_each(|(co, v)| *v += s[co * plane + p]);
        }
    }
}
