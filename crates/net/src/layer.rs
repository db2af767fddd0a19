//! The layer kinds and their shapes: what every executor (burn's `Net`, the f32 host
//! network, the integer engine) and the packed-model file describe a layer with.

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
    /// 3x3 convolution (valid, or same-padded with zeros), ReLU, then `y + x` if
    /// `residual`, then `pool`.
    Conv {
        /// Input channels.
        c_in: usize,
        /// Output channels.
        c_out: usize,
        /// Input height and width.
        side_in: usize,
        /// Same padding (one zero on every border): the output keeps the input's side.
        #[serde(default)]
        same: bool,
        /// Whether an identity skip adds the layer input (needs `same`, `c_in == c_out`).
        #[serde(default)]
        residual: bool,
        /// The pooling that follows.
        #[serde(default)]
        pool: Pool,
    },
}

impl LayerKind {
    /// The classic LeNet block: valid 3x3 convolution, ReLU, 2x2 max-pool.
    pub fn lenet_conv(c_in: usize, c_out: usize, side_in: usize) -> LayerKind {
        LayerKind::Conv { c_in, c_out, side_in, same: false, residual: false, pool: Pool::Max2 }
    }

    /// Side of a convolution's output before pooling (0 for a linear layer).
    pub fn conv_side(&self) -> usize {
        match *self {
            LayerKind::Conv { side_in, same: true, .. } => side_in,
            LayerKind::Conv { side_in, .. } => side_in.saturating_sub(2),
            LayerKind::Linear { .. } => 0,
        }
    }

    /// Values per example entering the layer.
    pub fn input_width(&self) -> usize {
        match *self {
            LayerKind::Conv { c_in, side_in, .. } => c_in * side_in * side_in,
            LayerKind::Linear { d_in, .. } => d_in,
        }
    }

    /// Values per example leaving the layer (after ReLU, skip and pooling).
    pub fn output_width(&self) -> usize {
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
    /// layer, `[c_out][c_in * 9]` for a convolution (one row per output).
    pub fn weight_shape(&self) -> (usize, usize) {
        match *self {
            LayerKind::Linear { d_in, d_out, .. } => (d_out, d_in),
            LayerKind::Conv { c_in, c_out, .. } => (c_out, c_in * 9),
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
        let same = LayerKind::Conv { c_in: 4, c_out: 4, side_in: 7, same: true, residual: true, pool: Pool::GlobalAvg };
        assert_eq!((same.conv_side(), same.output_width(), same.residual()), (7, 4, true));
        let none = LayerKind::Conv { c_in: 4, c_out: 4, side_in: 7, same: true, residual: true, pool: Pool::None };
        assert_eq!(none.output_width(), 4 * 49);
        let l = LayerKind::Linear { d_in: 5, d_out: 3, relu: true, residual: false };
        assert_eq!((l.conv_side(), l.input_width(), l.output_width(), l.weight_shape()), (0, 5, 3, (3, 5)));
        assert!(!l.is_conv() && c.is_conv());
    }

    /// The tagged form packed model files hold, with the defaults older files rely on.
    #[test]
    fn serialized_form() {
        let l = LayerKind::Linear { d_in: 3, d_out: 2, relu: true, residual: false };
        let s = serde_json::to_string(&l).unwrap();
        assert_eq!(s, r#"{"type":"linear","d_in":3,"d_out":2,"relu":true,"residual":false}"#);
        let c: LayerKind = serde_json::from_str(r#"{"type":"conv","c_in":1,"c_out":2,"side_in":28}"#).unwrap();
        assert_eq!(c, LayerKind::lenet_conv(1, 2, 28));
        let g = LayerKind::Conv { c_in: 2, c_out: 2, side_in: 5, same: true, residual: true, pool: Pool::GlobalAvg };
        assert!(serde_json::to_string(&g).unwrap().ends_with(r#""same":true,"residual":true,"pool":"global-avg"}"#));
    }
}
