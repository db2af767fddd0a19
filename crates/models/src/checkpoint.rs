//! Checkpoints as safetensors files: the cache format and the PyTorch export in one.
//!
//! Tensor names and layouts: `convs.{i}.weight` `[c_out, c_in, 3, 3]` (PyTorch's Conv2d
//! layout), `convs.{i}.bias` `[c_out]`, `linears.{j}.weight` `[d_in, d_out]` (the transpose
//! of PyTorch's Linear weight: use `.T`), `linears.{j}.bias` `[d_out]`; all f32 little-endian.
//! The metadata holds the model name and the architecture.

use crate::{ModelError, Net};
use burn::prelude::Device;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use std::collections::HashMap;
use std::path::Path;

/// Serializes the network's parameters as safetensors bytes, with `meta` as metadata.
pub fn to_bytes(net: &Net, meta: &HashMap<String, String>) -> Result<Vec<u8>, ModelError> {
    let named = net.named_tensors();
    let bytes: Vec<Vec<u8>> = named.iter().map(|(_, _, v)| v.iter().flat_map(|f| f.to_le_bytes()).collect()).collect();
    let mut views = Vec::new();
    for ((name, dims, _), b) in named.iter().zip(&bytes) {
        let view = TensorView::new(Dtype::F32, dims.clone(), b)
            .map_err(|e| ModelError::Checkpoint { file: name.clone(), reason: e.to_string() })?;
        views.push((name.clone(), view));
    }
    safetensors::serialize(views, Some(meta.clone()))
        .map_err(|e| ModelError::Checkpoint { file: "<memory>".into(), reason: e.to_string() })
}

/// Writes a checkpoint atomically (temporary file, then rename).
pub fn save(net: &Net, meta: &HashMap<String, String>, path: &Path) -> Result<(), ModelError> {
    let bytes = to_bytes(net, meta)?;
    let io = |source| ModelError::Io { file: path.display().to_string(), source };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    // Two writers of one key never interleave bytes; whichever finishes last wins, whole.
    mpq_atomic::write(path, &bytes).map_err(io)
}

/// Loads parameters from safetensors `bytes` into `net`; rejects files that are truncated,
/// not safetensors, or made for another architecture. `file` names the source in errors.
pub fn from_bytes(net: Net, bytes: &[u8], file: &str, device: &Device) -> Result<Net, ModelError> {
    let bad = |reason: String| ModelError::Checkpoint { file: file.to_string(), reason };
    let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a readable safetensors file ({e})")))?;
    let mut named = Vec::new();
    for (name, _, _) in net.named_tensors() {
        let t = st.tensor(&name).map_err(|_| bad(format!("tensor `{name}` is missing: made for another model?")))?;
        if t.dtype() != Dtype::F32 {
            return Err(bad(format!("tensor `{name}` is {:?}, expected F32", t.dtype())));
        }
        let v: Vec<f32> = t.data().chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
        named.push((name, t.shape().to_vec(), v));
    }
    if st.len() != named.len() {
        return Err(bad(format!("has {} tensors, the model has {}: made for another model?", st.len(), named.len())));
    }
    net.load_named(&named, device).map_err(bad)
}

/// Reads a checkpoint file into `net`.
pub fn load(net: Net, path: &Path, device: &Device) -> Result<Net, ModelError> {
    let bytes = std::fs::read(path).map_err(|source| ModelError::Io { file: path.display().to_string(), source })?;
    from_bytes(net, &bytes, &path.display().to_string(), device)
}
