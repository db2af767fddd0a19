//! `harness export`: a searched plan of a completed run as a packed low-bit model, checked
//! against the simulated-quantization forward pass it must reproduce.

use anyhow::{Context, Result, anyhow};
use mpq_experiment::config::Experiment;
use mpq_experiment::granularity::long;
use mpq_lowbit::QModel;
use mpq_lowbit::engine::Engine;
use mpq_pipeline::dataset::{self, Data};
use mpq_pipeline::{checkpoints, run};
use mpq_quant::Plan;
use mpq_quant::eval::{Evaluation, Evaluator};
use mpq_quant::tensor::Granularity;
use std::path::Path;
use std::process::ExitCode;

/// Exports the plan `method` at `bits` of run `run_id` to `out`, then checks the engine
/// against simulated quantization on the run's test split and times it there; with
/// `indices`, writes the run's calibration and test indices too.
pub fn export(
    file: &Path,
    run_id: &str,
    method: mpq_report::Method,
    bits: u32,
    out: &Path,
    indices: Option<&Path>,
    granularity: Option<Granularity>,
) -> Result<ExitCode> {
    if method == mpq_report::Method::Adaround {
        anyhow::bail!("`adaround` rounds each weight element its own way, which a plan cannot hold: it has no export");
    }
    let exp = Experiment::load(file)?;
    let data: Data = dataset::load_data(&exp)?;
    let spec = exp
        .expand()
        .into_iter()
        .find(|s| s.id == run_id)
        .ok_or_else(|| anyhow!("{}: no run `{run_id}`", file.display()))?;
    let listed = exp.quant.granularity.list();
    let granularity = granularity.unwrap_or(listed[0]);
    if !listed.contains(&granularity) {
        anyhow::bail!("{}: the experiment does not quantize at {}", file.display(), long(granularity));
    }
    let label = exp.quant.granularity.label(&spec.model.name(), granularity);
    let results = mpq_pipeline::output::load_run(&exp.out_dir(), run_id)
        .ok_or_else(|| anyhow!("run {run_id} has no results yet: run the experiment first"))?;
    let row = results
        .runs
        .iter()
        .find(|r| r.method == method && r.bits == bits && r.model == label)
        .ok_or_else(|| anyhow!("run {run_id} has no `{method}` plan at {bits} bits"))?;
    let plan = Plan::from_code(&row.plan)?;
    let dev = mpq_pipeline::backend::device(spec.backend)?;
    let split = dataset::split(&exp, &spec, &data)?;
    if let Some(path) = indices {
        let json = serde_json::json!({ "run": run_id, "dataset": data.name, "calib": split.calib, "test": split.test });
        mpq_pipeline::output::write_atomic(path, (json.to_string() + "\n").as_bytes())?;
    }
    let net = checkpoints::trained(&exp, &spec, &data, &split, &dev, &exp.output.join("cache"), &mut |_, _| {})?.0;
    let (_, test, ev) = run::evaluation(&exp, &spec, &net, &data, &split, granularity);
    let model = mpq_quant::export::pack_plan(&spec.model.name(), &net, &plan, &ev.ranges, granularity)?;
    let bytes = model.save(out).with_context(|| format!("writing {}", out.display()))?;
    let fp_bytes = mpq_models::checkpoint::to_bytes(&net, &Default::default())?.len();
    let back = QModel::load(out)?;
    let engine = Engine::new(&back)?;
    let x = data.images.gather_f32(&split.test);
    let got = engine.forward(&x, split.test.len());
    let score = |e: Evaluation| {
        let ev = Evaluator::with_granularity(&net, ev.ranges.clone(), granularity, spec.seed).evaluated_by(e);
        ev.logits(&plan, &test)
    };
    let (sim, int) = (score(Evaluation::Simulated)?, score(Evaluation::Integer)?);
    let (agree, max_diff) = compare(&sim, &got);
    let (_, int_diff) = compare(&int, &got);
    println!(
        "exported {} plan {} ({method}, {bits} bits, {} weights) to {}",
        run_id,
        plan.code(),
        long(granularity),
        out.display()
    );
    println!(
        "size: {bytes} bytes = {:.1}% of the FP32 safetensors checkpoint ({fp_bytes} bytes)",
        100.0 * bytes as f64 / fp_bytes as f64
    );
    println!(
        "engine vs simulated quantization on {} test examples: argmax agreement {agree:.4}, max |logit diff| {max_diff:.2e}",
        split.test.len()
    );
    println!(
        "engine vs the search's integer evaluation: max |logit diff| {int_diff:.2e} (the same arithmetic: 0 expected)"
    );
    println!("engine throughput: {:.0} digits/s {}", throughput(&engine, &x, split.test.len()), THROUGHPUT);
    Ok(ExitCode::SUCCESS)
}

/// How [`throughput`] measures, for its printed line.
const THROUGHPUT: &str = "(batches of 256 test digits, rayon's default threads, timed as harness bench times)";

/// Digits per second of `engine` on the `n` digits of `x`, in batches of 256.
fn throughput(engine: &Engine, x: &[f32], n: usize) -> f64 {
    let secs = mpq_bench::measure::time_per_call(|| {
        for (rows, chunk) in (0..n).step_by(256).map(|s| ((s + 256).min(n) - s, &x[s * 784..])) {
            std::hint::black_box(engine.forward(&chunk[..rows * 784], rows));
        }
    });
    n as f64 / secs
}

/// Argmax agreement and the largest absolute logit difference of two `[n, 10]` outputs.
pub fn compare(a: &[f32], b: &[f32]) -> (f64, f32) {
    let argmax = |r: &[f32]| r.iter().enumerate().fold(0, |m, (i, &v)| if v > r[m] { i } else { m });
    let n = a.len() / 10;
    let agree = (0..n).filter(|&i| argmax(&a[i * 10..i * 10 + 10]) == argmax(&b[i * 10..i * 10 + 10])).count();
    let diff = a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0f32, f32::max);
    (agree as f64 / n.max(1) as f64, diff)
}
