//! Times, side by side in one process on the same random MLP (784-256-128-10, ReLU), the
//! mpq integer engine (int8, int4; per-tensor codes) and candle-core's CPU paths: FP32
//! matmul and its GGML quantized matmul (Q8_0, Q4_0: a scale per block of 32 weights, and
//! activations requantized to Q8_0 blocks). GGML blocks need depths divisible by 32, so
//! candle's first layer reads the 784 inputs padded with zeros to 800.
//!
//! Run: `cargo run --release --manifest-path crates/lowbit/compare/Cargo.toml`

use candle_core::quantized::{GgmlDType, QMatMul, QTensor};
use candle_core::{Device, Module, Tensor};
use mpq_lowbit::engine::Engine;
use mpq_lowbit::{LayerKind, QLayer, QModel, pack};
use std::time::Instant;

const DIMS: [usize; 4] = [784, 256, 128, 10];

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 40) as f32 / (1u64 << 24) as f32
    }
}

/// Seconds per call, after one warm-up call, over at least 0.5 s.
fn time_per_call(mut f: impl FnMut()) -> f64 {
    f();
    let (t0, mut calls) = (Instant::now(), 0u32);
    while calls < 3 || t0.elapsed().as_secs_f64() < 0.5 {
        f();
        calls += 1;
    }
    t0.elapsed().as_secs_f64() / calls as f64
}

/// Layer weights `[out][in]` (uniform in +-1/sqrt(in)) and biases.
fn weights(rng: &mut Lcg) -> Vec<(Vec<f32>, Vec<f32>)> {
    DIMS.windows(2)
        .map(|d| {
            let a = 1.0 / (d[0] as f32).sqrt();
            let w = (0..d[0] * d[1]).map(|_| (2.0 * rng.next() - 1.0) * a).collect();
            let b = (0..d[1]).map(|_| (2.0 * rng.next() - 1.0) * a).collect();
            (w, b)
        })
        .collect()
}

/// The same network as a packed model: symmetric per-tensor weight codes, nearest rounding,
/// unsigned inputs in [0, 1] for the first layer and [0, 4] after.
fn qmodel(ws: &[(Vec<f32>, Vec<f32>)], width: mpq_lowbit::BitWidth) -> QModel {
    let bits = width.get();
    let qmax = (1i32 << (bits - 1)) - 1;
    let layers = ws
        .iter()
        .enumerate()
        .map(|(k, (w, b))| {
            let s = w.iter().fold(0f32, |m, v| m.max(v.abs())) / qmax as f32;
            let codes: Vec<i32> = w.iter().map(|v| (v / s).round_ties_even() as i32).collect();
            let hi = if k == 0 { 1.0 } else { 4.0 };
            QLayer {
                name: format!("fc{}", k + 1),
                kind: LayerKind::Linear {
                    d_in: DIMS[k],
                    d_out: DIMS[k + 1],
                    relu: k + 2 < DIMS.len(),
                    residual: false,
                },
                bits: width,
                rounding: mpq_lowbit::Rounding::Nearest,
                in_scale: hi / ((1 << bits) - 1) as f32,
                in_zero: 0,
                in_qmax: (1 << bits) - 1,
                codes: pack::pack(&codes, bits),
                weights: vec![],
                scales: vec![s],
                bias: b.clone(),
                sizes: [0; 4],
            }
        })
        .collect();
    QModel { model: "mlp-256-128".into(), plan: format!("{bits}N"), layers }
}

enum CandleLayer {
    F32 { wt: Tensor, b: Tensor },
    Q { m: QMatMul, b: Tensor },
}

fn candle_net(ws: &[(Vec<f32>, Vec<f32>)], dtype: Option<GgmlDType>) -> candle_core::Result<Vec<CandleLayer>> {
    let dev = Device::Cpu;
    ws.iter()
        .enumerate()
        .map(|(k, (w, b))| {
            let (din, dout) = (DIMS[k], DIMS[k + 1]);
            let dpad = din.div_ceil(32) * 32;
            let mut wp = vec![0f32; dout * dpad];
            for r in 0..dout {
                wp[r * dpad..r * dpad + din].copy_from_slice(&w[r * din..(r + 1) * din]);
            }
            let w = Tensor::from_vec(wp, (dout, dpad), &dev)?;
            let b = Tensor::from_vec(b.clone(), dout, &dev)?;
            Ok(match dtype {
                None => CandleLayer::F32 { wt: w.t()?.contiguous()?, b },
                Some(d) => CandleLayer::Q { m: QMatMul::from_qtensor(QTensor::quantize(&w, d)?)?, b },
            })
        })
        .collect()
}

fn candle_forward(net: &[CandleLayer], x: &Tensor) -> candle_core::Result<Tensor> {
    let mut h = x.clone();
    for (k, l) in net.iter().enumerate() {
        h = match l {
            CandleLayer::F32 { wt, b } => h.matmul(wt)?.broadcast_add(b)?,
            CandleLayer::Q { m, b } => m.forward(&h)?.broadcast_add(b)?,
        };
        if k + 1 < net.len() {
            h = h.relu()?;
        }
    }
    Ok(h)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut rng = Lcg(1);
    let ws = weights(&mut rng);
    println!("threads: {}", std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1));
    println!("{:<28} {:>6} {:>14} {:>10}", "path", "batch", "samples/s", "vs candle f32");
    for batch in [1usize, 64, 256] {
        let x: Vec<f32> = (0..batch * 784).map(|_| rng.next()).collect();
        let mut xp = vec![0f32; batch * 800];
        for e in 0..batch {
            xp[e * 800..e * 800 + 784].copy_from_slice(&x[e * 784..(e + 1) * 784]);
        }
        let xt = Tensor::from_vec(xp, (batch, 800), &Device::Cpu)?;
        let mut rows: Vec<(String, f64)> = Vec::new();
        for (name, dtype) in
            [("candle f32", None), ("candle q8_0", Some(GgmlDType::Q8_0)), ("candle q4_0", Some(GgmlDType::Q4_0))]
        {
            let net = candle_net(&ws, dtype)?;
            let secs = time_per_call(|| {
                std::hint::black_box(candle_forward(&net, &xt).map(|t| t.to_vec2::<f32>()).ok());
            });
            rows.push((name.into(), batch as f64 / secs));
        }
        for width in [mpq_lowbit::BitWidth::of::<8>(), mpq_lowbit::BitWidth::of::<4>()] {
            let bits = width.get();
            let engine = Engine::new(&qmodel(&ws, width))?;
            let secs = time_per_call(|| {
                std::hint::black_box(engine.forward(&x, batch));
            });
            rows.push((format!("mpq engine int{bits} ({})", engine.kernel().name()), batch as f64 / secs));
        }
        let base = rows[0].1;
        for (name, per_s) in &rows {
            println!("{name:<28} {batch:>6} {per_s:>14.0} {:>9.2}x", per_s / base);
        }
    }
    Ok(())
}
