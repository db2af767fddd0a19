//! Every kernel this CPU supports gives the same logits on the same packed model: the integer
//! sums are exact and the rest of the forward pass is shared, so they must agree bit for bit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mpq_lowbit::engine::Engine;
use mpq_lowbit::gemm::Kernel;
use mpq_lowbit::{LayerKind, Pool, QLayer, QModel, Rounding, pack};
use mpq_net::Carry;

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

fn layer(rng: &mut Lcg, name: &str, kind: LayerKind, bits: u32, rounding: Rounding, zero: i32) -> QLayer {
    let (rows, cols) = kind.weight_shape();
    let qmax = (1i32 << (bits - 1)) - 1;
    let codes: Vec<i32> = (0..rows * cols).map(|_| (rng.next() * (2 * qmax + 1) as f32) as i32 - qmax).collect();
    QLayer {
        name: name.into(),
        kind,
        bits: mpq_net::BitWidth::new(bits).unwrap(),
        rounding,
        in_scale: 1.0 / ((1 << bits) - 1) as f32 * 1.3,
        in_zero: zero,
        in_qmax: (1 << bits) - 1,
        codes: pack::pack(&codes, bits),
        weights: vec![],
        scales: (0..rows).map(|_| 0.01 + 0.02 * rng.next()).collect(),
        bias: (0..rows).map(|_| rng.next() - 0.5).collect(),
        sizes: [0; 4],
    }
}

fn conv(c_in: usize, c_out: usize, side_in: usize) -> LayerKind {
    LayerKind::lenet_conv(c_in, c_out, side_in)
}

fn block(c: usize, residual: bool, pool: Pool) -> LayerKind {
    LayerKind::conv3(c, c, 13, true, residual, pool)
}

fn models() -> Vec<QModel> {
    let mut rng = Lcg(3);
    let lin = |d_in, d_out, relu, residual| LayerKind::Linear { d_in, d_out, relu, residual };
    let mlp = vec![
        layer(&mut rng, "fc1", lin(784, 70, true, false), 8, Rounding::Nearest, 0),
        layer(&mut rng, "fc2", lin(70, 70, true, true), 5, Rounding::Floor, 3),
        layer(&mut rng, "fc3", lin(70, 10, false, false), 4, Rounding::Ceil, 0),
    ];
    let cnn = vec![
        layer(&mut rng, "conv1", conv(1, 5, 28), 8, Rounding::Ceil, 0),
        layer(&mut rng, "conv2", conv(5, 7, 13), 3, Rounding::Nearest, 1),
        layer(&mut rng, "fc1", lin(7 * 5 * 5, 10, false, false), 6, Rounding::Floor, 0),
    ];
    let rescnn = vec![
        layer(&mut rng, "stem", conv(1, 6, 28), 8, Rounding::Nearest, 0),
        layer(&mut rng, "block1", block(6, true, Pool::None), 4, Rounding::Floor, 2),
        layer(&mut rng, "block2", block(6, false, Pool::None), 6, Rounding::Nearest, 0),
        layer(&mut rng, "block3", block(6, true, Pool::GlobalAvg), 3, Rounding::Ceil, 1),
        layer(&mut rng, "head", lin(6, 10, false, false), 8, Rounding::Nearest, 0),
    ];
    // 2x2 average pools (an imported LeNet-5), after a valid convolution and after a skip.
    let avg = LayerKind::conv3(1, 5, 28, false, false, Pool::Avg2);
    let lenet_avg = vec![
        layer(&mut rng, "conv1", avg, 8, Rounding::Nearest, 0),
        layer(&mut rng, "block1", block(5, true, Pool::Avg2), 5, Rounding::Floor, 1),
        layer(&mut rng, "fc1", lin(5 * 6 * 6, 10, false, false), 6, Rounding::Ceil, 0),
    ];
    // Pointwise and strided convolutions (a ResNet's downsampling pieces).
    let strides = vec![
        layer(&mut rng, "conv1", LayerKind::conv(1, 8, 28, true, 3, 2, Pool::None), 8, Rounding::Nearest, 0),
        layer(&mut rng, "conv2", LayerKind::conv(8, 12, 14, false, 1, 1, Pool::None), 6, Rounding::Floor, 1),
        layer(&mut rng, "conv3", LayerKind::conv(12, 16, 14, false, 3, 2, Pool::Max2), 5, Rounding::Ceil, 2),
        layer(&mut rng, "conv4", LayerKind::conv(16, 16, 3, false, 1, 2, Pool::GlobalAvg), 8, Rounding::Nearest, 0),
        layer(&mut rng, "fc1", lin(16, 10, false, false), 6, Rounding::Nearest, 0),
    ];
    // Two basic blocks with two-layer skips, the second strided with option A's shortcut.
    let block = LayerKind::block;
    let blocks = vec![
        layer(&mut rng, "stem", LayerKind::conv(1, 4, 28, true, 3, 2, Pool::None), 8, Rounding::Nearest, 0),
        layer(&mut rng, "b1a", block(4, 4, 14, 1, Pool::None, Carry::Open), 6, Rounding::Floor, 1),
        layer(&mut rng, "b1b", block(4, 4, 14, 1, Pool::None, Carry::Close { c: 4, side: 14 }), 5, Rounding::Ceil, 0),
        layer(&mut rng, "b2a", block(4, 8, 14, 2, Pool::None, Carry::Open), 8, Rounding::Nearest, 2),
        layer(
            &mut rng,
            "b2b",
            block(8, 8, 7, 1, Pool::GlobalAvg, Carry::Close { c: 4, side: 14 }),
            4,
            Rounding::Floor,
            0,
        ),
        layer(&mut rng, "fc", lin(8, 10, false, false), 8, Rounding::Nearest, 0),
    ];
    vec![
        QModel { model: "blocks".into(), plan: "-".into(), layers: blocks },
        QModel { model: "strided".into(), plan: "-".into(), layers: strides },
        QModel { model: "mlp".into(), plan: "-".into(), layers: mlp },
        QModel { model: "cnn".into(), plan: "-".into(), layers: cnn },
        QModel { model: "rescnn".into(), plan: "-".into(), layers: rescnn },
        QModel { model: "lenet-avg".into(), plan: "-".into(), layers: lenet_avg },
    ]
}

#[test]
fn kernels_agree_bit_for_bit() {
    let mut rng = Lcg(11);
    // Dense inputs, and inputs mostly zero as images are (the `avx2` kernel then lists each
    // row's nonzero pairs instead of a block's).
    for (n, zeros) in [(1usize, 0.0), (7, 0.0), (70, 0.0), (1, 0.8), (40, 0.8)] {
        let x: Vec<f32> = (0..n * 784).map(|_| if rng.next() < zeros { 0.0 } else { rng.next() }).collect();
        for m in models() {
            let want = Engine::with_kernel(&m, Kernel::Portable).unwrap().forward(&x, n);
            assert_eq!(want.len(), n * 10);
            assert!(want.iter().all(|v| v.is_finite()));
            let spread = want.iter().fold(0f32, |a, v| a.max(v.abs()));
            assert!(spread > 1e-3, "{} logits are all zero: the test would prove nothing", m.model);
            for kernel in Kernel::ALL.into_iter().filter(|k| *k != Kernel::Portable) {
                if !kernel.supported() {
                    assert!(Engine::with_kernel(&m, kernel).is_err());
                    continue;
                }
                let got = Engine::with_kernel(&m, kernel).unwrap().forward(&x, n);
                assert_eq!(got, want, "{} on {} with batch {n}", m.model, kernel.name());
            }
        }
    }
}

#[test]
fn codes_that_do_not_fit_u8_are_refused() {
    let mut m = models().remove(2);
    m.layers[1].in_qmax = 300;
    let e = Engine::new(&m).err().expect("refused").to_string();
    assert!(e.contains("fc2") && e.contains("300"), "{e}");
}

#[test]
fn a_skip_around_a_conv_that_changes_shape_is_refused() {
    let mut m = models().remove(4);
    m.layers[1].kind = LayerKind::conv3(6, 6, 13, false, true, Pool::None);
    let e = Engine::new(&m).err().expect("refused").to_string();
    assert!(e.contains("block1") && e.contains("cannot run"), "{e}");
}

/// A kernel named by its table name (`neon-sdot`), for the expectations below.
fn kernel_named(name: &str) -> Kernel {
    Kernel::ALL.into_iter().find(|k| k.name() == name).unwrap_or_else(|| panic!("no kernel named {name}"))
}

/// A runner names the kernels its CPU must have (`MPQ_EXPECT_KERNELS`) and must lack
/// (`MPQ_EXPECT_MISSING`), comma-separated, so that `kernels_agree_bit_for_bit` cannot pass
/// by skipping the kernel it was meant to check. CI sets the first from `/proc/cpuinfo` on
/// x86 and both under qemu on aarch64; with neither set, it fails in CI (`CI` set).
#[test]
fn the_runner_has_the_kernels_it_expects() {
    let set = ["MPQ_EXPECT_KERNELS", "MPQ_EXPECT_MISSING"].iter().any(|v| std::env::var(v).is_ok());
    assert!(set || std::env::var("CI").is_err(), "CI must say which kernels its CPU has (MPQ_EXPECT_KERNELS)");
    let covered: Vec<(&str, bool)> = Kernel::ALL.iter().map(|k| (k.name(), k.supported())).collect();
    mpq_net::simd::coverage("the_runner_has_the_kernels_it_expects", &covered).unwrap();
    for (var, want) in [("MPQ_EXPECT_KERNELS", true), ("MPQ_EXPECT_MISSING", false)] {
        let names = std::env::var(var).unwrap_or_default();
        for name in names.split(',').filter(|n| !n.is_empty()) {
            assert_eq!(kernel_named(name).supported(), want, "{var}: {name}");
        }
    }
    if let Ok(names) = std::env::var("MPQ_EXPECT_MISSING") {
        let best = Kernel::detect();
        assert!(!names.split(',').any(|n| n == best.name()), "detect() chose {} here", best.name());
    }
}
