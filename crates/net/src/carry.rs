//! A skip connection that spans two layers (a ResNet's basic block): the block's first layer
//! passes its input on after its own output ([`Carry::Open`]), and the second adds it to its
//! pre-activation before the ReLU ([`Carry::Close`]). The carried values ride in the rows
//! between the two layers, so every executor still runs a chain of single layers; a layer
//! quantizes only its own input (the carried part was quantized where it entered the block).
//!
//! Where the block changes shape (a stride-2 first convolution, more channels), the shortcut
//! is He et al.'s option A: every `r`-th pixel in each direction, zero channels on both sides
//! (`(c_out - c) / 2` before, the rest after), no weights.

use serde::{Deserialize, Serialize};

/// A layer's part in a two-layer skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Carry {
    /// No part in a two-layer skip.
    #[default]
    None,
    /// The layer's input (as the layer saw it: quantized where the layer's input is) follows
    /// its output in each row: the skip's source.
    Open,
    /// Each input row ends with a carried block input `[c][side][side]`, added through the
    /// shortcut to the pre-activation before the ReLU.
    Close {
        /// Channels of the carried input.
        c: usize,
        /// Its side.
        side: usize,
    },
}

impl Carry {
    /// Values per example carried into a [`Carry::Close`] layer (0 otherwise).
    pub fn closing_width(self) -> usize {
        match self {
            Carry::Close { c, side } => c * side * side,
            _ => 0,
        }
    }
}

/// The shortcut's geometry: carried `[c][side][side]` onto `[c_out][o][o]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shortcut {
    /// Carried channels.
    pub c: usize,
    /// Carried side.
    pub side: usize,
    /// Channels of the pre-activation it is added to.
    pub c_out: usize,
    /// Its side.
    pub o: usize,
}

impl Shortcut {
    /// Why the carried input cannot be added to a `[c_out][o][o]` pre-activation, if it
    /// cannot: more channels than the output, or a side that is not a whole multiple of `o`.
    pub fn check(&self) -> Result<(), String> {
        let Shortcut { c, side, c_out, o } = *self;
        if c == 0 || c > c_out || o == 0 || side % o != 0 {
            return Err(format!(
                "a {c}x{side}x{side} carried input cannot be added to a {c_out}x{o}x{o} output (needs at most {c_out} channels and a side that is a multiple of {o})"
            ));
        }
        Ok(())
    }

    /// Pixel step of the subsampling.
    fn step(&self) -> usize {
        self.side / self.o.max(1)
    }

    /// Zero channels before the carried ones.
    fn front(&self) -> usize {
        (self.c_out - self.c) / 2
    }

    /// Adds the shortcut of `carried` (`[c][side][side]`) to `z` (`[c_out][o][o]`), value by
    /// value: the carried value, or +0 in the zero channels.
    pub fn add(&self, carried: &[f32], z: &mut [f32]) {
        let (o, r, front) = (self.o, self.step(), self.front());
        for (co, plane) in z.chunks_exact_mut(o * o).enumerate() {
            let ch = co.checked_sub(front).filter(|&ch| ch < self.c);
            for (y, row) in plane.chunks_exact_mut(o).enumerate() {
                for (x, v) in row.iter_mut().enumerate() {
                    *v += ch.map_or(0.0, |ch| carried[(ch * self.side + y * r) * self.side + x * r]);
                }
            }
        }
    }

    /// The gradient of [`Shortcut::add`] with respect to the carried input, from the
    /// pre-activation's `dz`: each sampled pixel gets its output's gradient, the others 0.
    pub fn grad(&self, dz: &[f32]) -> Vec<f32> {
        let (o, r, front) = (self.o, self.step(), self.front());
        let mut d = vec![0f32; self.c * self.side * self.side];
        for ch in 0..self.c {
            for y in 0..o {
                for x in 0..o {
                    d[(ch * self.side + y * r) * self.side + x * r] = dz[((front + ch) * o + y) * o + x];
                }
            }
        }
        d
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Option A: 2 channels of side 4 onto 4 channels of side 2: one zero channel on each
    /// side, every other pixel; the gradient is the adjoint (⟨dz, S x⟩ = ⟨Sᵀ dz, x⟩).
    #[test]
    fn option_a_subsamples_and_pads_channels() {
        let s = Shortcut { c: 2, side: 4, c_out: 4, o: 2 };
        assert!(s.check().is_ok());
        let x: Vec<f32> = (0..32).map(|i| i as f32).collect();
        let mut z = vec![0.5f32; 16];
        s.add(&x, &mut z);
        assert_eq!(&z[..4], &[0.5; 4], "zero channel in front");
        assert_eq!(&z[4..8], &[0.5, 2.5, 8.5, 10.5]);
        assert_eq!(&z[8..12], &[16.5, 18.5, 24.5, 26.5]);
        assert_eq!(&z[12..], &[0.5; 4], "zero channel behind");
        let dz: Vec<f32> = (0..16).map(|i| (i * 7 % 5) as f32 - 2.0).collect();
        let mut sx = vec![0f32; 16];
        s.add(&x, &mut sx);
        let lhs: f32 = dz.iter().zip(&sx).map(|(a, b)| a * b).sum();
        let rhs: f32 = s.grad(&dz).iter().zip(&x).map(|(a, b)| a * b).sum();
        assert_eq!(lhs, rhs);
        // Same shape: the identity.
        let same = Shortcut { c: 2, side: 4, c_out: 2, o: 4 };
        let mut z = vec![1f32; 32];
        same.add(&x, &mut z);
        assert!(z.iter().zip(&x).all(|(a, b)| *a == b + 1.0));
        assert_eq!(same.grad(&x), x);
        assert!(Shortcut { c: 5, side: 4, c_out: 4, o: 2 }.check().is_err());
        assert!(Shortcut { c: 2, side: 7, c_out: 4, o: 4 }.check().is_err());
        assert_eq!(Carry::Close { c: 2, side: 4 }.closing_width(), 32);
        assert_eq!(Carry::Open.closing_width(), 0);
    }
}
