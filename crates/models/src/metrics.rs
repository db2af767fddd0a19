//! Loss and accuracy computed on the host from logits, in f64 with the pure-Rust `libm`
//! (not the platform's, whose `exp` may pick CPU-specific code), so every plan and baseline
//! is scored by the same code whatever backend or CPU produced the logits.

use crate::Net;
use burn::prelude::*;
use mpq_data::Images;
use rayon::prelude::*;

/// Mean cross-entropy and accuracy of a set of predictions.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Metrics {
    /// Mean cross-entropy (nats).
    pub loss: f64,
    /// Fraction of correct argmax predictions.
    pub acc: f64,
}

/// Per-example cross-entropy of `logits / temperature` (row-major `[n, classes]`).
pub fn per_example_ce(logits: &[f32], labels: &[i64], temperature: f64) -> Vec<f64> {
    let c = logits.len() / labels.len().max(1);
    if c == 0 {
        return vec![f64::NAN; labels.len()];
    }
    // Blocks of examples in parallel; in a block, every shifted logit's exponential side by
    // side (`expm`: `libm`'s bits), then each row's sum in order. Each example's value is
    // computed alone, so neither the blocks nor the vectors change a bit.
    let blocks: Vec<Vec<f64>> = labels
        .par_chunks(CE_BLOCK)
        .zip(logits.par_chunks(CE_BLOCK * c))
        .map(|(ys, rows)| {
            // Each logit over the temperature once; a division by 1 leaves every value as it
            // is, so it is skipped.
            let mut z: Vec<f64> = if temperature == 1.0 {
                rows.iter().map(|&v| v as f64).collect()
            } else {
                rows.iter().map(|&v| v as f64 / temperature).collect()
            };
            let m: Vec<f64> = z.chunks(c).map(|r| r.iter().copied().fold(f64::NEG_INFINITY, f64::max)).collect();
            let picked: Vec<f64> = ys.iter().zip(z.chunks(c)).map(|(&y, r)| r[y as usize]).collect();
            z.chunks_mut(c).zip(&m).for_each(|(r, &m)| r.iter_mut().for_each(|v| *v -= m));
            let mut e = vec![0f64; z.len()];
            crate::expm::exp_into(&z, &mut e);
            let per = e.chunks(c).zip(m.iter().zip(&picked));
            per.map(|(ex, (&m, &p))| m + libm::log(ex.iter().sum::<f64>()) - p).collect()
        })
        .collect();
    blocks.concat()
}

/// Examples per parallel block of [`per_example_ce`].
const CE_BLOCK: usize = 64;

/// Loss (at `temperature`) and accuracy of logits against labels.
pub fn score(logits: &[f32], labels: &[i64], temperature: f64) -> Metrics {
    let n = labels.len().max(1);
    let c = logits.len() / n;
    let loss = per_example_ce(logits, labels, temperature).iter().sum::<f64>() / n as f64;
    let correct = labels
        .iter()
        .enumerate()
        .filter(|&(i, &y)| {
            let row = &logits[i * c..(i + 1) * c];
            let arg = row.iter().enumerate().fold(0, |best, (j, &v)| if v > row[best] { j } else { best });
            arg == y as usize
        })
        .count();
    Metrics { loss, acc: correct as f64 / n as f64 }
}

/// Examples per forward batch in evaluation: bounded memory for the CNN on big splits.
pub const EVAL_BATCH: usize = 1000;

/// A split's images as input tensors on `device`, in evaluation batches.
pub fn batches(data: &Images, idx: &[usize], device: &Device) -> Vec<Tensor<2>> {
    batches_of(&data.gather_f32(idx), EVAL_BATCH, device)
}

/// Flattened images (784 values each) as input tensors of at most `batch` rows.
pub fn batches_of(x: &[f32], batch: usize, device: &Device) -> Vec<Tensor<2>> {
    x.chunks(batch.max(1) * 784)
        .map(|c| Tensor::from_data(TensorData::new(c.to_vec(), [c.len() / 784, 784]), device))
        .collect()
}

/// Full-precision logits of the network for the given examples, row-major `[n, 10]`.
pub fn logits(net: &Net, data: &Images, idx: &[usize], device: &Device) -> Vec<f32> {
    batches(data, idx, device)
        .into_iter()
        .flat_map(|x| net.forward(x).into_data().iter::<f32>().collect::<Vec<_>>())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ce_matches_hand_computation() {
        let logits = [0.0f32, 0.0, 2.0, 0.0];
        let m = score(&logits, &[0, 0], 1.0);
        let l0 = 2f64.ln();
        let l1 = (1.0 + 2f64.exp()).ln() - 2.0;
        assert!((m.loss - (l0 + l1) / 2.0).abs() < 1e-12);
        assert_eq!(m.acc, 1.0); // ties go to the first class
        assert!(score(&logits, &[0, 0], 1e6).loss - 2f64.ln() < 1e-5, "huge temperature gives uniform");
    }
}
