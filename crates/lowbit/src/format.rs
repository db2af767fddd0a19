//! The packed-model file: `MPQLOWB1`, a little-endian u64 header length, a JSON header
//! (layers, bit widths, roundings, input quantization, sizes), then per layer the packed
//! weight codes (or f32 weights for a full-precision layer), its f32 weight scales and its
//! f32 bias. Loading checks every size, so a truncated or foreign file is rejected.

use crate::{LowbitError, pack};
use serde::{Deserialize, Serialize};
use std::path::Path;

const MAGIC: &[u8; 8] = b"MPQLOWB1";

/// What a layer computes (mirrors `mpq-models`' layer kinds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum LayerKind {
    /// `y = x W + b`, optional ReLU, optional identity skip. Weights stored `[d_out][d_in]`.
    Linear {
        /// Inputs.
        d_in: usize,
        /// Outputs.
        d_out: usize,
        /// ReLU after.
        relu: bool,
        /// Identity skip.
        residual: bool,
    },
    /// 3x3 valid conv, ReLU, 2x2 max-pool. Weights stored `[c_out][c_in * 9]`.
    Conv {
        /// Input channels.
        c_in: usize,
        /// Output channels.
        c_out: usize,
        /// Input side.
        side_in: usize,
    },
}

impl LayerKind {
    /// (rows, cols) of the weight matrix as stored.
    pub fn weight_shape(&self) -> (usize, usize) {
        match *self {
            LayerKind::Linear { d_in, d_out, .. } => (d_out, d_in),
            LayerKind::Conv { c_in, c_out, .. } => (c_out, c_in * 9),
        }
    }
}

/// One layer of a packed model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QLayer {
    /// Layer name.
    pub name: String,
    /// What it computes.
    pub kind: LayerKind,
    /// Bit width of weight and input; 32 = full precision.
    pub bits: u32,
    /// Rounding of the input at run time: `nearest`, `floor` or `ceil`.
    pub rounding: String,
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

impl QModel {
    /// Serializes the model.
    pub fn to_bytes(&self) -> Result<Vec<u8>, LowbitError> {
        let mut m = self.clone();
        let mut blobs = Vec::new();
        for l in &mut m.layers {
            let parts = [l.codes.clone(), f32s(&l.weights), f32s(&l.scales), f32s(&l.bias)];
            l.sizes = [parts[0].len(), parts[1].len(), parts[2].len(), parts[3].len()];
            blobs.extend(parts.into_iter().flatten());
        }
        let header = serde_json::to_vec(&m).map_err(|e| LowbitError::Unsupported(e.to_string()))?;
        let mut out = Vec::with_capacity(16 + header.len() + blobs.len());
        out.extend(MAGIC);
        out.extend((header.len() as u64).to_le_bytes());
        out.extend(header);
        out.extend(blobs);
        Ok(out)
    }

    /// Parses and checks a model; `file` names the source in errors.
    pub fn from_bytes(bytes: &[u8], file: &str) -> Result<QModel, LowbitError> {
        let bad = |reason: String| LowbitError::Format { file: file.to_string(), reason };
        if bytes.len() < 16 || &bytes[..8] != MAGIC {
            return Err(bad("missing the MPQLOWB1 magic".into()));
        }
        let hlen = u64::from_le_bytes(bytes[8..16].try_into().map_err(|_| bad("header length".into()))?) as usize;
        let body = bytes
            .get(16..16usize.saturating_add(hlen))
            .ok_or_else(|| bad(format!("header of {hlen} bytes is truncated")))?;
        let mut m: QModel = serde_json::from_slice(body).map_err(|e| bad(format!("header: {e}")))?;
        let mut at = 16 + hlen;
        for l in &mut m.layers {
            let (rows, cols) = l.kind.weight_shape();
            let n = rows.checked_mul(cols).ok_or_else(|| bad(format!("layer {}: size overflows", l.name)))?;
            let want = if l.bits >= 32 {
                [0, 4 * n, 0, 4 * rows]
            } else if (2..=8).contains(&l.bits) || l.bits == 16 {
                let s = l.sizes[2];
                if s != 4 && s != 4 * rows {
                    return Err(bad(format!("layer {}: {} scale bytes", l.name, s)));
                }
                [pack::packed_len(n, l.bits), 0, s, 4 * rows]
            } else {
                return Err(bad(format!("layer {}: unsupported bit width {}", l.name, l.bits)));
            };
            if l.sizes != want {
                return Err(bad(format!("layer {}: blob sizes {:?}, expected {:?}", l.name, l.sizes, want)));
            }
            let mut take = |len: usize| -> Result<&[u8], LowbitError> {
                let s = bytes.get(at..at + len).ok_or_else(|| bad(format!("layer {} is truncated", l.name)))?;
                at += len;
                Ok(s)
            };
            let to_f32 =
                |b: &[u8]| b.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect::<Vec<_>>();
            l.codes = take(want[0])?.to_vec();
            l.weights = to_f32(take(want[1])?);
            l.scales = to_f32(take(want[2])?);
            l.bias = to_f32(take(want[3])?);
        }
        if at != bytes.len() {
            return Err(bad(format!("{} trailing bytes", bytes.len() - at)));
        }
        Ok(m)
    }

    /// Writes the model atomically.
    pub fn save(&self, path: &Path) -> Result<usize, LowbitError> {
        let bytes = self.to_bytes()?;
        let io = |source| LowbitError::Io { file: path.display().to_string(), source };
        let tmp = path.with_extension("mpq.tmp");
        std::fs::write(&tmp, &bytes).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(io)?;
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
            bits: 4,
            rounding: "floor".into(),
            in_scale: 0.1,
            in_zero: 0,
            in_qmax: 15,
            codes: pack::pack(&[1, -2, 3, 7, -7, 0], 4),
            weights: vec![],
            scales: vec![0.5],
            bias: vec![0.1, -0.2],
            sizes: [0; 4],
        };
        let f =
            QLayer { name: "fc2".into(), bits: 32, codes: vec![], weights: vec![1.0; 6], scales: vec![], ..q.clone() };
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
        assert!(e.contains("cut.mpq") && e.contains("truncated"), "{e}");
        let mut more = bytes.clone();
        more.push(0);
        assert!(QModel::from_bytes(&more, "t").unwrap_err().to_string().contains("trailing"));
        assert!(QModel::from_bytes(b"GARBAGE!xxxxxxxx", "g").unwrap_err().to_string().contains("magic"));
        let text = String::from_utf8_lossy(&bytes).replace("\"d_out\":2", "\"d_out\":3");
        assert!(QModel::from_bytes(text.as_bytes(), "s").is_err(), "a model of another shape is rejected");
    }
}
