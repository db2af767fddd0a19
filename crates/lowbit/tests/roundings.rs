//! A linear layer under nearest, floor and ceil at once ([`Roundings`]) gives each rounding
//! exactly what its own engine gives: with shared products where the input codes agree
//! (inputs on the grid), separately where they do not, on every kernel this CPU has.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use mpq_lowbit::engine::{Engine, Roundings};
use mpq_lowbit::gemm::Kernel;
use mpq_lowbit::{LayerKind, QLayer, QModel, Rounding, pack};

struct Lcg(u64);

impl Lcg {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

const ORDER: [Rounding; 3] = Rounding::SEARCHED;

/// One linear layer under the three roundings: weights drawn in [-1, 1], some of them exactly
/// on the grid, coded with a per-tensor scale under each rounding.
fn layers(rng: &mut Lcg, kind: LayerKind, bits: u32, in_scale: f32) -> [QLayer; 3] {
    let (rows, cols) = kind.weight_shape();
    let top = ((1i32 << (bits - 1)) - 1) as f64;
    let w: Vec<f64> = (0..rows * cols)
        .map(|i| if i % 37 == 5 { ((rng.next() * 2.0 - 1.0) * top).round() / top } else { rng.next() * 2.0 - 1.0 })
        .collect();
    let s = w.iter().fold(0f64, |m, v| m.max(v.abs())) / top;
    let bias: Vec<f32> = (0..rows).map(|_| rng.next() as f32 - 0.5).collect();
    ORDER.map(|rounding| {
        let code = |v: f64| match rounding {
            Rounding::Nearest | Rounding::Stochastic => (v / s).round_ties_even(),
            Rounding::Floor => (v / s).floor(),
            Rounding::Ceil => (v / s).ceil(),
        } as i32;
        let codes: Vec<i32> = w.iter().map(|&v| code(v)).collect();
        QLayer {
            name: "fc".into(),
            kind: kind.clone(),
            bits: mpq_net::BitWidth::new(bits).unwrap(),
            rounding,
            in_scale,
            in_zero: 0,
            in_qmax: (1 << bits) - 1,
            codes: pack::pack(&codes, bits),
            weights: vec![],
            scales: vec![s as f32],
            bias: bias.clone(),
            sizes: [0; 4],
        }
    })
}

#[test]
fn shared_products_equal_each_engine() {
    let mut rng = Lcg(3);
    let n = 37;
    // 8-bit pixels p / 255 lie on the grid of step 1 / 255; values in between do not.
    let pixels: Vec<f32> = (0..n * 784).map(|i| if i % 3 == 0 { 0.0 } else { (i * 7 % 256) as f32 / 255.0 }).collect();
    let between: Vec<f32> = (0..n * 784).map(|_| rng.next() as f32).collect();
    let kinds = [
        LayerKind::Linear { d_in: 784, d_out: 40, relu: true, residual: false },
        LayerKind::Linear { d_in: 784, d_out: 10, relu: false, residual: false },
    ];
    let mut shared_ran = 0;
    for kernel in Kernel::ALL.into_iter().filter(|k| k.supported()) {
        for kind in &kinds {
            for bits in [8, 6] {
                let l = layers(&mut rng, kind.clone(), bits, 1.0 / 255.0);
                let both = Roundings::new([&l[0], &l[1], &l[2]], kernel).unwrap();
                // Pixels are on the grid (step 1 / 255, clamped at 6 bits); the others are not.
                assert!(both.shares(&pixels) && !both.shares(&between) && !both.shares(&[]), "{}", kernel.name());
                for x in [&pixels, &between] {
                    let got = both.forward(x, n);
                    for (r, layer) in l.iter().enumerate() {
                        let m = QModel { model: String::new(), plan: String::new(), layers: vec![layer.clone()] };
                        let want = Engine::with_kernel(&m, kernel).unwrap().forward(x, n);
                        assert_eq!(got[r], want, "{} {bits} bits {:?} {kind:?}", kernel.name(), ORDER[r]);
                    }
                }
                shared_ran += 1;
            }
        }
    }
    assert!(shared_ran >= 4);
}

#[test]
fn a_residual_layer_adds_the_codes_it_saw() {
    let mut rng = Lcg(5);
    let kind = LayerKind::Linear { d_in: 64, d_out: 64, relu: true, residual: true };
    let n = 9;
    let x: Vec<f32> = (0..n * 64).map(|i| (i % 17) as f32 * 0.25).collect();
    for kernel in Kernel::ALL.into_iter().filter(|k| k.supported()) {
        let l = layers(&mut rng, kind.clone(), 8, 0.25);
        let got = Roundings::new([&l[0], &l[1], &l[2]], kernel).unwrap().forward(&x, n);
        for (r, layer) in l.iter().enumerate() {
            let m = QModel { model: String::new(), plan: String::new(), layers: vec![layer.clone()] };
            assert_eq!(got[r], Engine::with_kernel(&m, kernel).unwrap().forward(&x, n), "{}", kernel.name());
        }
    }
}

#[test]
fn layers_that_cannot_share_are_refused() {
    let mut rng = Lcg(9);
    let kind = LayerKind::Linear { d_in: 16, d_out: 16, relu: false, residual: false };
    let l = layers(&mut rng, kind, 8, 0.1);
    let kernel = Kernel::Portable;
    assert!(Roundings::new([&l[1], &l[0], &l[2]], kernel).is_err(), "roundings out of order");
    for lacking in Kernel::ALL.into_iter().filter(|k| !k.supported()) {
        assert!(Roundings::new([&l[0], &l[1], &l[2]], lacking).is_err(), "{} is not on this CPU", lacking.name());
    }
    let mut other = l[2].clone();
    other.in_scale = 0.2;
    assert!(Roundings::new([&l[0], &l[1], &other], kernel).is_err(), "another input scale");
    let mut far = l[2].clone();
    let mut codes = pack::unpack(&far.codes, 256, 8).iter().map(|&v| v as i32).collect::<Vec<_>>();
    let at = codes.iter().position(|&c| c < 100).unwrap();
    codes[at] += 2;
    far.codes = pack::pack(&codes, 8);
    assert!(Roundings::new([&l[0], &l[1], &far], kernel).is_err(), "ceil two codes above floor");
}
