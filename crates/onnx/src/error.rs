//! Why an ONNX file cannot be imported: each variant names the file, and the node and its op
//! type where one is to blame.

use std::path::PathBuf;

/// What the import reports instead of a network.
#[derive(Debug, thiserror::Error)]
pub enum OnnxError {
    /// The file could not be read.
    #[error("{path}: cannot read: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The bytes are not an ONNX model the parser accepts (truncated, not protobuf, ...).
    #[error("{path}: not a readable ONNX model: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// The parser's words.
        message: String,
    },
    /// A node the network description cannot express.
    #[error("{path}: node `{node}` ({op}) is not supported: {why}. Supported: {SUPPORTED}")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// The node's name.
        node: String,
        /// Its op type.
        op: String,
        /// What about it does not fit.
        why: String,
    },
    /// The experiment's input normalisation cannot be folded into the first layer.
    #[error("{path}: the input normalisation (mean {mean}, scale {scale}) {why}")]
    Normalisation {
        /// The file.
        path: PathBuf,
        /// The mean subtracted from pixels / 255.
        mean: f32,
        /// The factor applied after subtracting the mean.
        scale: f32,
        /// What prevents folding it.
        why: String,
    },
    /// The model's input or output does not fit 28x28 single-channel digits and 10 classes.
    #[error("{path}: {what}")]
    Shape {
        /// The file.
        path: PathBuf,
        /// What does not fit.
        what: String,
    },
}

/// The ops and forms an imported network may use, for the error message.
pub const SUPPORTED: &str = "Gemm and MatMul+Add (linear layers), Conv (3x3, stride 1, no padding or padding 1, \
     followed by Relu, optionally after BatchNormalization, which is folded into it), Relu, MaxPool and AveragePool (2x2, stride 2), \
     GlobalAveragePool, Add of a layer's input to its Relu output (an identity skip), Flatten and Reshape before a \
     linear layer";
