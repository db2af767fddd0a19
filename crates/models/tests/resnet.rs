//! The deep residual networks and their plain twins: the layers He et al.'s CIFAR ResNets
//! have at depths 8, 14 and 20, twins that differ in the skips alone, training on the host
//! with batch norm (folded afterwards), and burn's network giving the host's logits.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::prelude::*;
use mpq_data::{Split, SplitSizes, shipped};
use mpq_models::{Carry, LayerKind, ModelConfig, TrainConfig, TrainEngine, metrics, train::train};

#[test]
fn resnets_have_6n_plus_2_layers_and_twins_differ_in_skips_alone() {
    for depth in [8, 14, 20] {
        let (res, plain) = (ModelConfig::ResNet { depth, width: 8 }, ModelConfig::PlainResNet { depth, width: 8 });
        assert!(res.validate().is_ok() && plain.validate().is_ok());
        let (a, b) = (res.arch(), plain.arch());
        assert_eq!(a.layers.len(), depth, "{}", res.name());
        a.check().unwrap();
        b.check().unwrap();
        let opened = a.layers.iter().filter(|l| l.kind.carry() == Carry::Open).count();
        assert_eq!(opened, (depth - 2) / 2, "one skip per basic block");
        assert!(b.layers.iter().all(|l| l.kind.carry() == Carry::None));
        for (x, y) in a.layers.iter().zip(&b.layers) {
            assert_eq!(x.name, y.name);
            assert_eq!(
                (x.kind.weight_shape(), x.kind.own_output_width()),
                (y.kind.weight_shape(), y.kind.own_output_width())
            );
        }
        let strided: Vec<usize> = a
            .layers
            .iter()
            .filter_map(|l| match l.kind {
                LayerKind::Conv { stride: 2, side_in, .. } => Some(side_in),
                _ => None,
            })
            .collect();
        assert_eq!(strided, [28, 14], "stride 2 at the first block of stages 2 and 3");
        assert_eq!(res.seed_label(), plain.seed_label(), "twins share each repeat's seeds");
    }
    assert_eq!(ModelConfig::ResNet { depth: 20, width: 8 }.name(), "resnet20-8");
    assert!(ModelConfig::ResNet { depth: 10, width: 8 }.validate().is_err());
    assert!(ModelConfig::PlainResNet { depth: 8, width: 1 }.validate().is_err());
}

/// A ResNet-8 and its twin train on the host with batch norm (folded afterwards) well above
/// chance in three epochs on 1200 digits (about 0.57 test accuracy here, chance 0.1); burn's network, given the folded weights, computes the host's
/// logits; burn's own training engine is refused with a message.
#[test]
fn resnets_train_on_the_host_with_batch_norm_and_burn_agrees() {
    let data = shipped::load().unwrap();
    let split = Split::draw(&data, SplitSizes { train: 1200, calib: 200, test: 300 }, None, 3).unwrap();
    let tc = TrainConfig { epochs: 3, batch_size: 32, lr: 3e-3, engine: TrainEngine::Host, ..TrainConfig::default() };
    let dev = Device::flex();
    let (x, y) = (data.gather_f32(&split.test), data.gather_labels(&split.test));
    for cfg in [ModelConfig::ResNet { depth: 8, width: 4 }, ModelConfig::PlainResNet { depth: 8, width: 4 }] {
        let (net, logs) = train(&cfg, &tc, &dev, &data, &split, 5, &mut |_, _| {}).unwrap();
        assert_eq!(logs.len(), 3);
        assert!(logs[2].train_loss < logs[0].train_loss, "{}: {logs:?}", cfg.name());
        let host = net.to_host().forward(&x);
        let acc = metrics::score(&host, &y, 1.0).acc;
        assert!(acc > 0.4, "{}: test accuracy {acc} after three epochs", cfg.name());
        let burn = net
            .forward(Tensor::<2>::from_data(TensorData::new(x.clone(), [y.len(), 784]), &dev))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let worst = host.iter().zip(&burn).fold(0f32, |m, (a, b)| m.max((a - b).abs() / (1.0 + b.abs())));
        assert!(worst <= 1e-4, "{}: host vs burn {worst}", cfg.name());
    }
    let burn = TrainConfig { engine: TrainEngine::Burn, ..tc };
    let e = train(&ModelConfig::ResNet { depth: 8, width: 4 }, &burn, &dev, &data, &split, 5, &mut |_, _| {})
        .expect_err("refused")
        .to_string();
    assert!(e.contains("resnet8-4") && e.contains("host"), "{e}");
}
