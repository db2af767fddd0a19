//! Import an ONNX network onto the network description, so that the study runs on a user's
//! own model (exported from PyTorch with `torch.onnx.export`, say) as on the ones the
//! harness trains.
//!
//! The parser is burn's `onnx-ir` (the release line of the pinned burn, sharing its
//! burn-tensor): it reads the protobuf, infers shapes, lifts initializers to static values and
//! already merges Gemm and MatMul+Add into one linear node. This crate then walks the nodes in
//! order and maps each group onto one quantizable layer of [`mpq_net::LayerKind`]:
//! convolution (+ folded batch norm) + Relu (+ identity skip) (+ pooling), or linear (+ Relu)
//! (+ identity skip); Flatten and Reshape between them only change the view. Anything else is
//! refused before any work, naming the node, its op type and what is supported.

mod error;
mod map;
mod names;
mod normalise;

pub use error::{OnnxError, SUPPORTED};
pub use normalise::Normalisation;

use mpq_host::HostNet;
use mpq_net::{Arch, LayerSpec};
use std::path::Path;

/// An imported network: its layers with the ONNX node each came from.
#[derive(Debug, Clone)]
pub struct Imported {
    /// The network, in the host executor's layouts.
    pub net: HostNet,
    /// For each layer, the ONNX node names it was built from (`/conv1/Conv + /relu/Relu`).
    pub sources: Vec<String>,
}

impl Imported {
    /// The description of the network, its layers named by kind and position as the
    /// harness names its own (`conv1`, `conv2`, `fc1`, ...).
    pub fn arch(&self) -> Arch {
        let (mut convs, mut linears) = (0, 0);
        let layers = self
            .net
            .kinds
            .iter()
            .map(|kind| {
                let name = if kind.is_conv() {
                    convs += 1;
                    format!("conv{convs}")
                } else {
                    linears += 1;
                    format!("fc{linears}")
                };
                LayerSpec { name, kind: kind.clone() }
            })
            .collect();
        Arch { layers }
    }
}

/// Reads and maps the ONNX file at `path`.
pub fn import(path: &Path) -> Result<Imported, OnnxError> {
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Read { path: path.into(), source })?;
    import_bytes(&bytes, path)
}

/// Maps an ONNX model held in memory; `path` only names it in errors.
pub fn import_bytes(bytes: &[u8], path: &Path) -> Result<Imported, OnnxError> {
    let parse = || onnx_ir::OnnxGraphBuilder::new().parse_bytes(bytes);
    // The parser reports malformed protobuf as an error, but a well-formed model with
    // inconsistent contents can reach a panic inside it: that is reported as a parse error too.
    let graph = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(parse)) {
        Ok(Ok(g)) => g,
        Ok(Err(e)) => return Err(OnnxError::Parse { path: path.into(), message: e.to_string() }),
        Err(_) => return Err(OnnxError::Parse { path: path.into(), message: "the parser stopped on it".into() }),
    };
    map::to_net(&graph, &names::Names::read(bytes), path)
}
