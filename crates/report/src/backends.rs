//! The report's "Backends" section: the same runs on several backends side by side.

use crate::{Method, SummaryRow, Tables};

/// What the section needs to know of the experiment.
#[derive(Debug, Clone)]
pub struct Setup {
    /// Model names, in the experiment's order.
    pub models: Vec<String>,
    /// Backend names, in the experiment's order.
    pub backends: Vec<String>,
    /// Uniform bit widths swept.
    pub bits: Vec<u32>,
    /// Training examples per epoch (for throughput).
    pub train_examples: usize,
}

/// A "Backends" section when an experiment ran on several: per model and backend, training
/// and FP32 inference throughput and the test loss at FP32 and each width with nearest
/// rounding, so backends can be compared side by side. Empty with one backend.
pub fn section(setup: &Setup, t: &Tables, summary: &[SummaryRow]) -> String {
    if setup.backends.len() < 2 {
        return String::new();
    }
    let mean = |v: Vec<f64>| if v.is_empty() { f64::NAN } else { v.iter().sum::<f64>() / v.len() as f64 };
    let mut s = String::from(
        "## Backends\n\nThe same runs on each backend (means over repeats). Training throughput counts every epoch, the first included (wgpu compiles its kernels then); inference is the FP32 forward over the test split; losses are test losses.\n\n| model | backend | train samples/s | FP32 inference samples/s | FP32 loss |",
    );
    for b in &setup.bits {
        s.push_str(&format!(" {b}-bit nearest loss |"));
    }
    s.push_str("\n|---|---|---|---|---|");
    s.push_str(&"---|".repeat(setup.bits.len()));
    s.push('\n');
    for model in &setup.models {
        for b in &setup.backends {
            let ids: Vec<&str> = t
                .runs
                .iter()
                .filter(|r| &r.model == model && &r.backend == b && r.method == Method::Fp)
                .map(|r| r.run_id.as_str())
                .collect();
            let train = mean(
                ids.iter()
                    .filter_map(|id| {
                        let (epochs, secs) = t
                            .train
                            .iter()
                            .filter(|r| r.run_id == *id)
                            .fold((0, 0.0), |(n, s), r| (n + 1, s + r.seconds));
                        (secs > 0.0).then(|| (setup.train_examples * epochs) as f64 / secs)
                    })
                    .collect(),
            );
            let infer = mean(
                t.timing
                    .iter()
                    .filter(|r| &r.model == model && &r.backend == b && r.precision == "fp32")
                    .map(|r| r.samples_per_s)
                    .collect(),
            );
            let loss = |bits: u32, method: Method| {
                summary
                    .iter()
                    .find(|r| &r.model == model && &r.backend == b && r.bits == bits && r.method == method)
                    .map(|r| format!("{:.4}", r.test_loss))
                    .unwrap_or_else(|| "-".into())
            };
            s.push_str(&format!("| {model} | {b} | {train:.0} | {infer:.0} | {} |", loss(32, Method::Fp)));
            for &bits in &setup.bits {
                s.push_str(&format!(" {} |", loss(bits, Method::Nearest)));
            }
            s.push('\n');
        }
    }
    s
}
