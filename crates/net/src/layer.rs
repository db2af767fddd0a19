//! The layer kinds and their shapes: what every executor (burn's `Net`, the f32 host
//! network, the integer engine) and the packed-model file describe a layer with.

use crate::carry::{Carry, Shortcut};
use serde::{Deserialize, Serialize};

/// What pools a convolution's output, after its ReLU and identity skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Pool {
    /// 2x2 max-pool, stride 2 (floor).
    #[default]
    Max2,
    /// No pooling: the output keeps the convolution's side.
    None,
    /// Global average pooling: one value per channel (the mean in row-major order).
    GlobalAvg,
    /// 2x2 average pool, stride 2 (floor; LeNet-5's subsampling, ONNX's AveragePool).
    Avg2,
}

/// What one quantizable layer computes, after its weight product. Serialized (in packed
/// model files) with a `type` tag: `{"type":"linear","d_in":784,...}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LayerKind {
    /// `y = x W + b`, then ReLU if `relu`, then `y + x` if `residual`.
    Linear {
        /// Input features.
        d_in: usize,
        /// Output features.
        d_out: usize,
        /// Whether a ReLU follows.
        relu: bool,
        /// Whether an identity skip adds the layer input.
        residual: bool,
    },
    /// `kernel` x `kernel` convolution with `stride` (valid, or same-padded with zeros), ReLU,
    /// then `y + x` if `residual`, then `pool`.
    Conv {
        /// Input channels.
        c_in: usize,
        /// Output channels.
        c_out: usize,
        /// Input height and width.
        side_in: usize,
        /// Same padding (`(kernel - 1) / 2` zeros on every border): at stride 1 the output
        /// keeps the input's side.
        #[serde(default)]
        same: bool,
        /// Side of the square kernel (3 unless said; 1 for a pointwise convolution).
        #[serde(default = "three", skip_serializing_if = "is_three")]
        kernel: usize,
        /// Step between windows in both directions (1 unless said).
        #[serde(default = "one", skip_serializing_if = "is_one")]
        stride: usize,
        /// Whether an identity skip adds the layer input (needs `same`, stride 1, `c_in == c_out`).
        #[serde(default)]
        residual: bool,
        /// The pooling that follows.
        #[serde(default)]
        pool: Pool,
        /// Its part in a skip that spans two layers (written only where it has one).
        #[serde(default, skip_serializing_if = "is_none")]
        carry: Carry,
    },
}

fn is_none(c: &Carry) -> bool {
    *c == Carry::None
}

fn three() -> usize {
    3
}

fn one() -> usize {
    1
}

fn is_three(k: &usize) -> bool {
    *k == 3
}

fn is_one(s: &usize) -> bool {
    *s == 1
}

/// Where a convolution's windows lie: what im2col, the weight layout and every executor's
/// loops read, computed once from the layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConvGeom {
    /// Input channels.
    pub c_in: usize,
    /// Output channels.
    pub c_out: usize,
    /// Input side before padding.
    pub side_in: usize,
    /// Kernel side.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Zeros on each border.
    pub pad: usize,
    /// Input side after padding.
    pub side: usize,
    /// Output side (before pooling).
    pub o: usize,
}

impl ConvGeom {
    /// Weights per output channel: `c_in * k * k`, in order `c * k * k + ky * k + kx`.
    pub fn depth(&self) -> usize {
        self.c_in * self.k * self.k
    }

    /// Taps per input channel: `k * k`.
    pub fn taps(&self) -> usize {
        self.k * self.k
    }

    /// Whether this is the 3x3, stride-1 convolution the tuned kernels serve.
    pub fn is_3x3_stride1(&self) -> bool {
        self.k == 3 && self.stride == 1
    }

    /// The geometry with an output side of `o` (the top-left `o` x `o` windows).
    pub fn with_outputs(self, o: usize) -> ConvGeom {
        ConvGeom { o, ..self }
    }
}

impl LayerKind {
    /// The classic LeNet block: valid 3x3 convolution, ReLU, 2x2 max-pool.
    pub fn lenet_conv(c_in: usize, c_out: usize, side_in: usize) -> LayerKind {
        LayerKind::conv3(c_in, c_out, side_in, false, false, Pool::Max2)
    }

    /// A 3x3 convolution with stride 1 (valid or same), then `pool`.
    pub fn conv3(c_in: usize, c_out: usize, side_in: usize, same: bool, residual: bool, pool: Pool) -> LayerKind {
        LayerKind::Conv { c_in, c_out, side_in, same, kernel: 3, stride: 1, residual, pool, carry: Carry::None }
    }

    /// A convolution of any kernel side and stride, without skips, then `pool`.
    pub fn conv(
        c_in: usize,
        c_out: usize,
        side_in: usize,
        same: bool,
        kernel: usize,
        stride: usize,
        pool: Pool,
    ) -> LayerKind {
        LayerKind::Conv { c_in, c_out, side_in, same, kernel, stride, residual: false, pool, carry: Carry::None }
    }

    /// A ResNet's layer: a same-padded 3x3 convolution with `stride`, then `pool`, with its
    /// part in a two-layer skip.
    pub fn block(c_in: usize, c_out: usize, side_in: usize, stride: usize, pool: Pool, carry: Carry) -> LayerKind {
        LayerKind::Conv { c_in, c_out, side_in, same: true, kernel: 3, stride, residual: false, pool, carry }
    }

    /// A convolution's geometry (`None` for a linear layer).
    pub fn conv_geom(&self) -> Option<ConvGeom> {
        let LayerKind::Conv { c_in, c_out, side_in, same, kernel: k, stride, .. } = *self else { return None };
        let pad = if same { k.saturating_sub(1) / 2 } else { 0 };
        let side = side_in + 2 * pad;
        let o = if side < k || stride == 0 { 0 } else { (side - k) / stride + 1 };
        Some(ConvGeom { c_in, c_out, side_in, k, stride, pad, side, o })
    }

    /// Why the layer cannot run, if it cannot: an empty output, a kernel or stride of 0, a
    /// skip whose shapes differ, or a skip that meets a max-pool.
    pub fn check(&self) -> Result<(), String> {
        match *self {
            LayerKind::Linear { d_in, d_out, residual, .. } => {
                if d_in == 0 || d_out == 0 {
                    return Err(format!("a linear layer of {d_in} inputs and {d_out} outputs computes nothing"));
                }
                if residual && d_in != d_out {
                    return Err(format!("an identity skip needs as many outputs as inputs ({d_in} -> {d_out})"));
                }
                Ok(())
            }
            LayerKind::Conv { c_in, c_out, side_in, same, kernel, stride, residual, pool, carry } => {
                let Some(g) = self.conv_geom() else { return Ok(()) };
                match carry {
                    Carry::None => {}
                    Carry::Open if residual || pool != Pool::None => {
                        return Err("a layer that opens a two-layer skip has no skip of its own and no pool".into());
                    }
                    Carry::Open => {}
                    Carry::Close { .. } if residual => {
                        return Err("a layer that closes a two-layer skip has no identity skip of its own".into());
                    }
                    Carry::Close { c, side } => Shortcut { c, side, c_out, o: g.o }.check()?,
                }
                if kernel == 0 || stride == 0 || c_in == 0 || c_out == 0 {
                    return Err(format!(
                        "kernel {kernel}, stride {stride}, {c_in} -> {c_out} channels computes nothing"
                    ));
                }
                if same && kernel % 2 == 0 {
                    return Err(format!("same padding needs an odd kernel, not {kernel}"));
                }
                if g.o == 0 || (matches!(pool, Pool::Max2 | Pool::Avg2) && g.o < 2) {
                    return Err(format!(
                        "a {kernel}x{kernel} convolution (stride {stride}, same padding {same}) of side {side_in} then {pool:?} leaves no output"
                    ));
                }
                if residual && (g.o != side_in || c_in != c_out || pool == Pool::Max2) {
                    return Err(format!(
                        "an identity skip needs the output's shape to equal the input's and no max-pool ({c_in}x{side_in}x{side_in} -> {c_out}x{o}x{o}, pool {pool:?})",
                        o = g.o
                    ));
                }
                Ok(())
            }
        }
    }

    /// Side of a convolution's output before pooling (0 for a linear layer).
    pub fn conv_side(&self) -> usize {
        self.conv_geom().map_or(0, |g| g.o)
    }

    /// Values per example entering the layer: its own input, then any carried one.
    pub fn input_width(&self) -> usize {
        self.own_input_width() + self.carry().closing_width()
    }

    /// Values per example of the layer's own input (what it quantizes and multiplies).
    pub fn own_input_width(&self) -> usize {
        match *self {
            LayerKind::Conv { c_in, side_in, .. } => c_in * side_in * side_in,
            LayerKind::Linear { d_in, .. } => d_in,
        }
    }

    /// The layer's part in a two-layer skip.
    pub fn carry(&self) -> Carry {
        match *self {
            LayerKind::Conv { carry, .. } => carry,
            LayerKind::Linear { .. } => Carry::None,
        }
    }

    /// The shortcut a [`Carry::Close`] layer adds (`None` otherwise).
    pub fn shortcut(&self) -> Option<Shortcut> {
        match (self.carry(), self.conv_geom()) {
            (Carry::Close { c, side }, Some(g)) => Some(Shortcut { c, side, c_out: g.c_out, o: g.o }),
            _ => None,
        }
    }

    /// Values per example leaving the layer: its own output, then its input where it opens a
    /// two-layer skip.
    pub fn output_width(&self) -> usize {
        self.own_output_width() + if self.carry() == Carry::Open { self.own_input_width() } else { 0 }
    }

    /// Values per example of the layer's own output (after ReLU, skip and pooling).
    pub fn own_output_width(&self) -> usize {
        match *self {
            LayerKind::Conv { c_out, pool, .. } => {
                let s = self.conv_side();
                c_out
                    * match pool {
                        Pool::Max2 | Pool::Avg2 => (s / 2) * (s / 2),
                        Pool::None => s * s,
                        Pool::GlobalAvg => 1,
                    }
            }
            LayerKind::Linear { d_out, .. } => d_out,
        }
    }

    /// (rows, cols) of the weight as the engine stores it: `[d_out][d_in]` for a linear
    /// layer, `[c_out][c_in * k * k]` for a convolution (one row per output).
    pub fn weight_shape(&self) -> (usize, usize) {
        match *self {
            LayerKind::Linear { d_in, d_out, .. } => (d_out, d_in),
            LayerKind::Conv { c_in, c_out, kernel, .. } => (c_out, c_in * kernel * kernel),
        }
    }

    /// Number of weights (without bias).
    pub fn weight_count(&self) -> usize {
        let (rows, cols) = self.weight_shape();
        rows * cols
    }

    /// Number of outputs of the weight product: one bias and one weight row each.
    pub fn outputs(&self) -> usize {
        self.weight_shape().0
    }

    /// Whether an identity skip adds the layer's input to its output.
    pub fn residual(&self) -> bool {
        match *self {
            LayerKind::Conv { residual, .. } | LayerKind::Linear { residual, .. } => residual,
        }
    }

    /// Whether the layer is a convolution.
    pub fn is_conv(&self) -> bool {
        matches!(self, LayerKind::Conv { .. })
    }
}

/// One layer of an architecture.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct LayerSpec {
    /// Stable name (`fc1`, `conv2`, `block3`).
    pub name: String,
    /// What it computes.
    pub kind: LayerKind,
}

/// The ordered layers of a network: what every executor is built from.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Arch {
    /// Layers in forward order.
    pub layers: Vec<LayerSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let c = LayerKind::lenet_conv(1, 8, 28);
        assert_eq!((c.conv_side(), c.input_width(), c.output_width()), (26, 784, 8 * 13 * 13));
        assert_eq!((c.weight_shape(), c.weight_count(), c.outputs()), ((8, 9), 72, 8));
        let same = LayerKind::conv3(4, 4, 7, true, true, Pool::GlobalAvg);
        assert_eq!((same.conv_side(), same.output_width(), same.residual()), (7, 4, true));
        let none = LayerKind::conv3(4, 4, 7, true, true, Pool::None);
        assert_eq!(none.output_width(), 4 * 49);
        let l = LayerKind::Linear { d_in: 5, d_out: 3, relu: true, residual: false };
        assert_eq!((l.conv_side(), l.input_width(), l.output_width(), l.weight_shape()), (0, 5, 3, (3, 5)));
        assert!(!l.is_conv() && c.is_conv());
        assert!([c.check(), same.check(), none.check(), l.check()].iter().all(Result::is_ok));
    }

    /// Output sides as PyTorch's `Conv2d` computes them (`(side + 2 pad - k) / stride + 1`),
    /// the weight shape of a pointwise and a strided convolution, and the layers that cannot run.
    #[test]
    fn kernels_and_strides() {
        let conv = |side_in, same, kernel, stride| LayerKind::conv(2, 4, side_in, same, kernel, stride, Pool::None);
        for (side, same, k, s, o) in
            [(28, true, 3, 2, 14), (7, true, 3, 2, 4), (14, false, 3, 2, 6), (14, false, 1, 1, 14), (14, true, 1, 2, 7)]
        {
            let c = conv(side, same, k, s);
            assert_eq!(c.conv_side(), o, "side {side} same {same} kernel {k} stride {s}");
            assert_eq!(c.weight_shape(), (4, 2 * k * k));
            assert_eq!(c.output_width(), 4 * o * o);
            assert!(c.check().is_ok());
        }
        let g = conv(28, true, 3, 2).conv_geom().unwrap();
        assert_eq!((g.pad, g.side, g.depth(), g.taps(), g.is_3x3_stride1()), (1, 30, 18, 9, false));
        assert!(conv(2, false, 3, 1).check().unwrap_err().contains("no output"));
        assert!(conv(9, true, 2, 1).check().unwrap_err().contains("odd kernel"));
        assert!(conv(9, true, 3, 0).check().is_err());
        let skip = LayerKind::Conv {
            c_in: 4,
            c_out: 4,
            side_in: 8,
            same: true,
            kernel: 3,
            stride: 2,
            residual: true,
            pool: Pool::None,
            carry: Carry::None,
        };
        assert!(skip.check().unwrap_err().contains("identity skip"), "{:?}", skip.check());
        assert!(LayerKind::conv3(4, 4, 8, true, true, Pool::Max2).check().is_err());
    }

    /// The tagged form packed model files hold, with the defaults older files rely on.
    #[test]
    fn serialized_form() {
        let l = LayerKind::Linear { d_in: 3, d_out: 2, relu: true, residual: false };
        let s = serde_json::to_string(&l).unwrap();
        assert_eq!(s, r#"{"type":"linear","d_in":3,"d_out":2,"relu":true,"residual":false}"#);
        let c: LayerKind = serde_json::from_str(r#"{"type":"conv","c_in":1,"c_out":2,"side_in":28}"#).unwrap();
        assert_eq!(c, LayerKind::lenet_conv(1, 2, 28));
        assert!(!serde_json::to_string(&c).unwrap().contains("kernel"), "3x3 stride 1 files stay as they were");
        let p = LayerKind::conv(1, 2, 28, false, 1, 2, Pool::Max2);
        let s = serde_json::to_string(&p).unwrap();
        assert!(s.contains(r#""kernel":1,"stride":2"#), "{s}");
        assert_eq!(serde_json::from_str::<LayerKind>(&s).unwrap(), p);
        let g = LayerKind::conv3(2, 2, 5, true, true, Pool::GlobalAvg);
        assert!(serde_json::to_string(&g).unwrap().ends_with(r#""same":true,"residual":true,"pool":"global-avg"}"#));
    }
}
