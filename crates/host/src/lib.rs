//! The f32 executor: the network of [`mpq_net`]'s description computed on the host in plain
//! Rust, with a fixed order of every sum, so a result depends on the weights and inputs
//! alone, never on the CPU's SIMD level, a backend's kernels or the thread count.
//! Quantized evaluation, calibration, searches, gradients and host training run here.
//!
//! Order of sums: an output element starts at its bias and adds its products in the order
//! of the weight's input index (`c * 9 + ky * 3 + kx` for convolutions). Nothing is fused
//! (Rust never contracts `a * b + c` into an FMA), and work is split across threads by
//! example only, so every element is computed the same way whatever the split.
//!
//! One file per layer kind holds its forward and backward passes ([`linear`], [`conv`]);
//! [`net`] chains them; [`batchnorm`] holds batch normalization and its folding into a
//! convolution. This crate knows nothing of burn, files or search.

pub mod batchnorm;
pub mod bn_net;
pub mod conv;
#[cfg(target_arch = "x86_64")]
mod conv_avx2;
pub mod grad;
mod kernels;
pub mod linear;
pub mod net;
pub mod optim;
pub mod simd;

pub use grad::{Grads, ce_grad};

/// Examples per parallel work item of a layer's forward pass.
pub(crate) const CHUNK: usize = 32;
pub use bn_net::BnNet;
pub use net::HostNet;
pub use optim::{Adam, AdamForm};

#[cfg(test)]
pub(crate) mod tests {
    /// `n` values, every fifth zero (where depends on `s`), negatives, no pattern a kernel
    /// could exploit.
    pub(crate) fn pattern(n: usize, s: usize) -> Vec<f32> {
        (0..n).map(|i| if i % 5 == s % 5 { 0.0 } else { (((i * s * 7919) % 2001) as f32 - 1000.0) / 377.0 }).collect()
    }

    /// Uniform-looking values in [-0.5, 0.5) from `seed`.
    pub(crate) fn noise(n: usize, seed: u32) -> Vec<f32> {
        (0..n)
            .map(|i| ((i as u32).wrapping_mul(2654435761).wrapping_add(seed) >> 8) as f32 / (1u32 << 24) as f32 - 0.5)
            .collect()
    }
}
