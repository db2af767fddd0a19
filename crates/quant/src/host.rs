//! Simulated quantization of host slices: the scalar reference ([`mpq_net::grid`]) applied
//! element by element, so quantized evaluation on the host ([`mpq_host::HostNet`]) gives
//! the same numbers on every CPU.

use crate::tensor::Granularity;
use crate::{BitWidth, Rounding};
use mpq_host::simd;
use mpq_models::LayerKind;
use mpq_net::grid::{self, QParams, fake_with, max_abs};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Quantize-dequantize every value of `x` with `p` and `mode`; `seed` drives the uniform
/// draws of stochastic rounding (one per value, in order).
pub fn fake_slice(x: &[f32], p: QParams, mode: Rounding, seed: u64) -> Vec<f32> {
    if mode == Rounding::Stochastic {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        return x.iter().map(|&v| grid::fake(v, p, mode, rng.random::<f32>())).collect();
    }
    let mut out = vec![0f32; x.len()];
    let path = mpq_host::simd::path();
    match mode {
        Rounding::Floor => simd::map_on(path, x, &mut out, |v| fake_with(v, p, grid::floor)),
        Rounding::Ceil => simd::map_on(path, x, &mut out, |v| fake_with(v, p, grid::ceil)),
        _ => simd::map_on(path, x, &mut out, |v| fake_with(v, p, f32::round_ties_even)),
    }
    out
}

/// The values of the layer's own input in each row of `h` (all of them unless the layer
/// closes a two-layer skip): what it quantizes and calibrates on.
pub fn own_values<'a>(kind: &LayerKind, h: &'a [f32]) -> std::borrow::Cow<'a, [f32]> {
    let (wi, own) = (kind.input_width(), kind.own_input_width());
    if wi == own {
        return h.into();
    }
    h.chunks(wi).flat_map(|row| row[..own].iter().copied()).collect::<Vec<_>>().into()
}

/// [`fake_slice`] of the layer's own input in each row of `h`, leaving a carried input (the
/// rest of a row where the layer closes a two-layer skip, quantized where it entered its
/// block) as it is.
pub fn fake_input(kind: &LayerKind, h: &[f32], p: QParams, mode: Rounding, seed: u64) -> Vec<f32> {
    let (wi, own) = (kind.input_width(), kind.own_input_width());
    if wi == own {
        return fake_slice(h, p, mode, seed);
    }
    let q = fake_slice(&own_values(kind, h), p, mode, seed);
    let mut out = h.to_vec();
    for (row, qs) in out.chunks_mut(wi).zip(q.chunks(own)) {
        row[..own].copy_from_slice(qs);
    }
    out
}

/// A layer's weight quantized symmetrically at `bits` with `mode`: one scale for the tensor,
/// or one per output channel (Linear column, conv filter).
pub fn quant_weight(
    kind: &LayerKind,
    w: &[f32],
    bits: BitWidth,
    mode: Rounding,
    g: Granularity,
    seed: u64,
) -> Vec<f32> {
    match (g, kind) {
        (Granularity::PerTensor, _) => fake_slice(w, QParams::symmetric(max_abs(w), bits.get()), mode, seed),
        (Granularity::PerChannel, LayerKind::Conv { c_out, .. }) => {
            let per = w.len() / c_out;
            (0..*c_out)
                .flat_map(|o| {
                    let f = &w[o * per..(o + 1) * per];
                    fake_slice(f, QParams::symmetric(max_abs(f), bits.get()), mode, seed ^ o as u64)
                })
                .collect()
        }
        (Granularity::PerChannel, LayerKind::Linear { d_in, d_out, .. }) => {
            let mut out = vec![0f32; w.len()];
            for j in 0..*d_out {
                let col: Vec<f32> = (0..*d_in).map(|i| w[i * d_out + j]).collect();
                let q = fake_slice(&col, QParams::symmetric(max_abs(&col), bits.get()), mode, seed ^ j as u64);
                for (i, v) in q.into_iter().enumerate() {
                    out[i * d_out + j] = v;
                }
            }
            out
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor;
    use burn::prelude::*;
    use mpq_models::Weight;

    /// A layer that closes a two-layer skip quantizes its own input and leaves the carried
    /// one as it came (bit for bit); other layers quantize the whole row.
    #[test]
    fn only_the_layers_own_input_is_quantized() {
        let close = LayerKind::Conv {
            c_in: 1,
            c_out: 2,
            side_in: 2,
            same: true,
            kernel: 3,
            stride: 1,
            residual: false,
            pool: mpq_models::Pool::None,
            carry: mpq_models::Carry::Close { c: 1, side: 2 },
        };
        let h: Vec<f32> = (0..16).map(|i| i as f32 * 0.0731).collect();
        let p = QParams::for_range(0.0, 1.0, 3);
        let q = fake_input(&close, &h, p, Rounding::Floor, 0);
        let whole = fake_slice(&h, p, Rounding::Floor, 0);
        for (row, (qr, wr)) in h.chunks(8).zip(q.chunks(8).zip(whole.chunks(8))) {
            assert_eq!(&qr[..4], &wr[..4], "own input quantized");
            assert_eq!(&qr[4..], &row[4..], "carried input untouched");
            assert_ne!(&wr[4..], &row[4..], "the test would prove nothing");
        }
        assert_eq!(own_values(&close, &h).as_ref(), [&h[..4], &h[8..12]].concat());
        let plain = LayerKind::Linear { d_in: 8, d_out: 2, relu: false, residual: false };
        assert_eq!(fake_input(&plain, &h, p, Rounding::Floor, 0), whole);
    }

    /// The vectorizable quantizer gives [`grid::fake`]'s bits on both SIMD paths, for every
    /// searched rounding and width, at grid points, ties, the clamps, huge values, infinities,
    /// NaN and signed zeros.
    #[test]
    fn fake_slice_equals_the_scalar_reference() {
        let covered = [("portable", true), ("avx2", simd::Path::Avx2.supported())];
        mpq_net::simd::coverage("fake_slice_equals_the_scalar_reference", &covered).unwrap();
        let mut x: Vec<f32> = (0..=255).map(|p| p as f32 / 255.0).collect();
        x.extend((-4000..4000).map(|i| i as f32 * 0.00137));
        x.extend([0.0, -0.0, 0.5, -0.5, 1.5, 2.5, 1e30, -1e30, 3e7, -3e7, f32::INFINITY, f32::NEG_INFINITY, f32::NAN]);
        let paths = [simd::Path::Portable, simd::Path::Avx2];
        for bits in [2u32, 3, 4, 6, 8, 16] {
            for p in
                [QParams::for_range(0.0, 1.0, bits), QParams::for_range(-1.3, 2.9, bits), QParams::symmetric(4.7, bits)]
            {
                for mode in Rounding::SEARCHED {
                    let want: Vec<u32> = x.iter().map(|&v| grid::fake(v, p, mode, 0.0).to_bits()).collect();
                    let got: Vec<u32> = fake_slice(&x, p, mode, 0).iter().map(|v| v.to_bits()).collect();
                    let bad = (0..x.len()).find(|&i| got[i] != want[i]);
                    assert!(bad.is_none(), "{bits} bits, {mode:?}, {p:?}: x = {:?}", bad.map(|i| x[i]));
                    for path in paths {
                        let mut out = vec![0f32; x.len()];
                        let round = |v: f32| match mode {
                            Rounding::Floor => grid::floor(v),
                            Rounding::Ceil => grid::ceil(v),
                            _ => v.round_ties_even(),
                        };
                        simd::map_on(path, &x, &mut out, |v| fake_with(v, p, round));
                        let bad = (0..x.len()).find(|&i| out[i].to_bits() != want[i]);
                        assert!(bad.is_none(), "{path:?}, {bits} bits, {mode:?}: x = {:?}", bad.map(|i| x[i]));
                    }
                }
            }
        }
    }

    /// The host quantizer and the burn-tensor one agree on every rounding and granularity.
    #[test]
    fn host_weights_match_tensor_quantizer() {
        let dev = Device::flex();
        let v: Vec<f32> = (0..48).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0).collect();
        let kind = LayerKind::Linear { d_in: 6, d_out: 8, relu: true, residual: false };
        let w = Weight::Linear(Tensor::<2>::from_data(TensorData::new(v.clone(), [6, 8]), &dev));
        for mode in Rounding::SEARCHED {
            for g in [Granularity::PerTensor, Granularity::PerChannel] {
                let want = match g {
                    Granularity::PerTensor => tensor::quant_tensor_weight(&w, max_abs(&v), 4, mode, 0),
                    Granularity::PerChannel => tensor::quant_tensor_weight_per_channel(&w, 4, mode, 0),
                }
                .to_vec();
                let got = quant_weight(&kind, &v, BitWidth::new(4).unwrap(), mode, g, 0);
                for (a, b) in got.iter().zip(&want) {
                    assert!((a - b).abs() < 1e-6, "{mode:?} {g:?}: {a} vs {b}");
                }
            }
        }
    }
}
