//! Gradients of the mean cross-entropy on the host, in the fixed summation order of the
//! crate: with respect to each layer's weight and each layer's input ([`crate::HostNet::backprop`]
//! chains each layer kind's backward pass). Used by host training, the first-order (Taylor)
//! predictor and the Hessian-trace (HAWQ) baseline, so that what they choose does not depend
//! on the CPU either.

/// Gradients of one batch's mean loss.
#[derive(Debug, Clone)]
pub struct Grads {
    /// dL/dW per layer, in the weight's layout.
    pub weight: Vec<Vec<f32>>,
    /// dL/db per layer.
    pub bias: Vec<Vec<f32>>,
    /// dL/dx per layer: the gradient with respect to the layer's input, rows per example
    /// (empty for the first layer when not asked for).
    pub input: Vec<Vec<f32>>,
}

/// One layer's gradients.
#[derive(Debug, Clone, Default)]
pub struct LayerGrads {
    /// dL/dx, rows per example (empty when not needed).
    pub dx: Vec<f32>,
    /// dL/dW in the weight's layout.
    pub dw: Vec<f32>,
    /// dL/db.
    pub db: Vec<f32>,
}

/// dL/dlogits of the mean cross-entropy: `(softmax - onehot) / n`, computed in f64.
pub fn ce_grad(logits: &[f32], labels: &[i64]) -> Vec<f32> {
    let n = labels.len().max(1);
    let c = logits.len() / n;
    let mut g = vec![0f32; logits.len()];
    for (i, &y) in labels.iter().enumerate() {
        let row = &logits[i * c..(i + 1) * c];
        let m = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
        let e: Vec<f64> = row.iter().map(|&v| libm::exp(v as f64 - m)).collect();
        let s: f64 = e.iter().sum();
        for j in 0..c {
            let t = if j as i64 == y { 1.0 } else { 0.0 };
            g[i * c + j] = ((e[j] / s - t) / n as f64) as f32;
        }
    }
    g
}
