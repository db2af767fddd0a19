//! Builds the figures from result tables (wiring only; drawing lives in `mpq_report::plots`).

use crate::output::Tables;
use anyhow::Result;
use mpq_quant::significance::t_test;
use mpq_report::plots::{Marker, Series, line_chart, scatter, strip_chart};
use std::collections::BTreeSet;
use std::path::Path;

const METHODS: [&str; 7] = ["nearest", "floor", "ceil", "random-best", "exhaustive", "greedy", "taylor"];

/// Draws every figure into `dir`; returns the file stems written (for the report).
pub fn draw_all(t: &Tables, dir: &Path, _seed: u64) -> Result<Vec<(String, String)>> {
    std::fs::create_dir_all(dir)?;
    let mut made = Vec::new();
    let models: BTreeSet<String> = t.runs.iter().map(|r| r.model.clone()).collect();
    for model in &models {
        let rows: Vec<_> = t.runs.iter().filter(|r| &r.model == model).collect();
        let fp: Vec<f64> = rows.iter().filter(|r| r.method == "fp").map(|r| r.test_loss).collect();
        let fp_mean = fp.iter().sum::<f64>() / fp.len().max(1) as f64;
        // Uniform-width methods only: mixed-precision rows carry budgets in `bits`.
        let bits: BTreeSet<u32> =
            rows.iter().filter(|r| METHODS.contains(&r.method.as_str())).map(|r| r.bits).collect();
        let mut series = Vec::new();
        for m in METHODS.iter().chain(["fp-temp"].iter()) {
            let mut pts = Vec::new();
            for &b in &bits {
                let v: Vec<f64> = rows
                    .iter()
                    .filter(|r| r.method == *m && (r.bits == b || (*m == "fp-temp" && r.bits == 32)))
                    .map(|r| r.test_loss)
                    .collect();
                if !v.is_empty() {
                    // Plotted on a log10 axis: all-floor/all-ceil at low bits are orders of magnitude off.
                    let c = t_test(&v, 0.0, 0.95);
                    pts.push((b as f64, c.mean.log10(), c.lo.max(1e-12).log10(), c.hi.max(1e-12).log10()));
                }
            }
            if !pts.is_empty() {
                series.push(Series { label: m.to_string(), points: pts });
            }
        }
        let stem = format!("loss_vs_bits_{model}");
        let title = format!("{model}: test loss by bit width (mean, 95% CI over seeds)");
        let yl = "log10 of test cross-entropy (nats)";
        line_chart(
            &dir.join(&stem),
            &title,
            "bit width (weights and inputs)",
            yl,
            &series,
            Some(("FP32", fp_mean.log10())),
        )?;
        made.push((stem, title));

        let cfg: Vec<_> = t.configs.iter().filter(|c| &c.model == model).collect();
        if !cfg.is_empty() {
            let bits: Vec<u32> = cfg.iter().map(|c| c.bits).collect::<BTreeSet<_>>().into_iter().rev().collect();
            let cats: Vec<String> = bits.iter().map(|b| format!("{b}-bit")).collect();
            let cat = |b: u32| bits.iter().position(|&x| x == b).unwrap_or(0);
            let points: Vec<(usize, f64)> = cfg.iter().map(|c| (cat(c.bits), c.delta_test)).collect();
            let mut markers = Vec::new();
            for r in rows
                .iter()
                .filter(|r| r.bits < 32 && ["nearest", "exhaustive", "random-best"].contains(&r.method.as_str()))
            {
                let label = match r.method.as_str() {
                    "nearest" => "all-nearest",
                    "exhaustive" => "searched (exhaustive)",
                    _ => "best-of-N random",
                };
                markers.push(Marker { label: label.into(), cat: cat(r.bits), y: r.delta_test_loss });
            }
            markers.extend(bits.iter().map(|&b| Marker { label: "FP32 (ΔL = 0)".into(), cat: cat(b), y: 0.0 }));
            let stem = format!("delta_configs_{model}");
            let title = format!("{model}: test ΔL of every rounding config");
            strip_chart(&dir.join(&stem), &title, &cats, "test ΔL vs FP32 (nats)", &points, &markers)?;
            made.push((stem, title));

            let series: Vec<Series> = bits
                .iter()
                .map(|&b| Series {
                    label: format!("{b}-bit"),
                    points: cfg
                        .iter()
                        .filter(|c| c.bits == b)
                        .map(|c| (c.taylor_pred, c.delta_calib, 0.0, 0.0))
                        .collect(),
                })
                .collect();
            let stem = format!("taylor_{model}");
            let title = format!("{model}: Taylor-predicted vs measured ΔL (calibration)");
            scatter(&dir.join(&stem), &title, "predicted ΔL (nats)", "measured ΔL (nats)", &series)?;
            made.push((stem, title));
        }

        let mixed: Vec<_> = rows.iter().filter(|r| r.method.starts_with("mixed-")).collect();
        if !mixed.is_empty() {
            let mut series = Vec::new();
            for m in ["mixed-dp", "mixed-dp-greedy", "mixed-hawq", "mixed-uniform"] {
                let budgets: BTreeSet<u32> = mixed.iter().filter(|r| r.method == m).map(|r| r.bits).collect();
                let pts = budgets
                    .iter()
                    .map(|&b| {
                        let sel: Vec<_> = mixed.iter().filter(|r| r.method == m && r.bits == b).collect();
                        let kb = sel.iter().map(|r| r.model_bytes / 1024.0).sum::<f64>() / sel.len().max(1) as f64;
                        let c = t_test(&sel.iter().map(|r| r.test_loss).collect::<Vec<_>>(), 0.0, 0.95);
                        (kb, c.mean, c.lo, c.hi)
                    })
                    .collect();
                series.push(Series { label: m.to_string(), points: pts });
            }
            let stem = format!("pareto_{model}");
            let title = format!("{model}: storage vs test loss under bit budgets");
            line_chart(
                &dir.join(&stem),
                &title,
                "weight storage (KiB)",
                "test cross-entropy (nats)",
                &series,
                Some(("FP32", fp_mean)),
            )?;
            made.push((stem, title));
        }

        let sens: Vec<_> = t.sensitivity.iter().filter(|s| &s.model == model).collect();
        if !sens.is_empty() {
            let bits: BTreeSet<u32> = sens.iter().map(|s| s.bits).collect();
            let layers = sens.iter().map(|s| s.layer).max().unwrap_or(0) + 1;
            let mut series = Vec::new();
            for b in bits {
                for (what, input) in [("input", true), ("weight", false)] {
                    let pts = (0..layers)
                        .map(|k| {
                            let v: Vec<f64> = sens
                                .iter()
                                .filter(|s| s.bits == b && s.layer == k)
                                .map(|s| if input { s.delta_input } else { s.delta_weight })
                                .collect();
                            let m = v.iter().sum::<f64>() / v.len().max(1) as f64;
                            ((k + 1) as f64, m, m, m)
                        })
                        .collect();
                    series.push(Series { label: format!("{what} only, {b}-bit"), points: pts });
                }
            }
            let stem = format!("sensitivity_{model}");
            let title = format!("{model}: test ΔL quantizing one layer's input or weight");
            line_chart(
                &dir.join(&stem),
                &title,
                "layer (forward order, 1-based)",
                "test ΔL (nats)",
                &series,
                Some(("FP32", 0.0)),
            )?;
            made.push((stem, title));
        }
    }
    if !t.timing.is_empty() {
        let mut keys: Vec<(String, String)> = t.timing.iter().map(|r| (r.model.clone(), r.backend.clone())).collect();
        keys.sort();
        keys.dedup();
        let series: Vec<Series> = keys
            .iter()
            .map(|(m, b)| {
                let bits: BTreeSet<u32> =
                    t.timing.iter().filter(|r| &r.model == m && &r.backend == b).map(|r| r.bits).collect();
                let points = bits
                    .into_iter()
                    .map(|bits| {
                        let v: Vec<f64> = t
                            .timing
                            .iter()
                            .filter(|r| &r.model == m && &r.backend == b && r.bits == bits)
                            .map(|r| r.samples_per_s / 1000.0)
                            .collect();
                        let c = t_test(&v, 0.0, 0.95);
                        (bits as f64, c.mean, c.lo, c.hi)
                    })
                    .collect();
                Series { label: format!("{m} on {b}"), points }
            })
            .collect();
        let stem = "throughput".to_string();
        let title =
            "Inference throughput (32 = FP32; engine-*: integer engine; others: simulated quantization)".to_string();
        line_chart(&dir.join(&stem), &title, "bit width", "thousand test examples per second", &series, None)?;
        made.push((stem, title));
    }
    let pairs: Vec<&String> = models.iter().filter(|m| m.starts_with("resmlp-")).collect();
    for res in pairs {
        let plain = res.replacen("resmlp-", "plainmlp-", 1);
        let mut cats = Vec::new();
        let mut points = Vec::new();
        let bits: Vec<u32> = t
            .configs
            .iter()
            .filter(|c| &c.model == res)
            .map(|c| c.bits)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .rev()
            .collect();
        for b in bits {
            for m in [res.as_str(), plain.as_str()] {
                let i = cats.len();
                cats.push(format!("{} {b}b", m.split('-').next().unwrap_or(m)));
                points.extend(t.configs.iter().filter(|c| c.model == m && c.bits == b).map(|c| (i, c.delta_test)));
            }
        }
        let stem = format!("identity_{res}");
        let title = format!("{res} vs {plain}: test ΔL over all rounding configs");
        strip_chart(&dir.join(&stem), &title, &cats, "test ΔL vs FP32 (nats)", &points, &[])?;
        made.push((stem, title));
    }
    Ok(made)
}
