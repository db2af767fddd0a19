//! The walk from ONNX nodes to layers: one group of nodes per quantizable layer, in graph
//! order, each reading the activation the previous group produced.

mod layers;

use crate::OnnxError;
use crate::names::Names;
use mpq_host::HostNet;
use mpq_host::batchnorm::BatchNorm;
use mpq_net::{LayerKind, Pool};
use onnx_ir::node::padding::PaddingConfig2d;
use onnx_ir::{ArgType, Argument, Node, OnnxGraph};
use std::path::Path;

/// What flows between layers: images `[c, side, side]` or flat vectors.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Flow {
    /// Channel-major images.
    Image { c: usize, side: usize },
    /// Flat vectors (after Flatten, Reshape or a linear layer).
    Flat(usize),
}

impl Flow {
    fn width(self) -> usize {
        match self {
            Flow::Image { c, side } => c * side * side,
            Flow::Flat(d) => d,
        }
    }
}

/// The walk's state: the next node, the activation it must read and its shape, and the
/// layers so far.
struct Walk<'a> {
    nodes: &'a [Node],
    names: &'a Names,
    at: usize,
    path: &'a Path,
    cur: String,
    flow: Flow,
    net: HostNet,
    sources: Vec<String>,
}

/// The values and shape of a static input (an initializer).
fn values(arg: &Argument) -> Option<(Vec<f32>, Vec<usize>)> {
    let data = arg.value()?;
    let shape: Vec<usize> = data.shape().iter().copied().collect();
    let v = data.try_to_vec_as::<f32>().ok()?;
    Some((v, shape))
}

/// The graph input's shape: images `[_, 1, 28, 28]` or flat `[_, 784]`.
fn input_flow(graph: &OnnxGraph, path: &Path) -> Result<(String, Flow), OnnxError> {
    let bad = |what: String| OnnxError::Shape { path: path.into(), what };
    let [input] = graph.inputs.as_slice() else {
        return Err(bad(format!("the model has {} inputs; one (the digit images) is supported", graph.inputs.len())));
    };
    let dims: Vec<Option<usize>> = match &input.ty {
        ArgType::Tensor(t) => t.static_shape.clone().unwrap_or_else(|| vec![None; t.rank]),
        other => return Err(bad(format!("input `{}` is {other}, not a tensor", input.name))),
    };
    let flow = match dims.as_slice() {
        [_, Some(1), Some(28), Some(28)] => Flow::Image { c: 1, side: 28 },
        [_, Some(784)] => Flow::Flat(784),
        _ => {
            let shown: Vec<String> = dims.iter().map(|d| d.map_or("?".into(), |v| v.to_string())).collect();
            return Err(bad(format!(
                "input `{}` has shape [{}]; 28x28 single-channel digits need [batch, 1, 28, 28] or [batch, 784]",
                input.name,
                shown.join(", ")
            )));
        }
    };
    Ok((input.name.clone(), flow))
}

/// Maps the graph onto the description's layers.
pub(crate) fn to_net(graph: &OnnxGraph, names: &Names, path: &Path) -> Result<crate::Imported, OnnxError> {
    let (cur, flow) = input_flow(graph, path)?;
    let net = HostNet { kinds: Vec::new(), weights: Vec::new(), biases: Vec::new() };
    let mut w = Walk { nodes: &graph.nodes, names, at: 0, path, cur, flow, net, sources: Vec::new() };
    while w.at < w.nodes.len() {
        w.step()?;
    }
    let out = w.flow.width();
    if w.net.kinds.is_empty() || out != 10 || !matches!(w.flow, Flow::Flat(_)) {
        return Err(OnnxError::Shape {
            path: path.into(),
            what: format!(
                "the network ends in {out} values per digit after {} layers; 10 logits are needed",
                w.net.kinds.len()
            ),
        });
    }
    Ok(crate::Imported { net: w.net, sources: w.sources })
}

impl Walk<'_> {
    fn unsupported(&self, node: &Node, why: impl Into<String>) -> OnnxError {
        let (op, name) = self.names.of(node);
        OnnxError::Unsupported { path: self.path.into(), node: name, op, why: why.into() }
    }

    /// The next node when it reads the current activation as its first input.
    fn next_reading(&self, name: &str) -> Option<&Node> {
        self.nodes.get(self.at).filter(|n| n.inputs().first().is_some_and(|a| a.name == name))
    }

    /// A node's single output name.
    fn output(node: &Node) -> String {
        node.outputs().first().map(|a| a.name.clone()).unwrap_or_default()
    }

    /// One group of nodes: a layer, or a view change.
    fn step(&mut self) -> Result<(), OnnxError> {
        let node = &self.nodes[self.at];
        if node.inputs().first().is_none_or(|a| a.name != self.cur) {
            return Err(self.unsupported(node, "it does not read the previous layer's output (only chains of layers with identity skips are supported)"));
        }
        self.at += 1;
        match node {
            Node::Conv2d(c) => self.conv(node, &c.config, &c.inputs),
            Node::Linear(l) => self.linear(node, l.config.transpose_weight, &l.inputs),
            Node::Flatten(_) | Node::Reshape(_) => self.flatten(node),
            _ => Err(self.unsupported(node, "no layer of the description computes it")),
        }
    }

    /// Flatten or Reshape to `[batch, width]`: the description's channel-major images
    /// flatten the way ONNX's NCHW tensors do, so only the view changes.
    fn flatten(&mut self, node: &Node) -> Result<(), OnnxError> {
        let flat = match &node.outputs()[0].ty {
            ArgType::Tensor(t) => t.rank == 2,
            _ => false,
        };
        if !flat {
            return Err(
                self.unsupported(node, "only a reshape to [batch, features] before a linear layer is supported")
            );
        }
        self.flow = Flow::Flat(self.flow.width());
        self.cur = Self::output(node);
        Ok(())
    }

    /// A static input of `node`, or an error naming it.
    fn weight(
        &self,
        node: &Node,
        inputs: &[Argument],
        i: usize,
        what: &str,
    ) -> Result<(Vec<f32>, Vec<usize>), OnnxError> {
        inputs.get(i).and_then(values).ok_or_else(|| self.unsupported(node, format!("its {what} is not a constant")))
    }

    /// The optional bias (input `i`), zeros when absent.
    fn bias(&self, node: &Node, inputs: &[Argument], i: usize, n: usize) -> Result<Vec<f32>, OnnxError> {
        match inputs.get(i) {
            Some(a) if !a.is_optional() => {
                let (b, _) = self.weight(node, inputs, i, "bias")?;
                if b.len() != n {
                    return Err(self.unsupported(node, format!("its bias has {} values for {n} outputs", b.len())));
                }
                Ok(b)
            }
            _ => Ok(vec![0.0; n]),
        }
    }

    /// If the next node adds `skip_from` (the layer's input) to the current activation,
    /// takes it and returns true.
    fn identity_skip(&mut self, skip_from: &str) -> bool {
        let Some(Node::Add(add)) = self.nodes.get(self.at) else { return false };
        let names: Vec<&str> = add.inputs.iter().map(|a| a.name.as_str()).collect();
        if names.len() == 2 && names.contains(&self.cur.as_str()) && names.contains(&skip_from) {
            self.cur = Self::output(&self.nodes[self.at]);
            self.at += 1;
            return true;
        }
        false
    }

    /// If the next node is a Relu of the current activation, takes it and returns true.
    fn relu(&mut self) -> bool {
        match self.next_reading(&self.cur) {
            Some(n @ Node::Relu(_)) => {
                self.cur = Self::output(n);
                self.at += 1;
                true
            }
            _ => false,
        }
    }

    /// Records a layer.
    fn push(&mut self, kind: LayerKind, w: Vec<f32>, b: Vec<f32>, from: usize) {
        let names: Vec<String> = self.nodes[from..self.at].iter().map(|n| self.names.of(n).1).collect();
        self.sources.push(names.join(" + "));
        self.net.kinds.push(kind);
        self.net.weights.push(w);
        self.net.biases.push(b);
    }
}

/// Padding of a `kernel` x `kernel` convolution: none (valid) or `(kernel - 1) / 2` on every
/// side (same), else `None`.
fn same_padding(p: &PaddingConfig2d, kernel: usize) -> Option<bool> {
    match *p {
        PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0) => Some(false),
        PaddingConfig2d::Explicit(a, b, c, d) if kernel % 2 == 1 && [a, b, c, d] == [(kernel - 1) / 2; 4] => Some(true),
        _ => None,
    }
}

/// Folds a following BatchNormalization node's statistics into a convolution's weight and
/// bias (`inputs`: X, scale, B, mean, var).
fn fold_bn(inputs: &[Argument], eps: f64, w: &mut [f32], b: &mut [f32]) -> Option<()> {
    let get = |i: usize| inputs.get(i).and_then(values).map(|(v, _)| v);
    let (gamma, beta, mean, var) = (get(1)?, get(2)?, get(3)?, get(4)?);
    if [&beta, &mean, &var].iter().any(|v| v.len() != gamma.len()) || gamma.len() != b.len() {
        return None;
    }
    let bn = BatchNorm { gamma, beta, mean, var, eps: eps as f32, ..BatchNorm::new(b.len()) };
    bn.fold(w, b);
    Some(())
}

/// The pooling node after a convolution's Relu (and skip), if it is one the description has.
fn pool_of(node: &Node) -> Option<Result<Pool, String>> {
    match node {
        Node::MaxPool2d(m) => {
            let c = &m.config;
            Some(window_2x2(Pool::Max2, "max", (c.kernel_size, c.strides, c.dilation, c.ceil_mode), &c.padding))
        }
        Node::AveragePool2d(m) => {
            let c = &m.config;
            Some(window_2x2(Pool::Avg2, "average", (c.kernel_size, c.strides, c.dilation, c.ceil_mode), &c.padding))
        }
        Node::GlobalAveragePool(_) => Some(Ok(Pool::GlobalAvg)),
        _ => None,
    }
}

/// `pool` when a pooling node's window is the description's: 2x2, stride 2, no dilation,
/// floor, no padding; else why not (`what`: "max" or "average").
fn window_2x2(
    pool: Pool,
    what: &str,
    (kernel, strides, dilation, ceil): ([usize; 2], [usize; 2], [usize; 2], bool),
    padding: &PaddingConfig2d,
) -> Result<Pool, String> {
    let unpadded = matches!(padding, PaddingConfig2d::Valid | PaddingConfig2d::Explicit(0, 0, 0, 0));
    if kernel == [2, 2] && strides == [2, 2] && dilation == [1, 1] && !ceil && unpadded {
        Ok(pool)
    } else {
        Err(format!("only 2x2 {what} pooling with stride 2 and no padding is supported"))
    }
}
