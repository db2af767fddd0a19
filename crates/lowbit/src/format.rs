//! The packed-model file, a safetensors file that `safetensors.numpy.load_file` reads with
//! no custom parser. Tensors, per layer `<name>` in forward order:
//!
//! - `<name>.codes`: U8 `[bytes]`, the weight codes of a quantized layer packed by bit width
//!   (row-major `[rows][cols]`, little end first, see [`crate::pack`]);
//! - `<name>.weight`: F32 `[rows, cols]`, the weights of a full-precision layer;
//! - `<name>.scales`: F32 `[1]` (per tensor) or `[rows]` (per output), the weight scales;
//! - `<name>.bias`: F32 `[rows]`.
//!
//! The metadata holds `format` (`mpq-lowbit/4`; `/3` files, which have no 2x2 average pool,
//! and `/2` files, whose convolutions are all
//! valid + max-pool, are read too), `model`, `plan` and `layers`: a JSON list of
//! each layer's name, kind and sizes, bit width, input rounding and input quantization.
//! Loading checks every tensor's type and size against the layer table, so a truncated or
//! foreign file is rejected.

use crate::{LowbitError, pack};
use mpq_net::BitWidth;
pub use mpq_net::{LayerKind, Pool, Rounding};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::path::Path;

/// The `format` metadata value this version writes and reads.
pub const FORMAT: &str = "mpq-lowbit/4";

/// Earlier formats this version still reads (their layer kinds are a subset of this one's:
/// `/4` added the 2x2 average pool).
const READS_ALSO: &[&str] = &["mpq-lowbit/3", "mpq-lowbit/2"];

/// One layer of a packed model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QLayer {
    /// Layer name.
    pub name: String,
    /// What it computes.
    pub kind: LayerKind,
    /// Bit width of weight and input; 32 = full precision.
    pub bits: BitWidth,
    /// Rounding of the input at run time (nearest, floor or ceil).
    pub rounding: Rounding,
    /// Input scale.
    pub in_scale: f32,
    /// Input zero point.
    pub in_zero: i32,
    /// Largest input code.
    pub in_qmax: i32,
    /// Packed weight codes (quantized layers).
    #[serde(skip)]
    pub codes: Vec<u8>,
    /// f32 weights (full-precision layers).
    #[serde(skip)]
    pub weights: Vec<f32>,
    /// Weight scales: one, or one per output row.
    #[serde(skip)]
    pub scales: Vec<f32>,
    /// Bias per output.
    #[serde(skip)]
    pub bias: Vec<f32>,
    /// Byte sizes of the four blobs, as stored.
    #[serde(default)]
    pub sizes: [usize; 4],
}

/// A packed model: what `harness export` writes and the engine runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QModel {
    /// Model name (`mlp-256-128`, ...).
    pub model: String,
    /// Plan code the codes were made with.
    pub plan: String,
    /// Layers in forward order.
    pub layers: Vec<QLayer>,
}

fn f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|f| f.to_le_bytes()).collect()
}

fn to_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// Byte sizes of a layer's codes, weights, scales and bias as its header describes it.
fn expected_sizes(l: &QLayer) -> Result<[usize; 4], String> {
    let (rows, cols) = l.kind.weight_shape();
    let n = rows.checked_mul(cols).ok_or_else(|| format!("layer {}: size overflows", l.name))?;
    if l.bits.is_full_precision() {
        return Ok([0, 4 * n, 0, 4 * rows]);
    }
    if l.rounding.is_stochastic() {
        return Err(format!("layer {}: stochastic input rounding cannot run on the engine", l.name));
    }
    let s = l.sizes[2];
    if s != 4 && s != 4 * rows {
        return Err(format!("layer {}: {} scale bytes", l.name, s));
    }
    Ok([pack::packed_len(n, l.bits.get()), 0, s, 4 * rows])
}

impl QModel {
    /// Serializes the model as safetensors bytes.
    pub fn to_bytes(&self) -> Result<Vec<u8>, LowbitError> {
        let mut layers = self.layers.clone();
        let mut blobs: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
        for l in &mut layers {
            let (rows, cols) = l.kind.weight_shape();
            let parts = [l.codes.clone(), f32s(&l.weights), f32s(&l.scales), f32s(&l.bias)];
            l.sizes = [parts[0].len(), parts[1].len(), parts[2].len(), parts[3].len()];
            let [codes, weights, scales, bias] = parts;
            let named = [
                ("codes", Dtype::U8, vec![codes.len()], codes),
                ("weight", Dtype::F32, vec![rows, cols], weights),
                ("scales", Dtype::F32, vec![l.scales.len()], scales),
                ("bias", Dtype::F32, vec![l.bias.len()], bias),
            ];
            for (what, dtype, shape, data) in named.into_iter().filter(|t| !t.3.is_empty()) {
                blobs.push((format!("{}.{what}", l.name), dtype, shape, data));
            }
        }
        let unsupported = |e: String| LowbitError::Unsupported(e);
        let layers_json = serde_json::to_string(&layers).map_err(|e| unsupported(e.to_string()))?;
        let meta = HashMap::from([
            ("format".to_string(), FORMAT.to_string()),
            ("model".to_string(), self.model.clone()),
            ("plan".to_string(), self.plan.clone()),
            ("layers".to_string(), layers_json),
        ]);
        let mut views = Vec::new();
        for (name, dtype, shape, data) in &blobs {
            let view =
                TensorView::new(*dtype, shape.clone(), data).map_err(|e| unsupported(format!("tensor {name}: {e}")))?;
            views.push((name.clone(), view));
        }
        safetensors::serialize(views, Some(meta)).map_err(|e| unsupported(e.to_string()))
    }

    /// Parses and checks a model; `file` names the source in errors.
    pub fn from_bytes(bytes: &[u8], file: &str) -> Result<QModel, LowbitError> {
        let bad = |reason: String| LowbitError::Format { file: file.to_string(), reason };
        let st = SafeTensors::deserialize(bytes).map_err(|e| bad(format!("not a whole safetensors file ({e})")))?;
        let (_, info) = SafeTensors::read_metadata(bytes).map_err(|e| bad(e.to_string()))?;
        let meta = info.metadata().clone().unwrap_or_default();
        let field =
            |k: &str| meta.get(k).cloned().ok_or_else(|| bad(format!("metadata lacks `{k}`: not a {FORMAT} file")));
        let format = field("format")?;
        if format != FORMAT && !READS_ALSO.contains(&format.as_str()) {
            return Err(bad(format!("format `{format}`, expected `{FORMAT}`")));
        }
        let layers: Vec<QLayer> = serde_json::from_str(&field("layers")?).map_err(|e| bad(format!("layers: {e}")))?;
        let mut m = QModel { model: field("model")?, plan: field("plan")?, layers };
        let mut used = 0;
        for l in &mut m.layers {
            let want = expected_sizes(l).map_err(bad)?;
            if l.sizes != want {
                return Err(bad(format!("layer {}: blob sizes {:?}, expected {:?}", l.name, l.sizes, want)));
            }
            let mut take = |what: &str, len: usize, dtype: Dtype| -> Result<Vec<u8>, LowbitError> {
                if len == 0 {
                    return Ok(Vec::new());
                }
                let name = format!("{}.{what}", l.name);
                let t = st.tensor(&name).map_err(|_| bad(format!("tensor `{name}` is missing")))?;
                if t.dtype() != dtype || t.data().len() != len {
                    return Err(bad(format!(
                        "tensor `{name}`: {:?} of {} bytes, expected {dtype:?} of {len}",
                        t.dtype(),
                        t.data().len()
                    )));
                }
                used += 1;
                Ok(t.data().to_vec())
            };
            l.codes = take("codes", want[0], Dtype::U8)?;
            l.weights = to_f32(&take("weight", want[1], Dtype::F32)?);
            l.scales = to_f32(&take("scales", want[2], Dtype::F32)?);
            l.bias = to_f32(&take("bias", want[3], Dtype::F32)?);
        }
        if used != st.len() {
            return Err(bad(format!("{} tensors that no layer names", st.len() - used)));
        }
        Ok(m)
    }

    /// Writes the model atomically.
    pub fn save(&self, path: &Path) -> Result<usize, LowbitError> {
        let bytes = self.to_bytes()?;
        mpq_atomic::write(path, &bytes)
            .map_err(|source| LowbitError::Io { file: path.display().to_string(), source })?;
        Ok(bytes.len())
    }

    /// Reads a model file.
    pub fn load(path: &Path) -> Result<QModel, LowbitError> {
        let bytes =
            std::fs::read(path).map_err(|source| LowbitError::Io { file: path.display().to_string(), source })?;
        QModel::from_bytes(&bytes, &path.display().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> QModel {
        let kind = LayerKind::Linear { d_in: 3, d_out: 2, relu: true, residual: false };
        let q = QLayer {
            name: "fc1".into(),
            kind: kind.clone(),
            bits: BitWidth::of::<4>(),
            rounding: Rounding::Floor,
            in_scale: 0.1,
            in_zero: 0,
            in_qmax: 15,
            codes: pack::pack(&[1, -2, 3, 7, -7, 0], 4),
            weights: vec![],
            scales: vec![0.5],
            bias: vec![0.1, -0.2],
            sizes: [0; 4],
        };
        let f = QLayer {
            name: "fc2".into(),
            bits: BitWidth::FULL,
            codes: vec![],
            weights: vec![1.0; 6],
            scales: vec![],
            ..q.clone()
        };
        QModel { model: "m".into(), plan: "4F-fp".into(), layers: vec![q, f] }
    }

    #[test]
    fn round_trip_and_rejections() {
        let m = tiny();
        let bytes = m.to_bytes().unwrap();
        let back = QModel::from_bytes(&bytes, "t").unwrap();
        assert_eq!(back.layers[0].codes, m.layers[0].codes);
        assert_eq!(back.layers[1].weights, m.layers[1].weights);
        assert_eq!(back.layers[0].bias, m.layers[0].bias);
        let e = QModel::from_bytes(&bytes[..bytes.len() - 3], "cut.mpq").unwrap_err().to_string();
        assert!(e.contains("cut.mpq") && e.contains("not a whole safetensors file"), "{e}");
        let mut more = bytes.clone();
        more.push(0);
        assert!(QModel::from_bytes(&more, "t").is_err(), "trailing bytes are rejected");
        assert!(QModel::from_bytes(b"GARBAGE!xxxxxxxx", "g").unwrap_err().to_string().contains("safetensors"));
        // Read through the safetensors crate's own API: names, types and shapes as documented.
        let st = SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort();
        assert_eq!(names, ["fc1.bias", "fc1.codes", "fc1.scales", "fc2.bias", "fc2.weight"]);
        let w = st.tensor("fc2.weight").unwrap();
        assert_eq!((w.dtype(), w.shape()), (Dtype::F32, &[2usize, 3][..]));
        assert_eq!(st.tensor("fc1.codes").unwrap().dtype(), Dtype::U8);
        let (_, meta) = SafeTensors::read_metadata(&bytes).unwrap();
        assert_eq!(meta.metadata().as_ref().unwrap()["format"], FORMAT);
        // A layer table that does not match the tensors (another shape) is rejected.
        let mut other = tiny();
        other.layers[0].kind = LayerKind::Linear { d_in: 3, d_out: 3, relu: true, residual: false };
        let e = QModel::from_bytes(&other.to_bytes().unwrap(), "s").unwrap_err().to_string();
        assert!(e.contains("layer fc1"), "{e}");
    }
}
