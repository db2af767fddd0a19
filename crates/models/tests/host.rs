//! The host executor ([`mpq_host`]) against burn's network and against finite differences:
//! the same logits as burn's forward pass, results independent of the split into chunks,
//! and gradients that match central differences.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use burn::prelude::*;
use mpq_host::HostNet;
use mpq_models::{ModelConfig, Net, metrics};
use mpq_net::{Arch, LayerKind, LayerSpec, Pool};

/// A LeNet-5-style network with 2x2 average pools (what an imported model may have; no
/// config of the harness builds one), on odd and even sides.
fn lenet_avg(dev: &Device, seed: u64) -> Net {
    let conv = |c_in, c_out, side_in| LayerKind::conv3(c_in, c_out, side_in, false, false, Pool::Avg2);
    let lin = |d_in, d_out, relu| LayerKind::Linear { d_in, d_out, relu, residual: false };
    net_of(&[conv(1, 3, 28), conv(3, 4, 13), lin(100, 8, true), lin(8, 10, false)], dev, seed)
}

/// Pointwise (1x1) and strided convolutions, same-padded and valid, an identity skip between
/// them and a max-pool on an odd side (a ResNet's downsampling pieces).
fn strided(dev: &Device, seed: u64) -> Net {
    let conv = LayerKind::conv;
    let kinds = [
        conv(1, 4, 28, true, 3, 2, Pool::None),
        conv(4, 6, 14, false, 1, 1, Pool::None),
        conv(6, 6, 14, false, 3, 2, Pool::None),
        LayerKind::conv3(6, 6, 6, true, true, Pool::None),
        conv(6, 8, 6, true, 1, 2, Pool::Max2),
        LayerKind::Linear { d_in: 8, d_out: 10, relu: false, residual: false },
    ];
    net_of(&kinds, dev, seed)
}

/// A strided stem and two basic blocks with two-layer skips (the second strided, with more
/// channels: option A's subsampled, zero-padded shortcut), the last pooled globally.
fn blocks(dev: &Device, seed: u64) -> Net {
    use mpq_net::Carry;
    let conv = LayerKind::block;
    let kinds = [
        conv(1, 4, 28, 2, Pool::None, Carry::None),
        conv(4, 4, 14, 1, Pool::None, Carry::Open),
        conv(4, 4, 14, 1, Pool::None, Carry::Close { c: 4, side: 14 }),
        conv(4, 8, 14, 2, Pool::None, Carry::Open),
        conv(8, 8, 7, 1, Pool::GlobalAvg, Carry::Close { c: 4, side: 14 }),
        LayerKind::Linear { d_in: 8, d_out: 10, relu: false, residual: false },
    ];
    net_of(&kinds, dev, seed)
}

/// A network of `kinds`, layers named `l0`, `l1`, ...
fn net_of(kinds: &[LayerKind], dev: &Device, seed: u64) -> Net {
    let layers =
        kinds.iter().enumerate().map(|(i, kind)| LayerSpec { name: format!("l{i}"), kind: kind.clone() }).collect();
    Net::new(Arch { layers }, dev, seed)
}

fn images(n: usize) -> Vec<f32> {
    (0..n * 784).map(|i| if i % 7 < 3 { 0.0 } else { ((i * 31 % 255) as f32) / 255.0 }).collect()
}

#[test]
fn host_forward_matches_burn_for_every_model_kind() {
    let dev = Device::flex();
    let cfgs = [
        ModelConfig::Mlp { hidden: vec![32, 16] },
        ModelConfig::Cnn { channels: [4, 8], hidden: 16 },
        ModelConfig::ResMlp { width: 24, depth: 2 },
        ModelConfig::ResCnn { channels: 5, depth: 2 },
        ModelConfig::PlainCnn { channels: 5, depth: 3 },
    ];
    let nets = cfgs.iter().map(|c| (format!("{c:?}"), c.init(&dev, 3))).chain([
        ("lenet-avg".into(), lenet_avg(&dev, 3)),
        ("strided".into(), strided(&dev, 3)),
        ("blocks".into(), blocks(&dev, 3)),
    ]);
    for (cfg, net) in nets {
        let n = 9;
        let x = images(n);
        let want = net
            .forward(Tensor::<2>::from_data(TensorData::new(x.clone(), [n, 784]), &dev))
            .into_data()
            .try_to_vec::<f32>()
            .unwrap();
        let got = net.to_host().forward(&x);
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(&want) {
            assert!((g - w).abs() <= 1e-4 * (1.0 + w.abs()), "{cfg}: {g} vs {w}");
        }
    }
}

#[test]
fn results_do_not_depend_on_the_split_into_chunks() {
    let net = ModelConfig::Cnn { channels: [4, 8], hidden: 16 }.init(&Device::flex(), 5);
    let host = net.to_host();
    let x = images(70);
    let all = host.forward(&x);
    let one: Vec<f32> = x.chunks(784).flat_map(|r| host.forward(r)).collect();
    assert_eq!(all, one, "bit-identical whether examples run alone or in chunks");
}

fn loss(h: &HostNet, x: &[f32], y: &[i64], ws: &[Vec<f32>]) -> f64 {
    let mut a = x.to_vec();
    for (k, w) in ws.iter().enumerate() {
        a = h.stage(k, &a, Some(w));
    }
    metrics::score(&a, y, 1.0).loss
}

/// Every layer's weight and bias gradients against central differences, on an MLP, a
/// residual MLP and CNNs; training's pass (no first-layer dL/dx) gives the same.
#[test]
fn weight_gradients_match_finite_differences() {
    let x: Vec<f32> = (0..3 * 784).map(|i| ((i * 17 % 97) as f32) / 97.0).collect();
    let y = [3i64, 7, 1];
    let cfgs = [
        ModelConfig::Mlp { hidden: vec![16] },
        ModelConfig::ResMlp { width: 12, depth: 2 },
        ModelConfig::Cnn { channels: [3, 4], hidden: 8 },
        ModelConfig::ResCnn { channels: 3, depth: 2 },
        ModelConfig::PlainCnn { channels: 3, depth: 2 },
    ];
    let dev = Device::flex();
    let hosts = cfgs.iter().map(|c| (format!("{c:?}"), c.init(&dev, 11).to_host()));
    let extra = [
        ("lenet-avg".to_string(), lenet_avg(&dev, 11).to_host()),
        ("strided".into(), strided(&dev, 11).to_host()),
        ("blocks".into(), blocks(&dev, 11).to_host()),
    ];
    for (cfg, h) in hosts.chain(extra) {
        let g = h.gradients(&x, &y, None);
        for k in 0..h.n_layers() {
            for idx in [0, h.weights[k].len() / 2, h.weights[k].len() - 1] {
                let eps = 1e-2f32;
                let mut ws = h.weights.clone();
                ws[k][idx] += eps;
                let up = loss(&h, &x, &y, &ws);
                ws[k][idx] -= 2.0 * eps;
                let down = loss(&h, &x, &y, &ws);
                let fd = (up - down) / (2.0 * eps as f64);
                let an = g.weight[k][idx] as f64;
                assert!((fd - an).abs() < 2e-3 + 0.05 * an.abs(), "{cfg} layer {k} [{idx}]: fd {fd} vs {an}");
            }
            for idx in [0, h.biases[k].len() - 1] {
                // A bias moves every position of its channel: a smaller step keeps
                // ReLU and max-pool choices where they are.
                let eps = 1e-3f32;
                let mut hb = h.clone();
                hb.biases[k][idx] += eps;
                let up = loss(&hb, &x, &y, &h.weights);
                hb.biases[k][idx] -= 2.0 * eps;
                let down = loss(&hb, &x, &y, &h.weights);
                let fd = (up - down) / (2.0 * eps as f64);
                let an = g.bias[k][idx] as f64;
                assert!((fd - an).abs() < 2e-3 + 0.05 * an.abs(), "{cfg} bias {k} [{idx}]: fd {fd} vs {an}");
            }
        }
        let (t, _) = h.backprop(&x, &y, None, false);
        assert!(t.input[0].is_empty() && t.weight == g.weight && t.bias == g.bias, "{cfg}: training's pass");
    }
}
