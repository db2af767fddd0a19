//! The two layer kinds an ONNX node group becomes: a convolution (with its batch norm, Relu,
//! skip and pooling) and a linear layer (with its Relu and skip).

use super::{Flow, Walk, fold_bn, pool_of, same_padding};
use crate::OnnxError;
use mpq_net::{LayerKind, Pool};
use onnx_ir::node::batch_norm::BatchNormConfig;
use onnx_ir::node::conv2d::Conv2dConfig;
use onnx_ir::node::padding::AutoPad;
use onnx_ir::{Argument, Node};

impl Walk<'_> {
    /// Conv [+ BatchNormalization] + Relu [+ Add of the input] [+ MaxPool | AveragePool | GlobalAveragePool].
    pub(super) fn conv(&mut self, node: &Node, cfg: &Conv2dConfig, inputs: &[Argument]) -> Result<(), OnnxError> {
        let (from, input) = (self.at - 1, self.cur.clone());
        let Flow::Image { c, side } = self.flow else {
            return Err(self.unsupported(node, "a convolution needs images, not flat vectors"));
        };
        let [k, kw] = cfg.kernel_size;
        let [stride, sw] = cfg.stride;
        let plain = k == kw && stride == sw && k > 0 && stride > 0 && cfg.dilation == [1, 1] && cfg.groups == 1;
        let explicit = matches!(cfg.auto_pad, AutoPad::NotSet | AutoPad::Valid);
        let same = same_padding(&cfg.padding, k).filter(|_| plain && explicit).ok_or_else(|| {
            self.unsupported(
                node,
                format!(
                    "kernel {:?}, stride {:?}, dilation {:?}, {} groups, padding {} (auto_pad {:?}): only square kernels and strides, no dilation, one group and explicit padding 0 or (kernel - 1) / 2 on every side are supported",
                    cfg.kernel_size, cfg.stride, cfg.dilation, cfg.groups, cfg.padding, cfg.auto_pad
                ),
            )
        })?;
        let (mut w, shape) = self.weight(node, inputs, 1, "weight")?;
        let c_out = shape[0];
        if shape != [c_out, c, k, k] {
            return Err(
                self.unsupported(node, format!("its weight has shape {shape:?}, expected [c_out, {c}, {k}, {k}]"))
            );
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
        let conv = |residual, pool| LayerKind::Conv {
            c_in: c,
            c_out,
            side_in: side,
            same,
            kernel: k,
            stride,
            residual,
            pool,
            carry: mpq_net::Carry::None,
        };
        let s = conv(false, Pool::None).conv_side();
        if s == 0 {
            return Err(self.unsupported(node, format!("its {k}x{k} windows do not fit its {side}x{side} input")));
        }
        let residual = s == side && c == c_out && self.identity_skip(&input);
        let pool = match self.next_reading(&self.cur).and_then(pool_of) {
            Some(Ok(p)) => {
                self.cur = Self::output(&self.nodes[self.at]);
                self.at += 1;
                p
            }
            Some(Err(why)) => return Err(self.unsupported(&self.nodes[self.at], why)),
            None => Pool::None,
        };
        let kind = conv(residual, pool);
        if let Err(why) = kind.check() {
            return Err(self.unsupported(node, why));
        }
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
