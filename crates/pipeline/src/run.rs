//! One run of a sweep: split, train (or reuse the cached checkpoint), calibrate, search,
//! evaluate every plan and baseline, and return typed rows.

use crate::checkpoints::trained;
use crate::dataset::{Data, split};
use crate::output::RunOutput;
use crate::{PipelineError, Result};
use burn::prelude::Device;
use mpq_data::Split;
use mpq_experiment::config::{Experiment, MixedConfig, RunSpec, Strategy};
use mpq_lowbit::engine::Engine;
use mpq_models::{Metrics, Net, metrics};
use mpq_quant::calib::{Calibration, input_ranges};
use mpq_quant::eval::{EvalSet, Evaluator};
use mpq_quant::search::{self, Exhaustive, hawq, mixed, taylor};
use mpq_quant::tensor::Granularity;
use mpq_quant::{BitWidth, Choice, Plan, Rounding, Target, adaround, stats};
use mpq_report::{ConfigRow, Method, RunRow, SensitivityRow, TimingRow};
use std::cell::OnceCell;
use std::path::Path;
use std::time::Instant;

/// Adds up wall time per named phase.
#[derive(Debug)]
pub struct Clock {
    /// Seconds per phase, in first-seen order.
    pub phases: Vec<(String, f64)>,
    t: Instant,
}

impl Default for Clock {
    fn default() -> Clock {
        Clock::start()
    }
}

impl Clock {
    /// Starts timing.
    pub fn start() -> Clock {
        Clock { phases: Vec::new(), t: Instant::now() }
    }

    /// Charges the time since the last lap to `phase`.
    pub fn lap(&mut self, phase: &str) {
        let secs = self.t.elapsed().as_secs_f64();
        self.t = Instant::now();
        self.add(phase, secs);
    }

    /// Adds `secs` to `phase` (e.g. a finished run's phases to a sweep's totals).
    pub fn add(&mut self, phase: &str, secs: f64) {
        match self.phases.iter_mut().find(|(p, _)| p == phase) {
            Some((_, s)) => *s += secs,
            None => self.phases.push((phase.to_string(), secs)),
        }
    }
}

struct Ctx<'a> {
    spec: &'a RunSpec,
    /// The rows' model label (the model's name, with the granularity where there are several).
    label: String,
    /// The weights' granularity (what an exported plan packs).
    granularity: Granularity,
    dataset: &'a str,
    weights: Vec<usize>,
    fp_calib: f64,
    fp_test: f64,
    calib: &'a EvalSet,
    test: &'a EvalSet,
    ev: &'a Evaluator<'a>,
    /// The run's backward pass for the Taylor tables, computed once for all widths and
    /// granularities (the same full-precision network on the same examples).
    gradients: &'a OnceCell<taylor::Gradients>,
}

/// What a row reports about one plan.
struct Measured {
    calib: Metrics,
    test: Metrics,
    temperature: f64,
    evaluations: usize,
    seconds: f64,
}

impl Ctx<'_> {
    fn row(&self, bits: u32, method: Method, plan: &Plan, m: Measured) -> RunRow {
        let Measured { calib, test, temperature, evaluations, seconds } = m;
        RunRow {
            run_id: self.spec.id.clone(),
            dataset: self.dataset.to_string(),
            model: self.label.clone(),
            backend: self.spec.backend.name().into(),
            seed: self.spec.seed,
            bits,
            method,
            plan: plan.code(),
            avg_bits: plan.average_bits(&self.weights),
            model_bytes: plan.model_bytes(&self.weights),
            calib_loss: calib.loss,
            calib_acc: calib.acc,
            test_loss: test.loss,
            test_acc: test.acc,
            fp_test_loss: self.fp_test,
            delta_test_loss: test.loss - self.fp_test,
            temperature,
            evaluations,
            seconds,
        }
    }

    /// Scores `plan` on both splits and makes its row.
    fn plan_row(&self, bits: u32, method: Method, plan: &Plan, evaluations: usize, seconds: f64) -> Result<RunRow> {
        self.plan_row_in(None, bits, method, plan, evaluations, seconds)
    }

    /// As `plan_row`, reading the scores from exhaustive tables of the calibration and test
    /// splits when they hold the plan (the same numbers, no evaluation).
    fn plan_row_in(
        &self,
        known: Option<&ExhaustiveTables>,
        bits: u32,
        method: Method,
        plan: &Plan,
        evaluations: usize,
        seconds: f64,
    ) -> Result<RunRow> {
        let calib = match known.map(|(c, _)| c.score(plan)) {
            Some(Ok(c)) => c,
            _ => self.ev.score(plan, self.calib)?,
        };
        let test = match known.and_then(|(_, t)| t.as_ref()).map(|t| t.score(plan)) {
            Some(Ok(t)) => t,
            _ => self.ev.score(plan, self.test)?,
        };
        Ok(self.row(bits, method, plan, Measured { calib, test, temperature: 1.0, evaluations, seconds }))
    }

    /// Learns AdaRound's rounding at `bits` on the calibration split and scores it on both
    /// splits (inputs rounded to nearest, as the row's plan says; weights learned).
    fn adaround_row(&self, exp: &Experiment, bits: BitWidth) -> Result<RunRow> {
        let t0 = Instant::now();
        let cfg = exp.quant.adaround.unwrap_or_default();
        let (weights, _) = adaround::adaround(self.ev, self.calib, bits, &cfg, self.spec.seed ^ u64::from(bits.get()))?;
        let secs = t0.elapsed().as_secs_f64();
        let plan = Plan::uniform(self.weights.len(), bits, Rounding::Nearest);
        let score = |set: &EvalSet| -> Result<Metrics> {
            Ok(mpq_quant::eval::score_logits(&self.ev.logits_with(&plan, &weights, set)?, &set.labels, &plan)?)
        };
        let (calib, test) = (score(self.calib)?, score(self.test)?);
        let m = Measured { calib, test, temperature: 1.0, evaluations: 1, seconds: secs };
        Ok(self.row(bits.get(), Method::Adaround, &plan, m))
    }

    /// A search's row and, where no exhaustive table holds its plan (the exhaustive plan
    /// already has one), the row of its plan with its own temperature.
    fn search_rows(
        &self,
        known: Option<&ExhaustiveTables>,
        bits: u32,
        method: Method,
        found: &search::Found,
        seconds: f64,
    ) -> Result<Vec<RunRow>> {
        let plan = &found.best.plan;
        let mut rows = vec![self.plan_row_in(known, bits, method, plan, found.evaluations, seconds)?];
        if let (None, Some(temp)) = (known, method.with_temperature()) {
            rows.push(self.temp_row(bits, temp, plan)?);
        }
        Ok(rows)
    }

    /// `plan` with a temperature fitted on its calibration logits.
    fn temp_row(&self, bits: u32, method: Method, plan: &Plan) -> Result<RunRow> {
        let cl = self.ev.logits(plan, self.calib)?;
        let t = stats::fit_temperature(&cl, &self.calib.labels);
        let tl = self.ev.logits(plan, self.test)?;
        let (c, s) = (metrics::score(&cl, &self.calib.labels, t), metrics::score(&tl, &self.test.labels, t));
        Ok(self.row(bits, method, plan, Measured { calib: c, test: s, temperature: t, evaluations: 0, seconds: 0.0 }))
    }
}

/// A run's calibration and test sets and the evaluator whose input ranges are calibrated on
/// the former (the experiment's calibration method, weights at `granularity`): what every
/// command that scores plans of a run starts from.
pub fn evaluation<'a>(
    exp: &Experiment,
    spec: &RunSpec,
    net: &'a Net,
    data: &Data,
    split: &Split,
    granularity: Granularity,
) -> (EvalSet, EvalSet, Evaluator<'a>) {
    let calib = EvalSet::new(&data.images, &split.calib);
    let test = EvalSet::new(&data.images, &split.test);
    let method = exp.quant.percentile.map(|q| Calibration::Percentile { q }).unwrap_or_default();
    let ranges = input_ranges(net, &calib, method);
    let ev = Evaluator::with_granularity(net, ranges, granularity, spec.seed).evaluated_by(exp.quant.evaluation);
    (calib, test, ev)
}

/// What one granularity's rows are scored on and labelled with.
struct Sets<'a> {
    calib: &'a EvalSet,
    test: &'a EvalSet,
    label: String,
    granularity: Granularity,
    /// Whether to time throughput (once per run: the first granularity's).
    timing: bool,
    /// The run's Taylor gradients, once computed.
    gradients: &'a OnceCell<taylor::Gradients>,
}

/// Every plan and baseline of a run at one weight granularity: full precision, each width's
/// searches, sensitivity, throughput and mixed precision.
#[allow(clippy::too_many_arguments)]
fn quantized(
    exp: &Experiment,
    spec: &RunSpec,
    data: &Data,
    net: &Net,
    dev: &Device,
    ev: &Evaluator,
    at: Sets,
    clock: &mut Clock,
    progress: &mut dyn FnMut(&str, usize, usize),
    out: &mut RunOutput,
) -> Result<()> {
    let fp_plan = Plan::full_precision(net.n_layers());
    let (fp_c, fp_t) = (ev.score(&fp_plan, at.calib)?, ev.score(&fp_plan, at.test)?);
    let weights: Vec<usize> = net.layers().iter().map(|l| l.weight_count).collect();
    let (fp_calib, fp_test) = (fp_c.loss, fp_t.loss);
    let (calib, test, label, granularity) = (at.calib, at.test, at.label, at.granularity);
    let gradients = at.gradients;
    let cx =
        Ctx { spec, label, granularity, dataset: &data.name, weights, fp_calib, fp_test, calib, test, ev, gradients };
    let fp = Measured { calib: fp_c, test: fp_t, temperature: 1.0, evaluations: 0, seconds: 0.0 };
    out.runs.push(cx.row(32, Method::Fp, &fp_plan, fp));
    out.runs.push(cx.temp_row(32, Method::FpTemp, &fp_plan)?);
    lap(clock, progress, "baselines");
    for &bits in &exp.quant.bits {
        lap(clock, progress, "sensitivity"); // the previous width's
        width_rows(&cx, exp, bits, clock, progress, out)?;
        if exp.quant.sensitivity {
            sensitivity_rows(&cx, net, bits, out)?;
        }
    }
    lap(clock, progress, "sensitivity");
    if at.timing && exp.quant.throughput {
        out.timing = timing(&cx, net, dev, exp)?;
        lap(clock, progress, "throughput timing");
    }
    if let Some(mx) = &exp.quant.mixed {
        mixed_rows(&cx, mx, out)?;
        lap(clock, progress, "mixed precision");
    }
    Ok(())
}

/// Charges the time since the last lap to `phase` and reports its end as `progress(phase, 0, 0)`.
fn lap(clock: &mut Clock, progress: &mut dyn FnMut(&str, usize, usize), phase: &str) {
    clock.lap(phase);
    progress(phase, 0, 0);
}

/// Executes one run. `progress(phase, done, total)` reports training and search progress;
/// `total == 0` marks the end of a phase.
pub fn execute(
    exp: &Experiment,
    spec: &RunSpec,
    data: &Data,
    cache: &Path,
    progress: &mut dyn FnMut(&str, usize, usize),
) -> Result<RunOutput> {
    let mut clock = Clock::start();
    let dev = crate::backend::device(spec.backend)?;
    let split = split(exp, spec, data)?;
    let (net, train_rows) = trained(exp, spec, data, &split, &dev, cache, &mut |d, t| progress("train", d, t))?;
    lap(&mut clock, progress, "train or load");
    let mut out = RunOutput { train: train_rows, ..RunOutput::default() };
    let kinds = exp.quant.granularity.list();
    let gradients = OnceCell::new();
    let (calib, test, first) = evaluation(exp, spec, &net, data, &split, kinds[0]);
    lap(&mut clock, progress, "calibration");
    for (i, &g) in kinds.iter().enumerate() {
        let other;
        let ev = if i == 0 {
            &first
        } else {
            other = Evaluator::with_granularity(&net, first.ranges.clone(), g, spec.seed)
                .evaluated_by(exp.quant.evaluation);
            &other
        };
        let label = exp.quant.granularity.label(&spec.model.name(), g);
        let at = Sets { calib: &calib, test: &test, label, granularity: g, timing: i == 0, gradients: &gradients };
        quantized(exp, spec, data, &net, &dev, ev, at, &mut clock, progress, &mut out)?;
    }
    out.phases = clock.phases;
    Ok(out)
}

/// Exhaustive searches of one width on calibration and test data, when configured and small
/// enough; their configs become rows of `configs.csv`.
type Known = Option<ExhaustiveTables>;

/// An exhaustive search's tables: every config on the calibration split, and on the test
/// split where scored.
type ExhaustiveTables = (Exhaustive, Option<Exhaustive>);

/// The rows of one bit width: all-nearest/floor/ceil, the searches, the Taylor plan and the
/// best-of-N random null (with at least as many draws as the searches evaluated).
fn width_rows(
    cx: &Ctx,
    exp: &Experiment,
    bits: BitWidth,
    clock: &mut Clock,
    progress: &mut dyn FnMut(&str, usize, usize),
    out: &mut RunOutput,
) -> Result<()> {
    let n = cx.weights.len();
    for (r, method) in
        [(Rounding::Nearest, Method::Nearest), (Rounding::Floor, Method::Floor), (Rounding::Ceil, Method::Ceil)]
    {
        out.runs.push(cx.plan_row(bits.get(), method, &Plan::uniform(n, bits, r), 0, 0.0)?);
    }
    lap(clock, progress, "baselines");
    let grads = cx.gradients.get_or_init(|| taylor::gradients(cx.ev, &cx.calib.x, &cx.calib.labels));
    let t0 = Instant::now();
    let table = taylor::table_from(cx.ev, grads, bits);
    // The Taylor search's cost as if it ran alone: its backward pass and its table.
    let taylor_secs = grads.seconds + t0.elapsed().as_secs_f64();
    lap(clock, progress, "taylor");
    let strategies = exp.strategies_for(&cx.spec.model);
    let (mut evals, mut known): (usize, Known) = (0, None);
    if strategies.contains(&Strategy::Exhaustive) && 3usize.pow(n as u32) <= search::EXHAUSTIVE_LIMIT {
        let (e, k) = exhaustive_rows(cx, exp, bits, &table, progress, out)?;
        (evals, known) = (e, Some(k));
        lap(clock, progress, "exhaustive");
    }
    let k = known.as_ref();
    if strategies.contains(&Strategy::Greedy) {
        let t0 = Instant::now();
        let g = match k {
            Some((c, _)) => search::greedy_in(c, bits, 10)?,
            None => search::greedy(cx.ev, bits, cx.calib, 10)?,
        };
        out.runs.extend(cx.search_rows(k, bits.get(), Method::Greedy, &g, t0.elapsed().as_secs_f64())?);
        evals = evals.max(g.evaluations);
        lap(clock, progress, "greedy");
    }
    if strategies.contains(&Strategy::Beam) {
        let (t0, width) = (Instant::now(), exp.quant.beam.unwrap_or(8));
        let found = search::beam::beam_search(cx.ev, cx.calib, &[bits], &cx.weights, f64::from(bits.get()), width)?
            .ok_or_else(|| PipelineError::Other(format!("the {bits}-bit beam search found no plan")))?;
        out.runs.extend(cx.search_rows(k, bits.get(), Method::Beam, &found, t0.elapsed().as_secs_f64())?);
        evals = evals.max(found.evaluations);
        lap(clock, progress, "beam");
    }
    if strategies.contains(&Strategy::Taylor) {
        out.runs.push(cx.plan_row_in(k, bits.get(), Method::Taylor, &table.best_plan(bits), 1, taylor_secs)?);
    }
    let (n_random, seed, t0) = (exp.quant.random_n.max(evals), cx.spec.seed ^ u64::from(bits.get()), Instant::now());
    let rb = match k {
        Some((c, _)) => search::random_best_in(c, bits, n_random, seed)?,
        None => search::random_best(cx.ev, bits, cx.calib, n_random, seed)?,
    };
    let secs = t0.elapsed().as_secs_f64();
    out.runs.push(cx.plan_row_in(k, bits.get(), Method::RandomBest, &rb.best.plan, rb.evaluations, secs)?);
    lap(clock, progress, "random null");
    if strategies.contains(&Strategy::Adaround) {
        out.runs.push(cx.adaround_row(exp, bits)?);
        lap(clock, progress, "adaround");
    }
    Ok(())
}

/// The exhaustive search at `bits`: every config scored on calibration data and, unless
/// `[quant] configs_on_test = false`, on test data (rows of `configs.csv`, with the Taylor
/// prediction), and the best plan's rows. Returns the evaluations and both tables (the test
/// one where scored), which the other searches then look plans up in.
fn exhaustive_rows(
    cx: &Ctx,
    exp: &Experiment,
    bits: BitWidth,
    table: &taylor::TaylorTable,
    progress: &mut dyn FnMut(&str, usize, usize),
    out: &mut RunOutput,
) -> Result<(usize, ExhaustiveTables)> {
    let t0 = Instant::now();
    let all =
        search::exhaustive(cx.ev, bits, cx.calib, true, &mut |d, t| progress(&format!("{bits}-bit exhaustive"), d, t))?;
    let secs = t0.elapsed().as_secs_f64();
    let found = all.best();
    let on_test = match exp.quant.configs_on_test {
        true => Some(search::exhaustive(cx.ev, bits, cx.test, true, &mut |_, _| {})?),
        false => None,
    };
    for (c, t) in all.configs.iter().zip(on_test.iter().flat_map(|t| &t.configs)) {
        let tm = t.calib;
        out.configs.push(ConfigRow {
            run_id: cx.spec.id.clone(),
            model: cx.label.clone(),
            seed: cx.spec.seed,
            bits: bits.get(),
            plan: c.plan.code(),
            calib_loss: c.calib.loss,
            test_loss: tm.loss,
            test_acc: tm.acc,
            delta_calib: c.calib.loss - cx.fp_calib,
            delta_test: tm.loss - cx.fp_test,
            taylor_pred: table.predict(&c.plan),
        });
    }
    let known = (all, on_test);
    let k = Some(&known);
    out.runs.push(cx.plan_row_in(k, bits.get(), Method::Exhaustive, &found.best.plan, found.evaluations, secs)?);
    out.runs.push(cx.temp_row(bits.get(), Method::ExhaustiveTemp, &found.best.plan)?);
    Ok((found.evaluations, known))
}

/// Per layer at `bits`: the test loss change of quantizing only its input, or only its
/// weight, with nearest rounding.
fn sensitivity_rows(cx: &Ctx, net: &Net, bits: BitWidth, out: &mut RunOutput) -> Result<()> {
    let n = cx.weights.len();
    for (k, info) in net.layers().iter().enumerate() {
        let only = |target| {
            let mut p = Plan::full_precision(n);
            p.layers[k] = Choice { bits, rounding: Rounding::Nearest, target };
            cx.ev.score(&p, cx.test).map(|m| m.loss - cx.fp_test)
        };
        out.sensitivity.push(SensitivityRow {
            run_id: cx.spec.id.clone(),
            model: cx.label.clone(),
            seed: cx.spec.seed,
            bits: bits.get(),
            layer: k,
            layer_name: info.name.clone(),
            delta_input: only(Target::InputOnly)?,
            delta_weight: only(Target::WeightOnly)?,
        });
    }
    Ok(())
}

/// Throughput of the FP32 forward on the run's backend, of simulated all-nearest
/// quantization at each width (on the host, where evaluation runs), then of the integer
/// engine (`harness export`'s model of the same plan) at widths up to 8; best of 3 passes
/// over the test split, in batches of the evaluation batch size.
fn timing(cx: &Ctx, net: &Net, dev: &Device, exp: &Experiment) -> Result<Vec<TimingRow>> {
    let x_test = &cx.test.x;
    let n = cx.ev.n_layers();
    let bits: Vec<BitWidth> = exp.quant.bits.clone();
    let samples = cx.test.labels.len();
    let batch = metrics::EVAL_BATCH.min(samples);
    let best_of_3 = |f: &mut dyn FnMut() -> Result<()>| -> Result<f64> {
        let mut best = f64::INFINITY;
        for _ in 0..3 {
            let t0 = Instant::now();
            f()?;
            best = best.min(t0.elapsed().as_secs_f64());
        }
        Ok(samples as f64 / best.max(1e-12))
    };
    let row = |backend: String, precision: String, bits: BitWidth, samples_per_s: f64| TimingRow {
        run_id: cx.spec.id.clone(),
        model: cx.label.clone(),
        backend,
        precision,
        bits: bits.get(),
        batch,
        samples_per_s,
    };
    let mut rows = Vec::new();
    let batches = metrics::batches_of(x_test, batch, dev);
    let per_s = best_of_3(&mut || {
        // Reading the values back waits for the device (wgpu runs asynchronously).
        batches
            .iter()
            .for_each(|x| std::mem::drop(std::hint::black_box(net.forward(x.clone()).into_data().try_to_vec::<f32>())));
        Ok(())
    })?;
    rows.push(row(cx.spec.backend.name().into(), "fp32".into(), BitWidth::FULL, per_s));
    for &b in &bits {
        let plan = Plan::uniform(n, b, Rounding::Nearest);
        let per_s = best_of_3(&mut || cx.ev.logits(&plan, cx.test).map(|_| ()).map_err(Into::into))?;
        rows.push(row("host".into(), format!("sim-{b}bit"), b, per_s));
    }
    for &b in bits.iter().filter(|&&b| b <= 8) {
        let plan = Plan::uniform(n, b, Rounding::Nearest);
        let q = mpq_quant::export::pack_plan(&cx.spec.model.name(), net, &plan, &cx.ev.ranges, cx.granularity)?;
        let engine = Engine::new(&q)?;
        let width = x_test.len() / samples.max(1);
        let per_s = best_of_3(&mut || {
            for chunk in x_test.chunks(width * batch) {
                std::hint::black_box(engine.forward(chunk, chunk.len() / width));
            }
            Ok(())
        })?;
        rows.push(row(format!("engine-{}", engine.kernel().name()), format!("int{b}"), b, per_s));
    }
    Ok(rows)
}

/// Mixed precision under each budget: bit widths by a knapsack over the measured per-layer
/// loss change at nearest rounding (`mixed-dp`), that allocation with each layer's rounding
/// then refined by greedy descent (`mixed-dp-greedy`), the HAWQ-V2-style allocation
/// (`mixed-hawq`), and the widest uniform nearest plan that fits (`mixed-uniform`).
fn mixed_rows(cx: &Ctx, mx: &MixedConfig, out: &mut RunOutput) -> Result<()> {
    let n = cx.ev.n_layers();
    let widths: Vec<BitWidth> = mx.bits.clone();
    let t0 = Instant::now();
    let table = mixed::measured_table(cx.ev, cx.calib, &widths, &[Rounding::Nearest])?;
    let (dp_secs, dp_evals) = (t0.elapsed().as_secs_f64(), 1 + n * mx.bits.len());
    let t0 = Instant::now();
    let traces =
        hawq::hessian_traces(&cx.ev.host, &cx.calib.x, &cx.calib.labels, mx.hutchinson_samples, 5e-3, cx.spec.seed);
    let htable = hawq::hawq_table(cx.ev, &traces, &widths);
    let hawq_secs = t0.elapsed().as_secs_f64();
    for &budget in &mx.budgets {
        let none = || PipelineError::Other(format!("no plan meets an average of {budget} bits"));
        let dp = mixed::allocate(&table, &cx.weights, budget as f64).ok_or_else(none)?;
        out.runs.push(cx.plan_row(budget, Method::MixedDp, &dp, dp_evals, dp_secs)?);
        let t0 = Instant::now();
        let refined = search::greedy_from(cx.ev, dp, cx.calib, 10)?;
        let secs = dp_secs + t0.elapsed().as_secs_f64();
        out.runs.push(cx.plan_row(
            budget,
            Method::MixedDpGreedy,
            &refined.best.plan,
            dp_evals + refined.evaluations,
            secs,
        )?);
        let hw = mixed::allocate(&htable, &cx.weights, budget as f64).ok_or_else(none)?;
        out.runs.push(cx.plan_row(budget, Method::MixedHawq, &hw, 0, hawq_secs)?);
        let widest = widths.iter().copied().filter(|&b| b <= budget).max().ok_or_else(none)?;
        out.runs.push(cx.plan_row(
            budget,
            Method::MixedUniform,
            &Plan::uniform(n, widest, Rounding::Nearest),
            0,
            0.0,
        )?);
        if let Some(beam) = mx.search_beam {
            let t0 = Instant::now();
            let found = search::beam::beam_search(cx.ev, cx.calib, &widths, &cx.weights, budget as f64, beam)?
                .ok_or_else(none)?;
            let secs = t0.elapsed().as_secs_f64();
            out.runs.push(cx.plan_row(budget, Method::MixedSearch, &found.best.plan, found.evaluations, secs)?);
        }
    }
    Ok(())
}
