//! The host network: parameters in the layouts of the description, the forward pass stage
//! by stage, and the backward pass that chains each layer kind's own.

use crate::grad::{Grads, LayerGrads, ce_grad};
use crate::{CHUNK, conv, linear};
use mpq_net::LayerKind;
use rayon::prelude::*;

/// A trained network's parameters on the host, with its architecture.
#[derive(Debug, Clone, Default)]
pub struct HostNet {
    /// Layer kinds in forward order.
    pub kinds: Vec<LayerKind>,
    /// Each layer's weight (`[d_in, d_out]` for a linear layer, `[c_out, c_in, 3, 3]` for a
    /// convolution).
    pub weights: Vec<Vec<f32>>,
    /// Each layer's bias (`d_out` or `c_out` values).
    pub biases: Vec<Vec<f32>>,
}

impl HostNet {
    /// Number of quantizable layers.
    pub fn n_layers(&self) -> usize {
        self.kinds.len()
    }

    /// Runs layer `k` on a batch `x` (rows of its input width) with weight `w` (the layer's
    /// own when `None`); returns the next layer's input for the same rows.
    pub fn stage(&self, k: usize, x: &[f32], w: Option<&[f32]>) -> Vec<f32> {
        let kind = &self.kinds[k];
        let (wi, wo) = (kind.input_width(), kind.output_width());
        let (w, b) = (w.unwrap_or(&self.weights[k]), &self.biases[k]);
        let mut out = vec![0f32; x.len() / wi * wo];
        out.par_chunks_mut(CHUNK * wo).zip(x.par_chunks(CHUNK * wi)).for_each(|(o, xs)| match kind {
            LayerKind::Linear { .. } => linear::forward(kind, xs, w, b, o),
            LayerKind::Conv { .. } => conv::forward(kind, xs, w, b, o),
        });
        out
    }

    /// [`HostNet::stage`] with weight `w`, also returning the layer's pre-activations (the
    /// sums before ReLU, skip and pooling; `[rows, c_out, s, s]` for convolutions), which
    /// the backward pass needs. The output has the same bits as [`HostNet::stage`]'s.
    pub fn stage_keep(&self, k: usize, x: &[f32], w: &[f32]) -> (Vec<f32>, Vec<f32>) {
        let kind = &self.kinds[k];
        match kind {
            LayerKind::Linear { .. } => linear::forward_keep(kind, x, w, &self.biases[k]),
            LayerKind::Conv { .. } => conv::forward_keep(kind, x, w, &self.biases[k]),
        }
    }

    /// Logits `[n, 10]` of a batch of flattened images, at full precision.
    pub fn forward(&self, x: &[f32]) -> Vec<f32> {
        (0..self.n_layers()).fold(x.to_vec(), |h, k| self.stage(k, &h, None))
    }

    /// Gradients of the mean cross-entropy of `x` (flattened images) against `y`, with the
    /// layers' weights replaced by `weights` where given.
    pub fn gradients(&self, x: &[f32], y: &[i64], weights: Option<&[Vec<f32>]>) -> Grads {
        self.backprop(x, y, weights, true).0
    }

    /// [`HostNet::gradients`] and the logits they were taken at; dL/dx of the first layer
    /// only when `first_input` (training does not need it, and it costs as much as that
    /// layer's forward pass).
    pub fn backprop(&self, x: &[f32], y: &[i64], weights: Option<&[Vec<f32>]>, first_input: bool) -> (Grads, Vec<f32>) {
        let (g, logits, _) = self.backprop_kept(x, y, weights, first_input);
        (g, logits)
    }

    /// [`HostNet::backprop`], also returning every layer's input as the forward pass computed
    /// it (the same bits as [`HostNet::stage`] gives): what a caller that needs both the
    /// activations and the gradients (the Taylor search) would otherwise compute twice.
    pub fn backprop_kept(
        &self,
        x: &[f32],
        y: &[i64],
        weights: Option<&[Vec<f32>]>,
        first_input: bool,
    ) -> (Grads, Vec<f32>, Vec<Vec<f32>>) {
        let w = |k: usize| weights.map_or(&self.weights[k], |ws| &ws[k]);
        let n = self.n_layers();
        let (mut inputs, mut pre) = (vec![x.to_vec()], Vec::with_capacity(n));
        for k in 0..n {
            let (next, z) = self.stage_keep(k, &inputs[k], w(k));
            inputs.push(next);
            pre.push(z);
        }
        let logits = inputs.pop().unwrap_or_default();
        let mut dy = ce_grad(&logits, y);
        let mut g = Grads { weight: vec![Vec::new(); n], bias: vec![Vec::new(); n], input: vec![Vec::new(); n] };
        for k in (0..n).rev() {
            let need_dx = k > 0 || first_input;
            let kind = &self.kinds[k];
            let lg: LayerGrads = match kind {
                LayerKind::Linear { .. } => linear::backward(kind, &inputs[k], w(k), &pre[k], &dy, need_dx),
                LayerKind::Conv { .. } => conv::backward(kind, &inputs[k], w(k), &pre[k], &dy, need_dx),
            };
            (g.weight[k], g.bias[k], g.input[k]) = (lg.dw, lg.db, lg.dx.clone());
            dy = lg.dx;
        }
        (g, logits, inputs)
    }
}
