//! The description of a network that every executor reads: the layer kinds with their
//! shapes ([`LayerKind`], [`Pool`]), the rounding modes ([`Rounding`]), the supported bit
//! widths ([`BitWidth`]) and the quantization grid ([`grid`]: the one quantize function with
//! grid-exact floor and ceil, the weight and input parameters).
//!
//! burn's `Net` (`mpq-models`), the f32 host network and the integer engine (`mpq-lowbit`)
//! are built from these types; this crate knows nothing of burn, training, files or search.

pub mod bits;
pub mod carry;
pub mod chain;
pub mod grid;
pub mod layer;
pub mod layout;
pub mod rounding;
pub mod simd;

pub use bits::{BitWidth, BitsError};
pub use carry::{Carry, Shortcut};
pub use grid::QParams;
pub use layer::{Arch, ConvGeom, LayerKind, LayerSpec, Pool};
pub use rounding::Rounding;
