//! The input normalisation an imported network was trained with, folded into its first layer,
//! so that it reads pixels / 255 like every network the harness trains (and its input
//! quantizer calibrates on the same values).

use crate::{Imported, OnnxError};
use mpq_net::LayerKind;
use std::path::Path;

/// What the network expects as input: `(pixel / 255 − mean) × scale` (PyTorch's
/// `Normalize(m, s)` is `mean = m`, `scale = 1 / s`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Normalisation {
    /// Subtracted from pixels / 255.
    pub mean: f32,
    /// Applied after the mean is subtracted.
    pub scale: f32,
}

impl Normalisation {
    /// No normalisation: the network reads pixels / 255.
    pub const IDENTITY: Normalisation = Normalisation { mean: 0.0, scale: 1.0 };
}

impl Imported {
    /// Folds `norm` into the first layer: weights times `scale`, and each bias minus
    /// `mean × scale ×` the sum of the weights feeding it. Exact for a linear layer and a
    /// convolution without padding; a zero-padded convolution pads in normalised space, so
    /// it only takes a scale, and an identity skip on the first layer takes neither.
    pub fn normalise_input(&mut self, norm: Normalisation, path: &Path) -> Result<(), OnnxError> {
        let Normalisation { mean, scale } = norm;
        let refuse = |why: &str| OnnxError::Normalisation { path: path.into(), mean, scale, why: why.into() };
        if !(mean.is_finite() && scale.is_finite() && scale != 0.0) {
            return Err(refuse("needs a finite mean and a finite, non-zero scale"));
        }
        if norm == Normalisation::IDENTITY {
            return Ok(());
        }
        let net = &mut self.net;
        let (Some(kind), Some(w), Some(b)) = (net.kinds.first(), net.weights.first_mut(), net.biases.first_mut())
        else {
            return Err(refuse("has no first layer to fold into"));
        };
        if kind.residual() {
            return Err(refuse("cannot be folded into a first layer with an identity skip"));
        }
        // (out index of weight i, number of outputs).
        let out_of: Box<dyn Fn(usize) -> usize> = match *kind {
            LayerKind::Linear { d_out, .. } => Box::new(move |i| i % d_out),
            LayerKind::Conv { c_in, kernel, .. } => {
                if kind.conv_geom().is_some_and(|g| g.pad > 0) && mean != 0.0 {
                    return Err(refuse(
                        "subtracts a mean, which a zero-padded first convolution cannot absorb (its padding is zero after normalisation); export the model with the normalisation inside it",
                    ));
                }
                Box::new(move |i| i / (c_in * kernel * kernel))
            }
        };
        let mut sums = vec![0f64; b.len()];
        for (i, v) in w.iter_mut().enumerate() {
            let Some(s) = sums.get_mut(out_of(i)) else {
                return Err(refuse("does not fit the first layer's weights (more weights than its outputs take)"));
            };
            *s += f64::from(*v);
            *v *= scale;
        }
        for (bo, s) in b.iter_mut().zip(sums) {
            *bo = (f64::from(*bo) - f64::from(mean) * f64::from(scale) * s) as f32;
        }
        Ok(())
    }
}
