//! The measurements themselves: training, FP32 inference, the searches and the integer
//! engine, on each backend and kernel this CPU has.

use crate::measure::time_per_call;
use crate::{TimingRow, Unit, What};
use burn::module::Module;
use mpq_data::Split;
use mpq_experiment::config::Backend;
use mpq_lowbit::engine::Engine;
use mpq_lowbit::gemm::Kernel;
use mpq_models::{ModelConfig, TrainConfig, TrainEngine, metrics, train};
use mpq_pipeline::Result;
use mpq_quant::BitWidth;
use mpq_quant::calib::{Calibration, input_ranges};
use mpq_quant::eval::{EvalSet, Evaluation, Evaluator};
use mpq_quant::search::{exhaustive, greedy, random_best, taylor::taylor_table};
use std::time::Instant;

/// FP32 burn forward on each backend and on the host network, against the int8 and int4
/// engines, batch 1, 64, 256.
pub(crate) fn engine_rows(
    backends: &[Backend],
    data: &mpq_data::Images,
    split: &Split,
    rows: &mut Vec<TimingRow>,
) -> Result<()> {
    let models = [ModelConfig::Mlp { hidden: vec![256, 128] }, ModelConfig::Cnn { channels: [8, 16], hidden: 64 }];
    let cpu = mpq_pipeline::backend::device(Backend::Flex)?;
    for m in &models {
        let tc = TrainConfig { epochs: 1, ..TrainConfig::default() };
        let (net, _) = train::train(m, &tc, &cpu, data, split, 2, &mut |_, _| {})?;
        let set = EvalSet::new(data, &split.calib);
        let ranges = input_ranges(&net, &set, Calibration::MinMax);
        // The host network every evaluation and search runs on: f32 with its sums in a fixed
        // order, on the host SIMD path in use.
        let host = net.to_host();
        for batch in [1usize, 64, 256] {
            let idx = &split.test[..batch];
            let x = data.gather_f32(idx);
            for &b in backends {
                let dev = mpq_pipeline::backend::device(b)?;
                let net_b = net.clone().to_device(&dev);
                let xt =
                    burn::tensor::Tensor::<2>::from_data(burn::tensor::TensorData::new(x.clone(), [batch, 784]), &dev);
                let secs = time_per_call(|| {
                    let _ = net_b.forward(xt.clone()).into_data();
                });
                rows.push(TimingRow::new(What::InferFp32, &m.name(), b.name(), batch, batch, secs, Unit::Samples));
            }
            let secs = time_per_call(|| {
                let _ = host.forward(&x);
            });
            let name = format!("host-{}", mpq_host::simd::path().name());
            rows.push(TimingRow::new(What::InferFp32, &m.name(), &name, batch, batch, secs, Unit::Samples));
            for bits in [BitWidth::of::<8>(), BitWidth::of::<4>()] {
                let plan = mpq_quant::Plan::uniform(net.n_layers(), bits, mpq_quant::Rounding::Nearest);
                let q = mpq_quant::export::pack_plan(
                    &m.name(),
                    &net,
                    &plan,
                    &ranges,
                    mpq_quant::tensor::Granularity::PerTensor,
                )?;
                // The kernel chosen at run time, then the slower ones this CPU also has.
                let best = Kernel::detect();
                let others = Kernel::ALL.into_iter().filter(|k| *k != best);
                for kernel in std::iter::once(best).chain(others.filter(|k| k.supported())) {
                    let engine = Engine::with_kernel(&q, kernel)?;
                    let secs = time_per_call(|| {
                        let _ = engine.forward(&x, batch);
                    });
                    let name = format!("engine-{}", kernel.name());
                    rows.push(TimingRow::new(
                        What::int(bits.get()),
                        &m.name(),
                        &name,
                        batch,
                        batch,
                        secs,
                        Unit::Samples,
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Plans the timed random null draws (the study's `random_n` default).
const RANDOM_N: usize = 27;

/// Most passes of the timed greedy search (it stops earlier after a pass with no change).
const GREEDY_PASSES: usize = 10;

/// Training with the host engine (`[train] engine = "host"`: fixed-order passes, the same
/// weights on every CPU), timed like the backends' `train` rows.
pub(crate) fn host_train_rows(data: &mpq_data::Images, split: &Split, samples: usize) -> Result<Vec<TimingRow>> {
    let models = [ModelConfig::Mlp { hidden: vec![256, 128] }, ModelConfig::Cnn { channels: [8, 16], hidden: 64 }];
    let dev = mpq_pipeline::backend::device(Backend::Flex)?;
    let name = format!("host-{}", mpq_host::simd::path().name());
    let tc = TrainConfig { epochs: 1, batch_size: 64, engine: TrainEngine::Host, ..TrainConfig::default() };
    let warm = Split { train: split.train[..split.train.len().min(256)].to_vec(), ..split.clone() };
    let mut rows = Vec::new();
    for m in &models {
        train::train(m, &tc, &dev, data, &warm, 1, &mut |_, _| {})?;
        let t0 = Instant::now();
        train::train(m, &tc, &dev, data, split, 1, &mut |_, _| {})?;
        rows.push(TimingRow::new(
            What::Train,
            &m.name(),
            &name,
            64,
            samples,
            t0.elapsed().as_secs_f64(),
            Unit::Samples,
        ));
    }
    Ok(rows)
}

/// Training, FP32 inference, the exhaustive search (without and with prefix reuse) and the
/// greedy search of each model on each backend, each timed after an untimed warm-up of the
/// same work.
pub(crate) fn train_and_search_rows(
    backends: &[Backend],
    data: &mpq_data::Images,
    split: &Split,
    samples: usize,
) -> Result<Vec<TimingRow>> {
    let models = [ModelConfig::Mlp { hidden: vec![256, 128] }, ModelConfig::Cnn { channels: [8, 16], hidden: 64 }];
    let mut rows = Vec::new();
    for &b in backends {
        let dev = mpq_pipeline::backend::device(b)?;
        for m in &models {
            let tc = TrainConfig { epochs: 1, batch_size: 64, ..TrainConfig::default() };
            // Untimed first: a GPU backend compiles (and tunes) its kernels on first use, which
            // would otherwise count as training time; on a CPU this only warms caches.
            let warm = Split { train: split.train[..split.train.len().min(256)].to_vec(), ..split.clone() };
            let (net, _) = train::train(m, &tc, &dev, data, &warm, 1, &mut |_, _| {})?;
            let _ = metrics::logits(&net, data, &split.calib, &dev);
            let t0 = Instant::now();
            let (net, _) = train::train(m, &tc, &dev, data, split, 1, &mut |_, _| {})?;
            rows.push(TimingRow::new(
                What::Train,
                &m.name(),
                b.name(),
                64,
                samples,
                t0.elapsed().as_secs_f64(),
                Unit::Samples,
            ));
            // Repeated like the batch rows: one pass over 1000 digits lasts milliseconds.
            let secs = time_per_call(|| {
                let _ = metrics::logits(&net, data, &split.calib, &dev);
            });
            rows.push(TimingRow::new(What::Infer, &m.name(), b.name(), 1000, 1000, secs, Unit::Samples));
            let set = EvalSet::new(data, &split.calib);
            let ev = Evaluator::new(&net, input_ranges(&net, &set, Calibration::MinMax), 1);
            // Prefix reuse on the integer engine: the kernel chosen at run time, then the others.
            let kernels = std::iter::once(Kernel::detect()).chain(Kernel::ALL.into_iter().filter(|k| k.supported()));
            let mut kernels: Vec<Kernel> = kernels.collect();
            kernels.dedup();
            let ints: Vec<(String, Evaluator)> = kernels
                .iter()
                .map(|&k| {
                    let e = Evaluator::new(&net, ev.ranges.clone(), 1).evaluated_by(Evaluation::Integer).on_kernel(k);
                    (format!("{}+{}", b.name(), k.name()), e)
                })
                .collect();
            let mut searches = vec![(What::ExhaustiveNaive, false, b.name().to_string(), &ev)];
            searches.push((What::ExhaustivePrefix, true, b.name().to_string(), &ev));
            searches.extend(ints.iter().map(|(name, e)| (What::ExhaustiveInteger, true, name.clone(), e)));
            for (name, reuse, backend, ev) in searches {
                let configs = exhaustive(ev, BitWidth::of::<8>(), &set, reuse, &mut |_, _| {})?.configs.len();
                // One search lasts tens of milliseconds: repeated, as the forward passes are.
                let secs = time_per_call(|| {
                    let _ = exhaustive(ev, BitWidth::of::<8>(), &set, reuse, &mut |_, _| {});
                });
                rows.push(TimingRow::new(name, &m.name(), &backend, 1000, configs, secs, Unit::Configs));
            }
            // Greedy coordinate descent (at most `GREEDY_PASSES` passes), which keeps the current plan's
            // activations and reruns only the layers from the one it changes.
            let greedies = std::iter::once((What::Greedy, b.name().to_string(), &ev));
            for (name, backend, ev) in greedies.chain(ints.iter().map(|(n, e)| (What::GreedyInteger, n.clone(), e))) {
                let plans = greedy(ev, BitWidth::of::<8>(), &set, GREEDY_PASSES)?.evaluations;
                let secs = time_per_call(|| {
                    let _ = greedy(ev, BitWidth::of::<8>(), &set, GREEDY_PASSES);
                });
                rows.push(TimingRow::new(name, &m.name(), &backend, 1000, plans, secs, Unit::Plans));
            }
            // The best-of-27 random null, each plan scored from scratch, and the Taylor search.
            let bits = BitWidth::of::<8>();
            let secs = time_per_call(|| {
                let _ = random_best(&ev, bits, &set, RANDOM_N, 1);
            });
            rows.push(TimingRow::new(What::RandomNull, &m.name(), b.name(), 1000, RANDOM_N, secs, Unit::Plans));
            let secs = time_per_call(|| {
                let _ = taylor_table(&ev, &set.x, &set.labels, bits).best_plan(bits);
            });
            rows.push(TimingRow::new(What::Taylor, &m.name(), b.name(), 1000, 1, secs, Unit::Searches));
        }
    }
    Ok(rows)
}
