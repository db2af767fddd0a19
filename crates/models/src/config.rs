//! Model configurations: each builds a [`Net`] with a fixed architecture description.

use crate::ModelError;
use crate::net::{Arch, LayerKind, LayerSpec, Net, Pool};
use burn::prelude::Device;
use mpq_host::HostNet;
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

/// The model families of the study.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelConfig {
    /// Fully connected ReLU network 784-h1-...-10.
    Mlp {
        /// Hidden widths, default [256, 128].
        #[serde(default = "default_mlp_hidden")]
        hidden: Vec<usize>,
    },
    /// LeNet-style CNN: two conv3x3+ReLU+maxpool2 blocks, then two linear layers.
    Cnn {
        /// Channels of the two conv layers, default [8, 16].
        #[serde(default = "default_cnn_channels")]
        channels: [usize; 2],
        /// Width of the hidden linear layer, default 64.
        #[serde(default = "default_cnn_hidden")]
        hidden: usize,
    },
    /// MLP with a stem, `depth` blocks `x + relu(W x + b)` (identity skips) and a head.
    ResMlp {
        /// Block width, default 128.
        #[serde(default = "default_width")]
        width: usize,
        /// Number of residual blocks, default 4.
        #[serde(default = "default_depth")]
        depth: usize,
    },
    /// The residual MLP's twin without skips: blocks `relu(W x + b)`, same depth and width.
    PlainMlp {
        /// Block width, default 128.
        #[serde(default = "default_width")]
        width: usize,
        /// Number of blocks, default 4.
        #[serde(default = "default_depth")]
        depth: usize,
    },
    /// Residual CNN: a stem (conv3x3 valid + ReLU + 2x2 max-pool, 28 to 13), `depth` blocks
    /// `x + relu(conv3x3_same(x))` at 13x13, global average pooling after the last block, and
    /// a linear head.
    ResCnn {
        /// Channels of the stem and every block, default 16.
        #[serde(default = "default_res_channels")]
        channels: usize,
        /// Number of residual blocks, default 3.
        #[serde(default = "default_res_depth")]
        depth: usize,
    },
    /// The residual CNN's twin without skips: blocks `relu(conv3x3_same(x))`.
    PlainCnn {
        /// Channels of the stem and every block, default 16.
        #[serde(default = "default_res_channels")]
        channels: usize,
        /// Number of blocks, default 3.
        #[serde(default = "default_res_depth")]
        depth: usize,
    },
    /// He et al.'s CIFAR ResNet for 28x28 digits: a 3x3 stem, three stages of `(depth - 2) / 6`
    /// basic blocks (two 3x3 convolutions, the skip added before the second ReLU) with
    /// `width`, `2 width` and `4 width` channels, stride 2 at the first block of stages 2
    /// and 3 (28, 14, 7) with option A's shortcut (subsampled, zero channels on both sides),
    /// global average pooling and a linear head; batch norm after every convolution while
    /// training, folded into it afterwards.
    #[serde(rename = "resnet")]
    ResNet {
        /// Layers with weights: 6n + 2 (8, 14, 20, ...), default 8.
        #[serde(default = "default_resnet_depth")]
        depth: usize,
        /// Channels of the first stage, default 8.
        #[serde(default = "default_resnet_width")]
        width: usize,
    },
    /// The ResNet's plain twin: the same layers without the skips.
    #[serde(rename = "plain-resnet")]
    PlainResNet {
        /// Layers with weights: 6n + 2 (8, 14, 20, ...), default 8.
        #[serde(default = "default_resnet_depth")]
        depth: usize,
        /// Channels of the first stage, default 8.
        #[serde(default = "default_resnet_width")]
        width: usize,
    },
    /// A network imported from an ONNX file: its layers and weights come from the file and
    /// it is not trained here (repeats vary the calibration and test folds only).
    Onnx {
        /// The `.onnx` file, relative to the working directory.
        path: PathBuf,
        /// The network reads `(pixel / 255 − mean) × scale` (PyTorch's `Normalize(m, s)` is
        /// `mean = m`, `scale = 1 / s`); folded into the first layer on import.
        mean: Real,
        /// See `mean`.
        scale: Real,
        /// SHA-256 of the file, filled in when the experiment is read: recorded with the
        /// resolved experiment (so its provenance follows the file), never read from TOML.
        #[serde(default, skip_deserializing)]
        sha256: String,
        /// The file's layers and weights, filled in when the experiment is read.
        #[serde(skip)]
        imported: std::sync::Arc<Imported>,
    },
}

/// A finite number in a model config: compared and hashed by its bits, so configs stay
/// usable as keys.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Real(pub f64);

impl Eq for Real {}

impl std::hash::Hash for Real {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.to_bits().hash(state);
    }
}

/// What an ONNX model's file holds, read once with the experiment: the runs take their
/// weights from here, so every run of a sweep sees the bytes the experiment was read with.
#[derive(Debug, Clone, Default)]
pub struct Imported {
    /// The layers.
    pub arch: Arch,
    /// For each layer, the file's nodes it was built from.
    pub sources: Vec<String>,
    /// The network, its input normalisation folded into the first layer.
    pub net: HostNet,
}

/// Compared and hashed by layers and sources: the weights are the file's, which the config's
/// `sha256` (with `mean` and `scale`) already identifies.
impl PartialEq for Imported {
    fn eq(&self, other: &Imported) -> bool {
        (&self.arch, &self.sources) == (&other.arch, &other.sources)
    }
}

impl Eq for Imported {}

impl std::hash::Hash for Imported {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        (&self.arch, &self.sources).hash(state);
    }
}

fn default_res_channels() -> usize {
    16
}
fn default_res_depth() -> usize {
    3
}
fn default_resnet_depth() -> usize {
    8
}
fn default_resnet_width() -> usize {
    8
}
fn default_mlp_hidden() -> Vec<usize> {
    vec![256, 128]
}
fn default_cnn_channels() -> [usize; 2] {
    [8, 16]
}
fn default_cnn_hidden() -> usize {
    64
}
fn default_width() -> usize {
    128
}
fn default_depth() -> usize {
    4
}

impl ModelConfig {
    /// Short name used in run ids, CSV rows and figures.
    pub fn name(&self) -> String {
        match self {
            ModelConfig::Mlp { hidden } => {
                format!("mlp-{}", hidden.iter().map(|h| h.to_string()).collect::<Vec<_>>().join("-"))
            }
            ModelConfig::Cnn { channels, hidden } => format!("cnn-{}-{}-{}", channels[0], channels[1], hidden),
            ModelConfig::ResMlp { width, depth } => format!("resmlp-{width}x{depth}"),
            ModelConfig::PlainMlp { width, depth } => format!("plainmlp-{width}x{depth}"),
            ModelConfig::ResCnn { channels, depth } => format!("rescnn-{channels}x{depth}"),
            ModelConfig::PlainCnn { channels, depth } => format!("plaincnn-{channels}x{depth}"),
            ModelConfig::ResNet { depth, width } => format!("resnet{depth}-{width}"),
            ModelConfig::PlainResNet { depth, width } => format!("plainnet{depth}-{width}"),
            ModelConfig::Onnx { path, .. } => {
                format!("onnx-{}", path.file_stem().map(|s| s.to_string_lossy()).unwrap_or_default())
            }
        }
    }

    /// Whether the model comes trained from a file instead of being trained here.
    pub fn is_imported(&self) -> bool {
        matches!(self, ModelConfig::Onnx { .. })
    }

    /// The label a run's seeds derive from: a residual network and its plain twin share one,
    /// so in each repeat both draw the same split, calibration digits and initial weights
    /// and the identity-mapping claim pairs them by repeat; every other model uses its name.
    pub fn seed_label(&self) -> String {
        match self {
            ModelConfig::ResMlp { width, depth } | ModelConfig::PlainMlp { width, depth } => {
                format!("mlp-twins-{width}x{depth}")
            }
            ModelConfig::ResCnn { channels, depth } | ModelConfig::PlainCnn { channels, depth } => {
                format!("cnn-twins-{channels}x{depth}")
            }
            ModelConfig::ResNet { depth, width } | ModelConfig::PlainResNet { depth, width } => {
                format!("resnet-twins-{depth}-{width}")
            }
            _ => self.name(),
        }
    }

    /// Checks sizes are positive and small enough to build; the error names the field.
    pub fn validate(&self) -> Result<(), ModelError> {
        let ok = |v: usize| (1..=4096).contains(&v);
        let bad = |field, range| Err(ModelError::Field { field, range });
        match self {
            ModelConfig::Mlp { hidden } if hidden.iter().any(|&h| !ok(h)) => bad("hidden", "between 1 and 4096"),
            ModelConfig::Cnn { channels, .. } if !channels.iter().all(|&c| ok(c)) => {
                bad("channels", "between 1 and 4096")
            }
            ModelConfig::Cnn { hidden, .. } if !ok(*hidden) => bad("hidden", "between 1 and 4096"),
            ModelConfig::ResMlp { width, .. } | ModelConfig::PlainMlp { width, .. } if !ok(*width) => {
                bad("width", "1..=4096")
            }
            ModelConfig::ResMlp { depth, .. } | ModelConfig::PlainMlp { depth, .. } if !(1..=64).contains(depth) => {
                bad("depth", "1..=64")
            }
            ModelConfig::ResCnn { channels, .. } | ModelConfig::PlainCnn { channels, .. }
                if !(1..=256).contains(channels) =>
            {
                bad("channels", "1..=256")
            }
            ModelConfig::ResCnn { depth, .. } | ModelConfig::PlainCnn { depth, .. } if !(1..=16).contains(depth) => {
                bad("depth", "1..=16")
            }
            ModelConfig::ResNet { depth, .. } | ModelConfig::PlainResNet { depth, .. }
                if !(8..=56).contains(depth) || (depth - 2) % 6 != 0 =>
            {
                bad("depth", "6n + 2 between 8 and 56 (8, 14, 20, ...)")
            }
            ModelConfig::ResNet { width, .. } | ModelConfig::PlainResNet { width, .. } if !(2..=64).contains(width) => {
                bad("width", "2..=64")
            }
            ModelConfig::Onnx { mean, .. } if !mean.0.is_finite() => bad("mean", "a finite number"),
            ModelConfig::Onnx { scale, .. } if !(scale.0.is_finite() && scale.0 != 0.0) => {
                bad("scale", "a finite, non-zero number")
            }
            ModelConfig::Onnx { imported, .. } if imported.arch.layers.is_empty() => {
                Err(ModelError::Config("the ONNX model has not been read (no layers)".into()))
            }
            _ => Ok(()),
        }
    }

    /// The layer-by-layer architecture this config describes.
    pub fn arch(&self) -> Arch {
        let lin = |name: String, d_in, d_out, relu, residual| LayerSpec {
            name,
            kind: LayerKind::Linear { d_in, d_out, relu, residual },
        };
        let mut layers = Vec::new();
        match self {
            ModelConfig::Mlp { hidden } => {
                let widths: Vec<usize> = std::iter::once(784).chain(hidden.iter().copied()).chain([10]).collect();
                for (i, w) in widths.windows(2).enumerate() {
                    let last = i + 2 == widths.len();
                    layers.push(lin(format!("fc{}", i + 1), w[0], w[1], !last, false));
                }
            }
            ModelConfig::Cnn { channels, hidden } => {
                let [c1, c2] = *channels;
                layers.push(LayerSpec { name: "conv1".into(), kind: LayerKind::lenet_conv(1, c1, 28) });
                layers.push(LayerSpec { name: "conv2".into(), kind: LayerKind::lenet_conv(c1, c2, 13) });
                layers.push(lin("fc1".into(), c2 * 5 * 5, *hidden, true, false));
                layers.push(lin("fc2".into(), *hidden, 10, false, false));
            }
            ModelConfig::ResMlp { width, depth } | ModelConfig::PlainMlp { width, depth } => {
                let residual = matches!(self, ModelConfig::ResMlp { .. });
                layers.push(lin("stem".into(), 784, *width, true, false));
                for b in 0..*depth {
                    layers.push(lin(format!("block{}", b + 1), *width, *width, true, residual));
                }
                layers.push(lin("head".into(), *width, 10, false, false));
            }
            ModelConfig::ResCnn { channels, depth } | ModelConfig::PlainCnn { channels, depth } => {
                let (c, residual) = (*channels, matches!(self, ModelConfig::ResCnn { .. }));
                layers.push(LayerSpec { name: "stem".into(), kind: LayerKind::lenet_conv(1, c, 28) });
                for b in 0..*depth {
                    let pool = if b + 1 == *depth { Pool::GlobalAvg } else { Pool::None };
                    let kind = LayerKind::conv3(c, c, 13, true, residual, pool);
                    layers.push(LayerSpec { name: format!("block{}", b + 1), kind });
                }
                layers.push(lin("head".into(), c, 10, false, false));
            }
            ModelConfig::ResNet { depth, width } | ModelConfig::PlainResNet { depth, width } => {
                return resnet_arch(*depth, *width, matches!(self, ModelConfig::ResNet { .. }));
            }
            ModelConfig::Onnx { imported, .. } => return imported.arch.clone(),
        }
        Arch { layers }
    }

    /// Whether training puts batch norm after every convolution (folded afterwards).
    pub fn batch_norm(&self) -> bool {
        matches!(self, ModelConfig::ResNet { .. } | ModelConfig::PlainResNet { .. })
    }

    /// Builds the network on `device` with weights drawn from `seed` (same seed, same
    /// weights on every backend).
    pub fn init(&self, device: &Device, seed: u64) -> Net {
        Net::new(self.arch(), device, seed)
    }
}

/// [`ModelConfig::ResNet`]'s layers (`skips`) or its plain twin's: `stem`, then `s{stage}b{block}a`
/// and `…b` per basic block, then `head`.
fn resnet_arch(depth: usize, width: usize, skips: bool) -> Arch {
    use mpq_net::Carry;
    let conv = |name: String, c_in, c_out, side_in, stride, pool, carry| LayerSpec {
        name,
        kind: LayerKind::block(c_in, c_out, side_in, stride, pool, carry),
    };
    let n = (depth - 2) / 6;
    let mut layers = vec![conv("stem".into(), 1, width, 28, 1, Pool::None, Carry::None)];
    let (mut c, mut side) = (width, 28);
    for stage in 0..3 {
        let c_out = width << stage;
        for block in 0..n {
            let stride = if stage > 0 && block == 0 { 2 } else { 1 };
            let o = side / stride;
            let (open, close) =
                if skips { (Carry::Open, Carry::Close { c, side }) } else { (Carry::None, Carry::None) };
            let last = stage == 2 && block + 1 == n;
            let pool = if last { Pool::GlobalAvg } else { Pool::None };
            let at = format!("s{}b{}", stage + 1, block + 1);
            layers.push(conv(format!("{at}a"), c, c_out, side, stride, Pool::None, open));
            layers.push(conv(format!("{at}b"), c_out, c_out, o, 1, pool, close));
            (c, side) = (c_out, o);
        }
    }
    layers.push(LayerSpec {
        name: "head".into(),
        kind: LayerKind::Linear { d_in: 4 * width, d_out: 10, relu: false, residual: false },
    });
    Arch { layers }
}
