//! The integer inference engine. Each quantized layer quantizes its input with the plan's
//! rounding to u8 codes, multiplies them with the i8 weight codes in an integer GEMM
//! (`gemm.rs`: AVX-512 VNNI, AVX-VNNI, AVX2, NEON `sdot` or portable, chosen at run time) with
//! exact i32 sums, and rescales once per output: `(acc - zero * colsum) * s_x * s_w + b`.
//! Convolutions run as im2col followed by the same GEMM. Full-precision layers run in f32.
//! Batches are cut into chunks of examples that run through every layer in parallel (rayon).

use crate::LowbitError;
use crate::format::{QLayer, QModel};
use crate::gemm::{InputQuant, Kernel, PackedB, direct};
use crate::pack;
use crate::scratch;
use mpq_net::LayerKind;
use rayon::prelude::*;

mod conv;
mod linear;
mod patches;
mod pool;
mod roundings;
use patches::pixel_major_depths;
pub use roundings::Roundings;

enum Weights {
    Int(PackedB),
    Float(Vec<f32>),
}

struct Layer {
    kind: LayerKind,
    input: InputQuant,
    weights: Weights,
    /// Per output: s_x * s_w (quantized) or 1 (float).
    out_scale: Vec<f32>,
    bias: Vec<f32>,
    /// A single-channel convolution's weights as tap pairs where the kernel computes it
    /// directly ([`crate::gemm::direct`]); empty otherwise.
    taps: Vec<i32>,
}

/// A packed model with its codes unpacked once, ready to run.
pub struct Engine {
    layers: Vec<Layer>,
    kernel: Kernel,
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
    fn from(l: &QLayer, kernel: Kernel) -> Result<Layer, LowbitError> {
        let (rows, cols) = l.kind.weight_shape();
        let unsupported = |what: String| Err(LowbitError::Unsupported(format!("layer {}: {what}", l.name)));
        if l.rounding.is_stochastic() {
            return unsupported("stochastic input rounding cannot run on the engine".into());
        }
        let input = InputQuant { scale: l.in_scale, zero: l.in_zero, qmax: l.in_qmax, round: l.rounding };
        if let Err(why) = l.kind.check() {
            return unsupported(format!("cannot run: {why}"));
        }
        let mut taps = Vec::new();
        let (weights, out_scale) = if l.bits >= 32 {
            (Weights::Float(l.weights.clone()), vec![1.0; rows])
        } else if l.bits > 8 {
            return unsupported(format!("{}-bit codes do not fit the 8-bit kernels", l.bits));
        } else {
            if !(1..=255).contains(&l.in_qmax)
                || !(0..=l.in_qmax).contains(&l.in_zero)
                || l.in_scale.is_nan()
                || l.in_scale <= 0.0
            {
                return unsupported(format!(
                    "input quantization (scale {}, zero {}, largest code {}) does not fit u8 codes",
                    l.in_scale, l.in_zero, l.in_qmax
                ));
            }
            let s = |r: usize| l.scales.get(r).or(l.scales.first()).copied().unwrap_or(1.0);
            let mut codes = pack::unpack(&l.codes, rows * cols, l.bits.get());
            if let Some(g) = l.kind.conv_geom() {
                codes = pixel_major_depths(&codes, g.c_in, g.taps());
                if g.c_in == 1 && g.is_3x3_stride1() && direct::has_single_channel(kernel) {
                    taps = direct::tap_pairs(&codes, rows);
                }
            }
            (
                Weights::Int(PackedB::new(kernel, &codes, rows, cols, l.bits.get())),
                (0..rows).map(|r| l.in_scale * s(r)).collect(),
            )
        };
        Ok(Layer { kind: l.kind.clone(), input, weights, out_scale, bias: l.bias.clone(), taps })
    }

    /// `(acc - zero * colsum) * s_x * s_w + b` for the first `n` of `b.np` sums in `m` rows.
    fn rescale(&self, c: &[i32], b: &PackedB, m: usize, n: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        self.rescale_into(c, b, n, &mut y);
        y
    }

    /// [`Layer::rescale`] into `y`, rows of `n`.
    fn rescale_into(&self, c: &[i32], b: &PackedB, n: usize, y: &mut [f32]) {
        let z = self.input.zero;
        let (colsum, scale, bias) = (&b.colsum[..n], &self.out_scale[..n], &self.bias[..n]);
        // Zipped rather than indexed: without bounds checks the loop vectorizes.
        for (yr, cr) in y.chunks_exact_mut(n).zip(c.chunks_exact(b.np)) {
            let cols = cr.iter().zip(colsum).zip(scale.iter().zip(bias));
            for (v, ((&acc, &cs), (&s, &bb))) in yr.iter_mut().zip(cols) {
                *v = (acc - z * cs) as f32 * s + bb;
            }
        }
    }

    /// The input as the layer saw it: the first `d_in` of each row's `kp` codes, dequantized.
    fn seen(&self, a: &[u8], kp: usize, d_in: usize) -> Vec<f32> {
        let (z, s) = (self.input.zero, self.input.scale);
        a.chunks_exact(kp).flat_map(|r| r[..d_in].iter().map(|&c| (c as i32 - z) as f32 * s)).collect()
    }

    /// Pre-activations `[m][n]` of `m` f32 rows (`k` values each).
    fn float_products(&self, w: &[f32], a: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut y = vec![0f32; m * n];
        self.float_products_into(w, a, k, n, &mut y);
        y
    }

    /// [`Layer::float_products`] into `y`, rows of `n`.
    fn float_products_into(&self, w: &[f32], a: &[f32], k: usize, n: usize, y: &mut [f32]) {
        for (yr, ar) in y.chunks_exact_mut(n).zip(a.chunks_exact(k)) {
            for j in 0..n {
                yr[j] = dot_f32(&w[j * k..(j + 1) * k], ar) * self.out_scale[j] + self.bias[j];
            }
        }
    }

    /// The layer on `t` examples stored one after another in `x`, into `dst` (`t` rows of
    /// the layer's output width, every value written).
    fn run_into(&self, kernel: Kernel, x: &[f32], t: usize, dst: &mut [f32]) {
        match self.kind {
            LayerKind::Linear { d_in, d_out, relu, residual } => {
                self.run_linear(kernel, x, t, (d_in, d_out), (relu, residual), dst)
            }
            LayerKind::Conv { .. } => self.run_conv(kernel, x, t, dst),
        }
    }
}

thread_local! {
    /// The outputs of the layers between the first and the last, in turn.
    static HIDDEN_A: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
    static HIDDEN_B: std::cell::RefCell<Vec<f32>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `len` zeros, written in parallel where there are many: a buffer that chunks then fill.
fn zeros(len: usize) -> Vec<f32> {
    if len < 1 << 16 {
        return vec![0f32; len];
    }
    let mut v = Vec::with_capacity(len);
    v.par_extend(rayon::iter::repeat_n(0f32, len));
    v
}

/// An error unless this CPU runs `kernel` (the kernels assert it; engines refuse first).
fn usable(kernel: Kernel) -> Result<(), LowbitError> {
    if kernel.supported() {
        return Ok(());
    }
    Err(LowbitError::Unsupported(format!("kernel {} is not supported by this CPU", kernel.name())))
}

/// Examples per parallel chunk of a forward pass of `n`: about four chunks per thread, in
/// multiples of the kernel's register-block rows.
fn chunk_rows(kernel: Kernel, n: usize) -> usize {
    let per = n.div_ceil(4 * rayon::current_num_threads()).max(1);
    let rows = crate::gemm::block_rows(kernel);
    if per >= rows { per.div_ceil(rows) * rows } else { per }
}

impl Engine {
    /// Unpacks the codes of every layer and packs them for the fastest kernel this CPU has
    /// (4-bit codes stay two per byte for `vnni512`).
    pub fn new(m: &QModel) -> Result<Engine, LowbitError> {
        Engine::with_kernel(m, Kernel::detect())
    }

    /// As [`Engine::new`] with a chosen kernel (benchmarks and tests compare them).
    pub fn with_kernel(m: &QModel, kernel: Kernel) -> Result<Engine, LowbitError> {
        usable(kernel)?;
        let layers = m.layers.iter().map(|l| Layer::from(l, kernel)).collect::<Result<_, _>>()?;
        for pair in m.layers.windows(2) {
            mpq_net::chain::chain_check(&pair[0].kind, &pair[1].kind)
                .map_err(|why| LowbitError::Unsupported(format!("layer {}: {why}", pair[1].name)))?;
        }
        Ok(Engine { layers, kernel })
    }

    /// The kernel the products run on.
    pub fn kernel(&self) -> Kernel {
        self.kernel
    }

    /// The last layer's outputs for `n` inputs of the first layer stored one after another
    /// (for a whole model: logits `[n, 10]` of `n` flattened 28x28 images in [0, 1]).
    pub fn forward(&self, x: &[f32], n: usize) -> Vec<f32> {
        let Some((last, init)) = self.layers.split_last() else { return x.to_vec() };
        let width = (x.len() / n.max(1)).max(1);
        let (per, out_width) = (chunk_rows(self.kernel, n), last.kind.output_width());
        // Every chunk writes its rows in place, into memory zeroed in parallel: joining
        // chunks' vectors at the end was a copy on one thread while the others waited.
        let mut out = zeros(x.len() / width * out_width);
        out.par_chunks_mut(out_width * per).zip(x.par_chunks(width * per)).for_each(|(dst, chunk)| {
            let t = chunk.len() / width;
            if init.is_empty() {
                return last.run_into(self.kernel, chunk, t, dst);
            }
            // The layers between pass their outputs through two buffers of this thread,
            // reused call after call (fresh ones were allocated and zeroed per layer).
            let most = init.iter().map(|l| t * l.kind.output_width()).max().unwrap_or(0);
            scratch::with(&HIDDEN_A, most, 0.0, |a| {
                scratch::with(&HIDDEN_B, most, 0.0, |b| {
                    let (mut h, mut next) = (a, b);
                    let mut input: &[f32] = chunk;
                    for l in init {
                        let w = t * l.kind.output_width();
                        l.run_into(self.kernel, input, t, &mut h[..w]);
                        std::mem::swap(&mut h, &mut next);
                        input = &next[..w];
                    }
                    last.run_into(self.kernel, input, t, dst);
                })
            })
        });
        out
    }
}

#[cfg(test)]
mod tests {
    use super::pool::{max_pool_sums, relu_pool};
    use super::*;

    /// Pooling a layer's integer sums and rescaling the maxima gives what rescaling every
    /// sum and pooling the values gives, bit for bit, also where neighbouring sums round to
    /// the same f32 (above 2^24) and with a zero point.
    #[test]
    fn pooling_the_sums_first_changes_nothing() {
        let (c_in, c_out, side_in, t) = (2, 8, 9, 3);
        let mut seed = 5u64;
        let mut next = || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as i64
        };
        let codes: Vec<i32> = (0..c_out * c_in * 9).map(|_| (next() % 255 - 127) as i32).collect();
        let l = QLayer {
            name: "conv".into(),
            kind: LayerKind::lenet_conv(c_in, c_out, side_in),
            bits: mpq_net::BitWidth::of::<8>(),
            rounding: mpq_net::Rounding::Nearest,
            in_scale: 0.013,
            in_zero: 7,
            in_qmax: 255,
            codes: pack::pack(&codes, 8),
            weights: vec![],
            scales: (0..c_out).map(|_| 1e-3 + (next() % 100) as f32 * 1e-4).collect(),
            bias: (0..c_out).map(|_| (next() % 200 - 100) as f32 * 0.01).collect(),
            sizes: [0; 4],
        };
        let layer = Layer::from(&l, Kernel::Portable).unwrap();
        let Weights::Int(b) = &layer.weights else { panic!("an 8-bit layer has integer weights") };
        let o = l.kind.conv_side();
        let c: Vec<i32> = (0..t * o * o * b.np)
            .map(|i| if i % 3 == 0 { (1 << 25) + (next() % 9) as i32 } else { (next() % 80_000 - 40_000) as i32 })
            .collect();
        let want = relu_pool(&layer.rescale(&c, b, t * o * o, c_out), t, c_out, o);
        let p = o / 2;
        for kernel in Kernel::ALL.into_iter().filter(|k| k.supported()) {
            let mut pooled = vec![0i32; t * c_out * p * p];
            max_pool_sums(kernel, &c, b.np, (t, c_out), o, &mut pooled);
            let mut got = vec![0f32; t * c_out * p * p];
            layer.rescale_relu_planes(&pooled, b, c_out, p * p, &mut got);
            assert_eq!(
                got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                want.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                "{}",
                kernel.name()
            );
        }
    }
}
