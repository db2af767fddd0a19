//! Packing a plan into a low-bit model for the integer engine: per layer, the weight codes
//! under the plan's bit width and rounding (per-tensor or per-output scales), the input
//! quantization from calibration, and full-precision layers kept as f32.

use crate::QuantError;
use crate::tensor::Granularity;
use crate::{Choice, Plan, Target};
use mpq_lowbit::{QLayer, QModel, pack};
use mpq_models::Net;
use mpq_net::grid::{QParams, max_abs, quantize};

/// Weights of layer `k` row-major per output, as the engine stores them (burn's Linear weight
/// is `[d_in, d_out]`, so it is transposed; conv weights already are `[c_out][c_in * 9]`).
fn rows_by_output(net: &Net, k: usize, rows: usize, cols: usize) -> Vec<f32> {
    let w = net.weight(k);
    let v = w.to_vec();
    match w {
        mpq_models::Weight::Linear(_) => {
            (0..rows).flat_map(|r| (0..cols).map(move |i| (i, r))).map(|(i, r)| v[i * rows + r]).collect()
        }
        mpq_models::Weight::Conv(_) => v,
    }
}

/// Packs `net` under `plan` with the calibrated input `ranges` (one per layer). Only plans
/// that quantize weight and input together, with deterministic rounding, can be packed.
pub fn pack_plan(
    name: &str,
    net: &Net,
    plan: &Plan,
    ranges: &[(f32, f32)],
    granularity: Granularity,
) -> Result<QModel, QuantError> {
    let n = net.arch().layers.len();
    if plan.layers.len() != n || ranges.len() != n {
        return Err(QuantError::PlanLength { expected: n, got: plan.layers.len().min(ranges.len()) });
    }
    let layers =
        (0..n).map(|k| pack_layer(net, k, plan.layers[k], ranges[k], granularity)).collect::<Result<_, _>>()?;
    Ok(QModel { model: name.into(), plan: plan.code(), layers })
}

/// Layer `k` of `net` packed under choice `c` with the calibrated input `range`: what
/// [`pack_plan`] does per layer, and what the integer evaluation of a search runs
/// (`Evaluation::Integer`).
pub fn pack_layer(
    net: &Net,
    k: usize,
    c: Choice,
    range: (f32, f32),
    granularity: Granularity,
) -> Result<QLayer, QuantError> {
    let arch = net.arch();
    let spec = arch.layers.get(k).ok_or(QuantError::PlanLength { expected: arch.layers.len(), got: k + 1 })?;
    let refuse = |why: &str| QuantError::Export(format!("layer {}: {why}", spec.name));
    if c.target != Target::Both && c.bits < 32 {
        return Err(refuse("only plans quantizing weight and input together can be exported"));
    }
    if c.rounding.is_stochastic() {
        return Err(refuse("stochastic rounding has no deterministic integer kernel"));
    }
    let kind = spec.kind.clone();
    let (rows, cols) = kind.weight_shape();
    let w = rows_by_output(net, k, rows, cols);
    let mut l = QLayer {
        name: spec.name.clone(),
        kind,
        bits: c.bits,
        rounding: c.rounding,
        in_scale: 1.0,
        in_zero: 0,
        in_qmax: 0,
        codes: vec![],
        weights: vec![],
        scales: vec![],
        bias: net.bias(k),
        sizes: [0; 4],
    };
    if c.bits >= 32 {
        l.weights = w;
        return Ok(l);
    }
    let ip = QParams::for_range(range.0, range.1, c.bits.get());
    (l.in_scale, l.in_zero, l.in_qmax) = (ip.scale, ip.zero_point, ip.qmax);
    let params: Vec<QParams> = match granularity {
        Granularity::PerTensor => vec![QParams::symmetric(max_abs(&w), c.bits.get())],
        Granularity::PerChannel => w.chunks(cols).map(|row| QParams::symmetric(max_abs(row), c.bits.get())).collect(),
    };
    let codes: Vec<i32> = w
        .iter()
        .enumerate()
        .map(|(i, &v)| quantize(v, params[(i / cols).min(params.len() - 1)], c.rounding, 0.0))
        .collect();
    l.codes = pack::pack(&codes, c.bits.get());
    l.scales = params.iter().map(|p| p.scale).collect();
    Ok(l)
}
