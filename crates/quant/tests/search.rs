//! Search strategies on a tiny trained model: prefix reuse changes nothing but the cost,
//! the Taylor predictor agrees with measured loss changes where first order holds, greedy
//! and random never beat the exhaustive optimum on the set they search.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::prelude::*;
use mpq_data::{Split, SplitSizes, shipped};
use mpq_models::{ModelConfig, TrainConfig, train::train};
use mpq_quant::calib::{Calibration, input_ranges};
use mpq_quant::eval::{EvalSet, Evaluator};
use mpq_quant::search::{exhaustive, greedy, greedy_in, random_best, random_best_in, taylor::taylor_table};
use mpq_quant::{Plan, Rounding};

/// A supported bit width, for the tests' literal widths.
fn bw(bits: u32) -> mpq_quant::BitWidth {
    mpq_quant::BitWidth::new(bits).unwrap()
}

fn setup() -> (mpq_models::Net, mpq_data::Images, Split, Device) {
    let dev = Device::flex();
    let data = shipped::load().unwrap();
    let split = Split::draw(&data, SplitSizes { train: 800, calib: 300, test: 200 }, None, 2).unwrap();
    let cfg = ModelConfig::Mlp { hidden: vec![24, 16] };
    let tc = TrainConfig { epochs: 2, batch_size: 32, lr: 3e-3, ..TrainConfig::default() };
    let (net, _) = train(&cfg, &tc, &dev, &data, &split, 1, &mut |_, _| {}).unwrap();
    (net, data, split, dev)
}

#[test]
fn prefix_reuse_equals_naive_and_saves_stages() {
    let (net, data, split, _) = setup();
    let set = EvalSet::new(&data, &split.calib);
    let ev = Evaluator::new(&net, input_ranges(&net, &set, Calibration::MinMax), 0);
    let fast = exhaustive(&ev, bw(4), &set, true, &mut |_, _| {}).unwrap();
    let slow = exhaustive(&ev, bw(4), &set, false, &mut |_, _| {}).unwrap();
    assert_eq!(fast.configs.len(), 27);
    for (a, b) in fast.configs.iter().zip(&slow.configs) {
        assert_eq!(a.plan, b.plan);
        assert!((a.calib.loss - b.calib.loss).abs() < 1e-6, "{} {} {}", a.plan.code(), a.calib.loss, b.calib.loss);
    }
    assert_eq!(fast.stage_evals, 3 + 9 + 27);
    assert_eq!(slow.stage_evals, 27 * 3);

    let best = fast.best().best.calib.loss;
    let g = greedy(&ev, bw(4), &set, 10).unwrap();
    let r = random_best(&ev, bw(4), &set, 27, 5).unwrap();
    assert!(g.best.calib.loss >= best - 1e-9 && r.best.calib.loss >= best - 1e-9);
    assert_eq!(r.evaluations, 27);
    let nearest = ev.score(&Plan::uniform(3, bw(4), Rounding::Nearest), &set).unwrap();
    assert!(g.best.calib.loss <= nearest.loss + 1e-12, "greedy starts at all-nearest and never gets worse");
    // Table lookups give exactly what evaluation gives.
    let gi = greedy_in(&fast, bw(4), 10).unwrap();
    assert_eq!(
        (gi.best.plan.clone(), gi.best.calib, gi.evaluations),
        (g.best.plan.clone(), g.best.calib, g.evaluations)
    );
    let ri = random_best_in(&fast, bw(4), 27, 5).unwrap();
    assert_eq!((ri.best.plan, ri.best.calib), (r.best.plan, r.best.calib));
    // The null scores its draws along shared prefixes; many draws repeat plans here (200 of
    // 27), and the first drawn among equals is kept, as by lookup.
    for seed in 0..4 {
        let (r, ri) =
            (random_best(&ev, bw(4), &set, 200, seed).unwrap(), random_best_in(&fast, bw(4), 200, seed).unwrap());
        assert_eq!((ri.best.plan, ri.best.calib, ri.evaluations), (r.best.plan, r.best.calib, r.evaluations));
    }
    for c in &fast.configs {
        assert_eq!(ev.score(&c.plan, &set).unwrap(), c.calib, "prefix reuse is exact: {}", c.plan.code());
    }
}

#[test]
fn taylor_matches_finite_differences_at_high_precision() {
    let (net, data, split, dev) = setup();
    let set = EvalSet::new(&data, &split.calib);
    let ev = Evaluator::new(&net, input_ranges(&net, &set, Calibration::MinMax), 0);
    let fp = ev.score(&Plan::full_precision(3), &set).unwrap().loss;
    let x = data.gather_f32(&split.calib);
    // At 8 bits the quantization error is small enough for first order to dominate.
    let table = taylor_table(&ev, &x, &set.labels, bw(8));
    let all = exhaustive(&ev, bw(8), &set, true, &mut |_, _| {}).unwrap();
    let (mut pred, mut meas) = (Vec::new(), Vec::new());
    for c in &all.configs {
        pred.push(table.predict(&c.plan));
        meas.push(c.calib.loss - fp);
    }
    let rho = mpq_report::stats::spearman(&pred, &meas);
    assert!(rho > 0.8, "rank correlation {rho}: pred {pred:?} meas {meas:?}");
    // Each single-layer weight term against a central finite difference along the error.
    let mpq_models::Weight::Linear(w0) = net.weight(0) else { panic!("fc1 is linear") };
    let q0 =
        ev.weight(0, mpq_quant::Choice { bits: bw(8), rounding: Rounding::Floor, target: mpq_quant::Target::Both });
    let q0 = Tensor::<2>::from_data(TensorData::new(q0.unwrap().to_vec(), w0.dims()), &dev);
    let dir = q0 - w0.clone();
    let eps = 0.5;
    let loss_at = |t: f64| {
        let mut n = net.clone();
        n.set_weight(0, mpq_models::Weight::Linear(w0.clone() + dir.clone().mul_scalar(t)));
        let e = Evaluator::new(&n, ev.ranges.clone(), 0);
        e.score(&Plan::full_precision(3), &set).unwrap().loss
    };
    let fd = (loss_at(eps) - loss_at(-eps)) / (2.0 * eps);
    let pr = table.weight[0][1];
    assert!((fd - pr).abs() <= 0.05 * fd.abs() + 1e-5, "finite difference {fd} vs Taylor {pr}");
}

#[test]
fn mixed_allocation_respects_budget_and_hawq_traces_are_finite() {
    use mpq_quant::search::{hawq, mixed};
    let (net, data, split, _) = setup();
    let set = EvalSet::new(&data, &split.calib);
    let ev = Evaluator::new(&net, input_ranges(&net, &set, Calibration::MinMax), 0);
    let weights: Vec<usize> = net.layers().iter().map(|l| l.weight_count).collect();
    let bits = [2, 4, 8, 32].map(bw);
    let table = mixed::measured_table(&ev, &set, &bits, &Rounding::SEARCHED).unwrap();
    assert_eq!(table.len(), 3);
    assert_eq!(table[0].len(), 3 * 3 + 1);
    for budget in [2.0, 3.0, 5.0, 8.0, 32.0] {
        let p = mixed::allocate(&table, &weights, budget).unwrap();
        assert!(p.average_bits(&weights) <= budget + 1e-9, "{} over {budget}", p.code());
    }
    assert!(mixed::allocate(&table, &weights, 1.0).is_none());
    let x = data.gather_f32(&split.calib);
    let traces = hawq::hessian_traces(&ev.host, &x, &set.labels, 4, 5e-3, 1);
    assert!(traces.iter().all(|t| t.is_finite()) && traces.iter().sum::<f64>() > 0.0, "{traces:?}");
    let h = hawq::hawq_table(&ev, &traces, &bits);
    let p = mixed::allocate(&h, &weights, 4.0).unwrap();
    assert!(p.average_bits(&weights) <= 4.0 + 1e-9);
}

#[test]
fn beam_search_fits_the_budget_beats_uniform_and_finds_the_optimum_with_a_wide_beam() {
    use mpq_quant::search::beam::{average_bits, beam_search};
    use mpq_quant::{Choice, Target};
    let (net, data, split, _) = setup();
    let set = EvalSet::new(&data, &split.calib);
    let ev = Evaluator::new(&net, input_ranges(&net, &set, Calibration::MinMax), 0);
    let counts = [784 * 24, 24 * 16, 16 * 10];
    let widths = [2, 4, 8, 32].map(bw);
    for budget in [3.0, 4.0, 5.0] {
        let found = beam_search(&ev, &set, &widths, &counts, budget, 3).unwrap().unwrap();
        assert!(average_bits(&found.best.plan, &counts) <= budget + 1e-9, "{}", found.best.plan.code());
        assert_eq!(ev.score(&found.best.plan, &set).unwrap(), found.best.calib, "the reported loss is the plan's");
        for w in widths.iter().copied().filter(|&w| f64::from(w.get()) <= budget) {
            for r in Rounding::SEARCHED {
                let uniform = ev.score(&Plan::uniform(3, w, r), &set).unwrap();
                assert!(found.best.calib.loss <= uniform.loss, "{budget} bits: worse than uniform {w}{r:?}");
            }
        }
    }
    // With a beam as wide as the whole space, the last layer sees every feasible plan.
    let opts: Vec<Choice> = widths
        .iter()
        .flat_map(|&bits| {
            let rs: Vec<Rounding> = if bits == 32 { vec![Rounding::Nearest] } else { Rounding::SEARCHED.to_vec() };
            rs.into_iter().map(move |rounding| Choice { bits, rounding, target: Target::Both })
        })
        .collect();
    let budget = 4.0;
    let mut best = f64::INFINITY;
    for a in &opts {
        for b in &opts {
            for c in &opts {
                let plan = Plan { layers: vec![*a, *b, *c] };
                if average_bits(&plan, &counts) <= budget {
                    best = best.min(ev.score(&plan, &set).unwrap().loss);
                }
            }
        }
    }
    let wide = beam_search(&ev, &set, &widths, &counts, budget, opts.len().pow(3)).unwrap().unwrap();
    assert_eq!(wide.best.calib.loss, best);
    assert!(beam_search(&ev, &set, &widths, &counts, 1.5, 3).unwrap().is_none(), "no plan fits 1.5 bits");
}

/// Largest difference in calibration loss allowed between integer and simulated evaluation
/// of one plan: they differ by the f32 rounding of sums, and by the hidden codes that this
/// rounding can move across a rounding boundary.
const INTEGER_TOL: f64 = 2e-3;

/// The integer evaluation is the exported model's arithmetic (its logits are the engine's,
/// bit for bit) and scores every config within [`INTEGER_TOL`] of the simulation, so the
/// searches keep their plans wherever the simulated winner leads by more than that.
#[test]
fn integer_evaluation_is_the_engine_and_agrees_with_simulation() {
    use mpq_quant::eval::Evaluation;
    use mpq_quant::tensor::Granularity;
    let (net, data, split, dev) = setup();
    let set = EvalSet::new(&data, &split.calib);
    let ranges = input_ranges(&net, &set, Calibration::MinMax);
    let sim = Evaluator::new(&net, ranges.clone(), 0);
    let int = Evaluator::new(&net, ranges.clone(), 0).evaluated_by(Evaluation::Integer);
    let fp = Plan::full_precision(3);
    assert_eq!(int.score(&fp, &set).unwrap(), sim.score(&fp, &set).unwrap(), "full precision stays simulated");
    let mut differ = 0;
    for bits in [8, 6, 4].map(bw) {
        let (a, b) = (
            exhaustive(&sim, bits, &set, true, &mut |_, _| {}).unwrap(),
            exhaustive(&int, bits, &set, true, &mut |_, _| {}).unwrap(),
        );
        for (s, i) in a.configs.iter().zip(&b.configs) {
            assert_eq!(s.plan, i.plan);
            // The search shares products between roundings where it can; plan by plan the
            // engine gives the same numbers.
            assert_eq!(int.score(&i.plan, &set).unwrap(), i.calib, "{bits} bits, {}", i.plan.code());
            let d = (s.calib.loss - i.calib.loss).abs();
            assert!(d < INTEGER_TOL, "{bits} bits, {}: {} vs {}", s.plan.code(), s.calib.loss, i.calib.loss);
            differ += usize::from(d > 0.0);
        }
        let mut losses: Vec<f64> = a.configs.iter().map(|c| c.calib.loss).collect();
        losses.sort_by(f64::total_cmp);
        if losses[1] - losses[0] > 2.0 * INTEGER_TOL {
            assert_eq!(a.best().best.plan, b.best().best.plan, "{bits} bits: the same winner");
        }
        let plan = &b.configs[7].plan;
        let q = mpq_quant::export::pack_plan("m", &net, plan, &ranges, Granularity::PerTensor).unwrap();
        let engine = mpq_lowbit::engine::Engine::new(&q).unwrap().forward(&set.x, set.len());
        assert_eq!(int.logits(plan, &set).unwrap(), engine, "{bits} bits, {}: the engine's logits", plan.code());
    }
    assert!(differ > 0, "the integer path ran (its sums are not the simulation's)");
    // A CNN too: convolutions on the engine, per-channel scales, a 16-bit layer simulated.
    let cnn = ModelConfig::Cnn { channels: [4, 8], hidden: 16 }.init(&dev, 3);
    let ranges = input_ranges(&cnn, &set, Calibration::MinMax);
    let int =
        Evaluator::with_granularity(&cnn, ranges.clone(), Granularity::PerChannel, 0).evaluated_by(Evaluation::Integer);
    let plan = Plan::from_roundings(bw(6), &[Rounding::Floor, Rounding::Ceil, Rounding::Nearest, Rounding::Floor]);
    let q = mpq_quant::export::pack_plan("c", &cnn, &plan, &ranges, Granularity::PerChannel).unwrap();
    let engine = mpq_lowbit::engine::Engine::new(&q).unwrap().forward(&set.x, set.len());
    assert_eq!(int.logits(&plan, &set).unwrap(), engine, "the CNN's logits are the engine's");
    let mut mixed = plan.clone();
    mixed.layers[1].bits = bw(16);
    let sim = Evaluator::with_granularity(&cnn, ranges, Granularity::PerChannel, 0);
    let (s, i) = (sim.logits(&mixed, &set).unwrap(), int.logits(&mixed, &set).unwrap());
    let gap = s.iter().zip(&i).fold(0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(gap < 0.05 && s != i, "16-bit layer simulated, the others on the engine: largest gap {gap}");
}

/// Greedy coordinate descent with every trial scored from the input: what `greedy_from`
/// must equal whatever it keeps between trials.
fn greedy_from_scratch(ev: &Evaluator, start: Plan, set: &EvalSet) -> (Plan, f64, usize) {
    let (mut cur, mut evaluations) = (start, 1);
    let mut best = ev.score(&cur, set).unwrap().loss;
    for _ in 0..10 {
        let mut changed = false;
        for k in 0..cur.layers.len() {
            for r in Rounding::SEARCHED {
                if r == cur.layers[k].rounding {
                    continue;
                }
                let mut trial = cur.clone();
                trial.layers[k].rounding = r;
                let loss = ev.score(&trial, set).unwrap().loss;
                evaluations += 1;
                if loss < best - 1e-12 {
                    (best, cur, changed) = (loss, trial, true);
                }
            }
        }
        if !changed {
            break;
        }
    }
    (cur, best, evaluations)
}

#[test]
fn greedy_keeping_outputs_equals_greedy_from_scratch() {
    use mpq_quant::eval::Evaluation;
    use mpq_quant::search::greedy_from;
    use rand::{Rng, SeedableRng};
    let (net, data, split, _) = setup();
    let set = EvalSet::new(&data, &split.calib);
    let ranges = input_ranges(&net, &set, Calibration::MinMax);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let mut later_passes = 0;
    for evaluation in [Evaluation::Simulated, Evaluation::Integer] {
        let ev = Evaluator::new(&net, ranges.clone(), 0).evaluated_by(evaluation);
        for _ in 0..40 {
            // Mixed widths and roundings, so that passes change layers in every order.
            let r: Vec<Rounding> = (0..3).map(|_| Rounding::SEARCHED[rng.random_range(0..3)]).collect();
            let mut start = Plan::from_roundings(bw(4), &r);
            start.layers.iter_mut().for_each(|c| c.bits = bw(rng.random_range(2..=8)));
            let g = greedy_from(&ev, start.clone(), &set, 10).unwrap();
            let (plan, loss, evaluations) = greedy_from_scratch(&ev, start, &set);
            assert_eq!((g.best.plan.clone(), g.best.calib.loss, g.evaluations), (plan, loss, evaluations));
            later_passes += usize::from(evaluations > 7);
        }
    }
    assert!(later_passes >= 4, "too few searches went past their first pass ({later_passes}) to test what is kept");
}
