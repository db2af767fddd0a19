//! `harness export`: a searched plan of a completed run as a packed low-bit model, checked
//! against the simulated-quantization forward pass it must reproduce.

use crate::config::Experiment;
use crate::run::{self, Data};
use anyhow::{Context, Result, anyhow, bail};
use mpq_lowbit::engine::Engine;
use mpq_lowbit::{LayerKind, QLayer, QModel, pack};
use mpq_models::Net;
use mpq_models::net::LayerKind as NetKind;
use mpq_quant::scalar::{QParams, quantize};
use mpq_quant::tensor::Granularity;
use mpq_quant::{Plan, Rounding, Target};
use std::path::Path;
use std::process::ExitCode;

fn host(w: &mpq_models::Weight) -> (Vec<usize>, Vec<f32>) {
    match w {
        mpq_models::Weight::Linear(t) => {
            (t.dims().to_vec(), t.clone().into_data().try_to_vec::<f32>().unwrap_or_default())
        }
        mpq_models::Weight::Conv(t) => {
            (t.dims().to_vec(), t.clone().into_data().try_to_vec::<f32>().unwrap_or_default())
        }
    }
}

/// Builds the packed model of `net` under `plan` with the calibrated input `ranges`.
pub fn build(name: &str, net: &Net, plan: &Plan, ranges: &[(f32, f32)], granularity: Granularity) -> Result<QModel> {
    let mut layers = Vec::new();
    for (k, spec) in net.arch().layers.iter().enumerate() {
        let c = plan.layers[k];
        if c.target != Target::Both && c.bits < 32 {
            bail!("layer {}: only plans quantizing weight and input together can be exported", spec.name);
        }
        let kind = match spec.kind {
            NetKind::Linear { d_in, d_out, relu, residual } => LayerKind::Linear { d_in, d_out, relu, residual },
            NetKind::Conv { c_in, c_out, side_in } => LayerKind::Conv { c_in, c_out, side_in },
        };
        let (rows, cols) = kind.weight_shape();
        let (dims, w) = host(&net.weight(k));
        // Stored row-major per output: burn's Linear weight is [d_in, d_out], so transpose it.
        let w: Vec<f32> = if dims.len() == 2 {
            (0..rows).flat_map(|r| (0..cols).map(move |i| (i, r))).map(|(i, r)| w[i * rows + r]).collect()
        } else {
            w
        };
        let rounding = match c.rounding {
            Rounding::Nearest => "nearest",
            Rounding::Floor => "floor",
            Rounding::Ceil => "ceil",
            Rounding::Stochastic => {
                bail!("layer {}: stochastic rounding has no deterministic integer kernel", spec.name)
            }
        };
        let mut l = QLayer {
            name: spec.name.clone(),
            kind,
            bits: c.bits,
            rounding: rounding.into(),
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
        } else {
            let (lo, hi) = ranges[k];
            let ip = QParams::for_range(lo, hi, c.bits);
            (l.in_scale, l.in_zero, l.in_qmax) = (ip.scale, ip.zero_point, ip.qmax);
            let max_abs = |v: &[f32]| v.iter().fold(0f32, |m, x| m.max(x.abs()));
            let params: Vec<QParams> = match granularity {
                Granularity::PerTensor => vec![QParams::symmetric(max_abs(&w), c.bits)],
                Granularity::PerChannel => w.chunks(cols).map(|row| QParams::symmetric(max_abs(row), c.bits)).collect(),
            };
            let codes: Vec<i32> = w
                .iter()
                .enumerate()
                .map(|(i, &v)| quantize(v, params[(i / cols).min(params.len() - 1)], c.rounding, 0.0))
                .collect();
            l.codes = pack::pack(&codes, c.bits);
            l.scales = params.iter().map(|p| p.scale).collect();
        }
        layers.push(l);
    }
    Ok(QModel { model: name.into(), plan: plan.code(), layers })
}

/// Exports the plan `method` at `bits` of run `run_id` to `out`, then checks the engine
/// against simulated quantization on the run's test split.
pub fn export(file: &Path, run_id: &str, method: &str, bits: u32, out: &Path) -> Result<ExitCode> {
    let exp = Experiment::load(file)?;
    let data: Data = crate::sweep::load_data(&exp)?;
    let spec = exp
        .expand()
        .into_iter()
        .find(|s| s.id == run_id)
        .ok_or_else(|| anyhow!("{}: no run `{run_id}`", file.display()))?;
    let results = crate::output::load_run(&exp.out_dir(), run_id)
        .ok_or_else(|| anyhow!("run {run_id} has no results yet: run the experiment first"))?;
    let row = results
        .runs
        .iter()
        .find(|r| r.method == method && r.bits == bits)
        .ok_or_else(|| anyhow!("run {run_id} has no `{method}` plan at {bits} bits"))?;
    let plan = Plan::from_code(&row.plan)?;
    let dev = crate::backend::device(spec.backend)?;
    let split = run::split(&exp, &spec, &data)?;
    let net = run::trained(&exp, &spec, &data, &split, &dev, &exp.output.join("cache"), &mut |_, _| {})?.0;
    let calib = mpq_quant::eval::EvalSet::new(&data.images, &split.calib);
    let method_c = exp.quant.percentile.map(|q| mpq_quant::calib::Calibration::Percentile { q }).unwrap_or_default();
    let ranges = mpq_quant::calib::input_ranges(&net, &calib, method_c);
    let model = build(&spec.model.name(), &net, &plan, &ranges, exp.quant.granularity)?;
    let bytes = model.save(out).with_context(|| format!("writing {}", out.display()))?;
    let fp_bytes = mpq_models::checkpoint::to_bytes(&net, &Default::default())?.len();
    let back = QModel::load(out)?;
    let engine = Engine::new(&back)?;
    let test = mpq_quant::eval::EvalSet::new(&data.images, &split.test);
    let ev = mpq_quant::eval::Evaluator::with_granularity(&net, ranges, exp.quant.granularity, spec.seed);
    let sim = ev.logits(&plan, &test)?;
    let x = data.images.gather_f32(&split.test);
    let got = engine.forward(&x, split.test.len());
    let (agree, max_diff) = compare(&sim, &got);
    println!("exported {} plan {} ({method}, {bits} bits) to {}", run_id, plan.code(), out.display());
    println!(
        "size: {bytes} bytes = {:.1}% of the FP32 safetensors checkpoint ({fp_bytes} bytes)",
        100.0 * bytes as f64 / fp_bytes as f64
    );
    println!(
        "engine vs simulated quantization on {} test examples: argmax agreement {agree:.4}, max |logit diff| {max_diff:.2e}",
        split.test.len()
    );
    Ok(ExitCode::SUCCESS)
}

/// Argmax agreement and the largest absolute logit difference of two `[n, 10]` outputs.
pub fn compare(a: &[f32], b: &[f32]) -> (f64, f32) {
    let argmax = |r: &[f32]| r.iter().enumerate().fold(0, |m, (i, &v)| if v > r[m] { i } else { m });
    let n = a.len() / 10;
    let agree = (0..n).filter(|&i| argmax(&a[i * 10..i * 10 + 10]) == argmax(&b[i * 10..i * 10 + 10])).count();
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    (agree as f64 / n.max(1) as f64, diff)
}
