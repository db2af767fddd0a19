//! The two layer kinds an ONNX node group becomes: a convolution (with its batch norm, Relu,
//! skip and pooling) and a linear layer (with its Relu and skip).

use super::{Flow, Walk, fold_bn, pool_of, same_padding};
use crate::OnnxError;
use mpq_net::{LayerKind, Pool};
use onnx_ir::node::batch_norm::BatchNormConfig;
use onnx_ir::node::conv2d::Conv2dConfig;
use onnx_ir::{Argument, Node};

impl Walk<'_> {
    /// Conv [+ BatchNormalization] + Relu [+ Add of the input] [+ MaxPool | AveragePool | GlobalAveragePool].
    pub(super) fn conv(&mut self, node: &Node, cfg: &Conv2dConfig, inputs: &[Argument]) -> Result<(), OnnxError> {
        let (from, input) = (self.at - 1, self.cur.clone());
        let Flow::Image { c, side } = self.flow else {
            return Err(self.unsupported(node, "a convolution needs images, not flat vectors"));
        };
        let plain = cfg.kernel_size == [3, 3] && cfg.stride == [1, 1] && cfg.dilation == [1, 1] && cfg.groups == 1;
        let same = same_padding(&cfg.padding).filter(|_| plain).ok_or_else(|| {
            self.unsupported(
                node,
                "only 3x3 convolutions with stride 1, no dilation, one group and padding 0 or 1 are supported",
            )
        })?;
        let (mut w, shape) = self.weight(node, inputs, 1, "weight")?;
        let c_out = shape[0];
        if shape != [c_out, c, 3, 3] {
            return Err(self.unsupported(node, format!("its weight has shape {shape:?}, expected [c_out, {c}, 3, 3]")));
        }
        let mut b = self.bias(node, inputs, 2, c_out)?;
        self.cur = Self::output(node);
        if let Some(n @ Node::BatchNormalization(bn)) = self.next_reading(&self.cur) {
            let eps = match &bn.config {
                BatchNormConfig::Static(s) => s.epsilon,
                BatchNormConfig::Runtime(r) => r.epsilon,
            };
            fold_bn(&bn.inputs, eps, &mut w, &mut b)
                .ok_or_else(|| self.unsupported(n, "its statistics are not constants of the convolution's width"))?;
            self.cur = Self::output(n);
            self.at += 1;
        }
        if !self.relu() {
            return Err(
                self.unsupported(node, "a convolution must be followed by Relu (after its BatchNormalization, if any)")
            );
        }
        let residual = same && c == c_out && self.identity_skip(&input);
        let s = if same { side } else { side - 2 };
        let pool = match self.next_reading(&self.cur).and_then(pool_of) {
            Some(Ok(p)) => {
                self.cur = Self::output(&self.nodes[self.at]);
                self.at += 1;
                p
            }
            Some(Err(why)) => return Err(self.unsupported(&self.nodes[self.at], why)),
            None => Pool::None,
        };
        let kind = LayerKind::Conv { c_in: c, c_out, side_in: side, same, residual, pool };
        self.flow = match pool {
            Pool::Max2 | Pool::Avg2 => Flow::Image { c: c_out, side: s / 2 },
            Pool::None => Flow::Image { c: c_out, side: s },
            Pool::GlobalAvg => Flow::Image { c: c_out, side: 1 },
        };
        self.push(kind, w, b, from);
        Ok(())
    }

    /// Linear (Gemm or MatMul+Add, merged by the parser) [+ Relu] [+ Add of the input].
    pub(super) fn linear(&mut self, node: &Node, transposed: bool, inputs: &[Argument]) -> Result<(), OnnxError> {
        let (from, input) = (self.at - 1, self.cur.clone());
        let Flow::Flat(d_in) = self.flow else {
            return Err(self.unsupported(node, "a linear layer needs flat vectors: add Flatten before it"));
        };
        let (w, shape) = self.weight(node, inputs, 1, "weight")?;
        let (rows, cols) = match shape.as_slice() {
            [r, c] => (*r, *c),
            _ => return Err(self.unsupported(node, format!("its weight has shape {shape:?}, not a matrix"))),
        };
        let (wi, d_out) = if transposed { (cols, rows) } else { (rows, cols) };
        if wi != d_in {
            return Err(
                self.unsupported(node, format!("its weight takes {wi} inputs but the previous layer gives {d_in}"))
            );
        }
        // The host network stores `[d_in, d_out]`; Gemm's weight is `[d_out, d_in]`.
        let w = if transposed { (0..d_in * d_out).map(|i| w[(i % d_out) * d_in + i / d_out]).collect() } else { w };
        let b = self.bias(node, inputs, 2, d_out)?;
        self.cur = Self::output(node);
        let relu = self.relu();
        let residual = d_in == d_out && self.identity_skip(&input);
        self.flow = Flow::Flat(d_out);
        self.push(LayerKind::Linear { d_in, d_out, relu, residual }, w, b, from);
        Ok(())
    }
}
