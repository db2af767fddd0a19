//! The searches that scale past the exhaustive one, against it on a ResNet-8 (3^8 =
//! 6561 plans, all scored): the plans themselves are checked, not only their losses. A beam
//! wide enough to keep every prefix is the exhaustive search and returns its optimum; a narrow
//! beam and greedy return plans whose reported losses are the table's and never beat the
//! optimum; greedy's plan is a local optimum of the table (no one-layer change improves it);
//! Taylor's plan is the argmin of its own additive prediction over all 6561 plans.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::prelude::*;
use mpq_data::{Split, SplitSizes, shipped};
use mpq_models::{ModelConfig, TrainConfig, TrainEngine, train::train};
use mpq_quant::calib::{Calibration, input_ranges};
use mpq_quant::eval::{EvalSet, Evaluator};
use mpq_quant::search::beam::beam_search;
use mpq_quant::search::{exhaustive, greedy, taylor::taylor_table};
use mpq_quant::{BitWidth, Plan, Rounding};

#[test]
fn scalable_searches_against_the_exhaustive_optimum_at_depth_8() {
    let dev = Device::flex();
    let data = shipped::load().unwrap();
    let split = Split::draw(&data, SplitSizes { train: 1200, calib: 150, test: 10 }, None, 8).unwrap();
    // He et al.'s ResNet-8: a stem, three basic blocks (two strided), a head = 8 layers.
    let cfg = ModelConfig::ResNet { depth: 8, width: 4 };
    let tc = TrainConfig { epochs: 3, batch_size: 32, lr: 3e-3, engine: TrainEngine::Host, ..TrainConfig::default() };
    let (net, _) = train(&cfg, &tc, &dev, &data, &split, 4, &mut |_, _| {}).unwrap();
    assert_eq!(net.n_layers(), 8);
    let set = EvalSet::new(&data, &split.calib);
    let ev = Evaluator::new(&net, input_ranges(&net, &set, Calibration::MinMax), 0);
    let bits = BitWidth::new(4).unwrap();
    let table = exhaustive(&ev, bits, &set, true, &mut |_, _| {}).unwrap();
    assert_eq!(table.configs.len(), 6561);
    let loss_of = |p: &Plan| table.configs.iter().find(|c| c.plan == *p).unwrap().calib.loss;
    let optimum = table.best().best;
    let weights: Vec<usize> = net.layers().iter().map(|l| l.weight_count).collect();

    // A beam that keeps every prefix is the exhaustive search.
    let wide = beam_search(&ev, &set, &[bits], &weights, 4.0, 3usize.pow(7)).unwrap().unwrap();
    assert_eq!(wide.best.plan, optimum.plan, "the widest beam misses the optimum");
    assert!((wide.best.calib.loss - optimum.calib.loss).abs() < 1e-9);

    // A narrow beam and greedy: their losses are the plans' own, never below the optimum.
    let narrow = beam_search(&ev, &set, &[bits], &weights, 4.0, 3).unwrap().unwrap();
    let g = greedy(&ev, bits, &set, 20).unwrap();
    for (name, found) in [("beam 3", &narrow), ("greedy", &g)] {
        let p = &found.best.plan;
        assert!((found.best.calib.loss - loss_of(p)).abs() < 1e-9, "{name}: its loss is not its plan's");
        assert!(found.best.calib.loss >= optimum.calib.loss - 1e-12, "{name} beats the exhaustive optimum");
        assert!(found.evaluations < 6561 / 4, "{name} scored {} plans", found.evaluations);
    }
    // Greedy stops at a local optimum: no single layer's other rounding is better.
    for k in 0..8 {
        for r in Rounding::SEARCHED {
            let mut p = g.best.plan.clone();
            p.layers[k].rounding = r;
            assert!(loss_of(&p) >= g.best.calib.loss - 1e-12, "greedy's plan improves at layer {k} with {r:?}");
        }
    }
    // Taylor's plan minimises its own prediction over every plan.
    let y: Vec<i64> = set.labels.clone();
    let tt = taylor_table(&ev, &set.x, &y, bits);
    let chosen = tt.predict(&tt.best_plan(bits));
    let min = table.configs.iter().map(|c| tt.predict(&c.plan)).fold(f64::INFINITY, f64::min);
    assert!((chosen - min).abs() < 1e-12, "Taylor's plan predicts {chosen}, the best prediction is {min}");
    let rank = |p: &Plan| table.configs.iter().filter(|c| c.calib.loss < loss_of(p)).count();
    eprintln!(
        "depth 8, 4 bits: optimum {:.5}; greedy {:.5} (rank {}, {} plans), beam 3 {:.5} (rank {}, {} plans), taylor {:.5} (rank {})",
        optimum.calib.loss,
        g.best.calib.loss,
        rank(&g.best.plan),
        g.evaluations,
        narrow.best.calib.loss,
        rank(&narrow.best.plan),
        narrow.evaluations,
        loss_of(&tt.best_plan(bits)),
        rank(&tt.best_plan(bits))
    );
}
