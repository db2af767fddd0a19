//! The one network type: a chain of conv and linear layers, run stage by stage.

use crate::ModelError;
use burn::module::Param;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{Linear, LinearConfig};
use burn::prelude::*;
use burn::tensor::activation::relu;
use burn::tensor::module::{avg_pool2d, conv2d};
use burn::tensor::ops::{AvgPoolOptions, ConvOptions};
use mpq_host::HostNet;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

pub use mpq_net::{Arch, Carry, LayerKind, LayerSpec, Pool};

/// A layer weight of either rank, so quantizers can treat every layer alike.
#[derive(Debug, Clone)]
pub enum Weight {
    /// Linear weight `[d_in, d_out]`.
    Linear(Tensor<2>),
    /// Conv weight `[c_out, c_in, k, k]`.
    Conv(Tensor<4>),
}

impl Weight {
    /// The values on the host, row-major in the weight's own layout.
    pub fn to_vec(&self) -> Vec<f32> {
        match self {
            Weight::Linear(t) => t.clone().into_data().iter::<f32>().collect(),
            Weight::Conv(t) => t.clone().into_data().iter::<f32>().collect(),
        }
    }
}

/// What quantization code needs to know about a layer, in forward order.
#[derive(Debug, Clone)]
pub struct LayerInfo {
    /// Stable name.
    pub name: String,
    /// Number of weights (without bias).
    pub weight_count: usize,
    /// Number of input values per example.
    pub input_count: usize,
    /// Whether an identity skip passes around this layer.
    pub residual: bool,
}

/// The shortcut of carried rows `[b, c * side * side]` as a `[b, c_out, o, o]` tensor: every
/// `side / o`-th pixel, zero channels on both sides ([`mpq_net::carry`]'s option A).
fn shortcut(rows: Tensor<2>, sc: mpq_net::Shortcut) -> Tensor<4> {
    let (b, step, o) = (rows.dims()[0], sc.side / sc.o, sc.o);
    let t = rows.reshape([b * sc.c * o, step, o, step]).slice([0..b * sc.c * o, 0..1, 0..o, 0..1]);
    let t: Tensor<4> = t.reshape([b, sc.c, o, o]);
    let front = (sc.c_out - sc.c) / 2;
    let back = sc.c_out - sc.c - front;
    let device = t.device();
    let mut parts = Vec::new();
    if front > 0 {
        parts.push(Tensor::zeros([b, front, o, o], &device));
    }
    parts.push(t);
    if back > 0 {
        parts.push(Tensor::zeros([b, back, o, o], &device));
    }
    Tensor::cat(parts, 1)
}

/// A network of conv and linear layers; MLP, CNN and residual MLP are all `Net`s.
#[derive(Module, Debug)]
pub struct Net {
    convs: Vec<Conv2d>,
    linears: Vec<Linear>,
    pool: MaxPool2d,
    #[module(skip)]
    arch: Arch,
}

fn uniform(rng: &mut ChaCha8Rng, n: usize, bound: f32) -> Vec<f32> {
    (0..n).map(|_| rng.random_range(-bound..bound)).collect()
}

impl Net {
    /// Builds the network with PyTorch-style uniform(±1/sqrt(fan_in)) weights and biases
    /// drawn from `seed`, identical on every backend.
    pub fn new(arch: Arch, device: &Device, seed: u64) -> Net {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (mut convs, mut linears) = (Vec::new(), Vec::new());
        for l in &arch.layers {
            match l.kind {
                LayerKind::Conv { c_in, c_out, kernel: k, .. } => {
                    let mut c = Conv2dConfig::new([c_in, c_out], [k, k]).init(device);
                    let b = 1.0 / ((c_in * k * k) as f32).sqrt();
                    let w = uniform(&mut rng, c_out * c_in * k * k, b);
                    c.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w, [c_out, c_in, k, k]), device));
                    let bias = Tensor::from_data(TensorData::new(uniform(&mut rng, c_out, b), [c_out]), device);
                    c.bias = Some(Param::from_tensor(bias));
                    convs.push(c);
                }
                LayerKind::Linear { d_in, d_out, .. } => {
                    let mut f = LinearConfig::new(d_in, d_out).init(device);
                    let b = 1.0 / (d_in as f32).sqrt();
                    let w = uniform(&mut rng, d_in * d_out, b);
                    f.weight = Param::from_tensor(Tensor::from_data(TensorData::new(w, [d_in, d_out]), device));
                    let bias = Tensor::from_data(TensorData::new(uniform(&mut rng, d_out, b), [d_out]), device);
                    f.bias = Some(Param::from_tensor(bias));
                    linears.push(f);
                }
            }
        }
        Net { convs, linears, pool: MaxPool2dConfig::new([2, 2]).init(), arch }
    }

    /// The architecture.
    pub fn arch(&self) -> &Arch {
        &self.arch
    }

    /// Number of quantizable layers.
    pub fn n_layers(&self) -> usize {
        self.arch.layers.len()
    }

    /// The quantizable layers in forward order.
    pub fn layers(&self) -> Vec<LayerInfo> {
        self.arch
            .layers
            .iter()
            .map(|l| LayerInfo {
                name: l.name.clone(),
                weight_count: l.kind.weight_count(),
                input_count: l.kind.input_width(),
                residual: l.kind.residual(),
            })
            .collect()
    }

    /// Position of layer `k` among the convs or the linears.
    fn slot(&self, k: usize) -> usize {
        let conv = matches!(self.arch.layers[k].kind, LayerKind::Conv { .. });
        self.arch.layers[..k].iter().filter(|l| matches!(l.kind, LayerKind::Conv { .. }) == conv).count()
    }

    /// The weight of layer `k`.
    pub fn weight(&self, k: usize) -> Weight {
        let s = self.slot(k);
        match self.arch.layers[k].kind {
            LayerKind::Conv { .. } => Weight::Conv(self.convs[s].weight.val()),
            LayerKind::Linear { .. } => Weight::Linear(self.linears[s].weight.val()),
        }
    }

    /// The bias of layer `k` on the host (zeros if the layer has none).
    pub fn bias(&self, k: usize) -> Vec<f32> {
        let s = self.slot(k);
        let b = match self.arch.layers[k].kind {
            LayerKind::Conv { .. } => self.convs[s].bias.as_ref().map(|p| p.val()),
            LayerKind::Linear { .. } => self.linears[s].bias.as_ref().map(|p| p.val()),
        };
        b.map(|t| t.into_data().iter::<f32>().collect()).unwrap_or_default()
    }

    /// Replaces the weight of layer `k` (shapes must match; used to build quantized copies).
    pub fn set_weight(&mut self, k: usize, w: Weight) {
        let s = self.slot(k);
        match w {
            Weight::Conv(t) => self.convs[s].weight = Param::from_tensor(t),
            Weight::Linear(t) => self.linears[s].weight = Param::from_tensor(t),
        }
    }

    /// Turns a batch of flattened 28x28 images `[B, 784]` into the first stage's input.
    pub fn input(&self, x: Tensor<2>) -> Tensor<4> {
        let b = x.dims()[0];
        match self.arch.layers.first().map(|l| &l.kind) {
            Some(LayerKind::Conv { .. }) => x.reshape([b, 1, 28, 28]),
            _ => x.reshape([b, 1, 1, 784]),
        }
    }

    /// Runs layer `k` on its input `x` (the previous stage's output) with weight `w`
    /// (the layer's own when `None`); returns the next layer's input.
    pub fn stage(&self, k: usize, x: Tensor<4>, w: Option<&Weight>) -> Tensor<4> {
        let s = self.slot(k);
        let b = x.dims()[0];
        match self.arch.layers[k].kind {
            LayerKind::Conv { .. } => self.conv_stage(k, s, x, w),
            LayerKind::Linear { d_in, d_out, relu: act, residual } => {
                let f = &self.linears[s];
                let x2: Tensor<2> = x.reshape([b, d_in]);
                let weight = match w {
                    Some(Weight::Linear(t)) => t.clone(),
                    _ => f.weight.val(),
                };
                let mut y = x2.clone().matmul(weight);
                if let Some(bias) = &f.bias {
                    y = y + bias.val().unsqueeze::<2>();
                }
                if act {
                    y = relu(y);
                }
                if residual {
                    y = y + x2;
                }
                y.reshape([b, 1, 1, d_out])
            }
        }
    }

    /// [`Net::stage`] of convolution `k` (slot `s` among the convolutions).
    fn conv_stage(&self, k: usize, s: usize, x: Tensor<4>, w: Option<&Weight>) -> Tensor<4> {
        let kind = &self.arch.layers[k].kind;
        let LayerKind::Conv { c_in, side_in, residual, pool, stride, carry, .. } = *kind else {
            unreachable!("convolutions only")
        };
        let (b, own_in, own_out) = (x.dims()[0], kind.own_input_width(), kind.own_output_width());
        // A carried input rides after the layer's own in flat rows.
        let (x, carried) = match kind.shortcut() {
            Some(sc) => {
                let flat: Tensor<2> = x.reshape([b, kind.input_width()]);
                let rest = flat.clone().slice([0..b, own_in..kind.input_width()]);
                (flat.slice([0..b, 0..own_in]).reshape([b, c_in, side_in, side_in]), Some(shortcut(rest, sc)))
            }
            None => (x.reshape([b, c_in, side_in, side_in]), None),
        };
        let c = &self.convs[s];
        let weight = match w {
            Some(Weight::Conv(t)) => t.clone(),
            _ => c.weight.val(),
        };
        let pad = kind.conv_geom().map_or(0, |g| g.pad);
        let opts = ConvOptions::new([stride, stride], [pad, pad], [1, 1], 1);
        let z = conv2d(x.clone(), weight, c.bias.as_ref().map(|p| p.val()), opts);
        let mut y = relu(match carried {
            Some(sc) => z + sc,
            None => z,
        });
        if residual {
            y = y + x.clone();
        }
        let y = match pool {
            Pool::Max2 => self.pool.forward(y),
            Pool::None => y,
            Pool::GlobalAvg => y.mean_dim(3).mean_dim(2),
            Pool::Avg2 => avg_pool2d(y, AvgPoolOptions::new([2, 2])),
        };
        if carry == Carry::Open {
            let rows: Tensor<2> = Tensor::cat(vec![y.reshape([b, own_out]), x.reshape([b, own_in])], 1);
            return rows.reshape([b, 1, 1, own_out + own_in]);
        }
        let next_is_linear = matches!(self.arch.layers.get(k + 1).map(|l| &l.kind), Some(LayerKind::Linear { .. }));
        if next_is_linear {
            let [_, c, h, w] = y.dims();
            y.reshape([b, 1, 1, c * h * w])
        } else {
            y
        }
    }

    /// Turns the last stage's output into logits `[B, 10]`.
    pub fn logits(&self, y: Tensor<4>) -> Tensor<2> {
        let b = y.dims()[0];
        y.reshape([b, 10])
    }

    /// Full-precision forward pass from flattened images to logits.
    pub fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut h = self.input(x);
        for k in 0..self.n_layers() {
            h = self.stage(k, h, None);
        }
        self.logits(h)
    }

    /// All parameters by stable name (`convs.0.weight`, `linears.1.bias`, ...) with shapes
    /// and values, in a fixed order: what checkpoints and the safetensors export contain.
    pub fn named_tensors(&self) -> Vec<(String, Vec<usize>, Vec<f32>)> {
        let mut out = Vec::new();
        let mut push = |name: String, dims: Vec<usize>, data: TensorData| {
            out.push((name, dims, data.iter::<f32>().collect()));
        };
        for (i, c) in self.convs.iter().enumerate() {
            let w = c.weight.val();
            push(format!("convs.{i}.weight"), w.dims().to_vec(), w.into_data());
            if let Some(b) = &c.bias {
                push(format!("convs.{i}.bias"), b.val().dims().to_vec(), b.val().into_data());
            }
        }
        for (i, f) in self.linears.iter().enumerate() {
            let w = f.weight.val();
            push(format!("linears.{i}.weight"), w.dims().to_vec(), w.into_data());
            if let Some(b) = &f.bias {
                push(format!("linears.{i}.bias"), b.val().dims().to_vec(), b.val().into_data());
            }
        }
        out
    }

    /// Replaces every parameter from `named` (as produced by [`Net::named_tensors`]);
    /// returns a description of the first missing or mis-shaped tensor.
    pub fn load_named(mut self, named: &[(String, Vec<usize>, Vec<f32>)], device: &Device) -> Result<Net, String> {
        let expected = self.named_tensors();
        if expected.len() != named.len() {
            return Err(format!("has {} tensors, the model has {}", named.len(), expected.len()));
        }
        for ((en, ed, _), (name, dims, data)) in expected.iter().zip(named) {
            if en != name || ed != dims || data.len() != dims.iter().product::<usize>() {
                return Err(format!("tensor `{name}` {dims:?} does not fit the model's `{en}` {ed:?}"));
            }
        }
        let mut it = named.iter();
        let mut next = || it.next().map(|(_, d, v)| (d.clone(), v.clone())).unwrap_or_default();
        let t1 = |(d, v): (Vec<usize>, Vec<f32>)| {
            Param::from_tensor(Tensor::<1>::from_data(TensorData::new(v, [d[0]]), device))
        };
        for c in &mut self.convs {
            let (d, v) = next();
            c.weight = Param::from_tensor(Tensor::from_data(TensorData::new(v, [d[0], d[1], d[2], d[3]]), device));
            if c.bias.is_some() {
                c.bias = Some(t1(next()));
            }
        }
        for f in &mut self.linears {
            let (d, v) = next();
            f.weight = Param::from_tensor(Tensor::from_data(TensorData::new(v, [d[0], d[1]]), device));
            if f.bias.is_some() {
                f.bias = Some(t1(next()));
            }
        }
        Ok(self)
    }

    /// The network's parameters on the host, for the f32 executor ([`mpq_host::HostNet`]).
    pub fn to_host(&self) -> HostNet {
        let kinds: Vec<LayerKind> = self.arch.layers.iter().map(|l| l.kind.clone()).collect();
        let weights = (0..kinds.len()).map(|k| self.weight(k).to_vec()).collect();
        let biases = (0..kinds.len()).map(|k| self.bias(k)).collect();
        HostNet { kinds, weights, biases }
    }

    /// This network (same architecture) with `host`'s parameters: what host training gives.
    pub fn with_host(self, host: HostNet, device: &Device) -> Result<Net, ModelError> {
        let (mut convs, mut linears) = (Vec::new(), Vec::new());
        for ((kind, w), b) in host.kinds.iter().zip(host.weights).zip(host.biases) {
            match kind {
                LayerKind::Conv { .. } => convs.push((w, b)),
                LayerKind::Linear { .. } => linears.push((w, b)),
            }
        }
        let mut values = convs.into_iter().chain(linears).flat_map(|(w, b)| [w, b]);
        let named: Vec<(String, Vec<usize>, Vec<f32>)> =
            self.named_tensors().into_iter().map(|(n, d, _)| (n, d, values.next().unwrap_or_default())).collect();
        self.load_named(&named, device).map_err(|reason| ModelError::Config(format!("host parameters: {reason}")))
    }
}
