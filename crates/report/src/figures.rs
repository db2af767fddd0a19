//! The report's figures, one function per figure: each shapes its data from the result
//! tables and draws it with [`crate::plots`]. Each returns the file stem and title it wrote
//! (for the report), or `None` when the tables hold nothing to draw.

use crate::plots::{Marker, Series, line_chart, scatter, strip_chart};
use crate::stats::t_test;
use crate::{ConfigRow, Method, ReportError, RunRow, Tables};
use std::collections::BTreeSet;
use std::path::Path;

/// Uniform-width methods plotted against bit width.
const METHODS: [Method; 7] = [
    Method::Nearest,
    Method::Floor,
    Method::Ceil,
    Method::RandomBest,
    Method::Exhaustive,
    Method::Greedy,
    Method::Taylor,
];

/// A figure written: file stem and title.
pub type Figure = (String, String);

type Drawn = Result<Option<Figure>, ReportError>;

/// Draws every figure into `dir`; returns the stems and titles written, in report order.
/// `identity_pairs` names each residual model with its plain twin.
pub fn draw_all(t: &Tables, dir: &Path, identity_pairs: &[(String, String)]) -> Result<Vec<Figure>, ReportError> {
    std::fs::create_dir_all(dir).map_err(|source| ReportError::Io { file: dir.display().to_string(), source })?;
    let mut made = Vec::new();
    let models: BTreeSet<String> = t.runs.iter().map(|r| r.model.clone()).collect();
    for model in &models {
        let rows: Vec<&RunRow> = t.runs.iter().filter(|r| &r.model == model).collect();
        let cfg: Vec<&ConfigRow> = t.configs.iter().filter(|c| &c.model == model).collect();
        made.extend(loss_vs_bits(dir, model, &rows)?);
        made.extend(delta_configs(dir, model, &rows, &cfg)?);
        made.extend(taylor(dir, model, &cfg)?);
        made.extend(pareto(dir, model, &rows)?);
        made.extend(sensitivity(dir, model, t)?);
    }
    made.extend(throughput(dir, t)?);
    for (res, plain) in identity_pairs.iter().filter(|(r, _)| models.contains(r)) {
        made.extend(identity(dir, res, plain, &t.configs)?);
    }
    Ok(made)
}

fn fp_mean(rows: &[&RunRow]) -> f64 {
    let fp: Vec<f64> = rows.iter().filter(|r| r.method == Method::Fp).map(|r| r.test_loss).collect();
    fp.iter().sum::<f64>() / fp.len().max(1) as f64
}

/// Test loss by bit width per method (log scale, 95% interval over seeds).
fn loss_vs_bits(dir: &Path, model: &str, rows: &[&RunRow]) -> Drawn {
    // Uniform-width methods only: mixed-precision rows carry budgets in `bits`.
    let bits: BTreeSet<u32> = rows.iter().filter(|r| METHODS.contains(&r.method)).map(|r| r.bits).collect();
    let mut series = Vec::new();
    for &m in METHODS.iter().chain([Method::FpTemp].iter()) {
        let mut pts = Vec::new();
        for &b in &bits {
            let v: Vec<f64> = rows
                .iter()
                .filter(|r| r.method == m && (r.bits == b || (m == Method::FpTemp && r.bits == 32)))
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
    let (xl, yl) = ("bit width (weights and inputs)", "log10 of test cross-entropy (nats)");
    line_chart(&dir.join(&stem), &title, xl, yl, &series, Some(("FP32", fp_mean(rows).log10())))?;
    Ok(Some((stem, title)))
}

/// Bit widths of the exhaustive configs, widest first.
fn config_bits(cfg: &[&ConfigRow]) -> Vec<u32> {
    cfg.iter().map(|c| c.bits).collect::<BTreeSet<_>>().into_iter().rev().collect()
}

/// Test ΔL of every rounding config, one panel per width, with the baselines marked.
fn delta_configs(dir: &Path, model: &str, rows: &[&RunRow], cfg: &[&ConfigRow]) -> Drawn {
    if cfg.is_empty() {
        return Ok(None);
    }
    let bits = config_bits(cfg);
    let cats: Vec<String> = bits.iter().map(|b| format!("{b}-bit")).collect();
    let cat = |b: u32| bits.iter().position(|&x| x == b).unwrap_or(0);
    let points: Vec<(usize, f64)> = cfg.iter().map(|c| (cat(c.bits), c.delta_test)).collect();
    let mut markers = Vec::new();
    for r in rows.iter().filter(|r| r.bits < 32) {
        let label = match r.method {
            Method::Nearest => "all-nearest",
            Method::Exhaustive => "searched (exhaustive)",
            Method::RandomBest => "best-of-N random",
            _ => continue,
        };
        markers.push(Marker { label: label.into(), cat: cat(r.bits), y: r.delta_test_loss });
    }
    markers.extend(bits.iter().map(|&b| Marker { label: "FP32 (ΔL = 0)".into(), cat: cat(b), y: 0.0 }));
    let stem = format!("delta_configs_{model}");
    let title = format!("{model}: test ΔL of every rounding config");
    strip_chart(&dir.join(&stem), &title, &cats, "test ΔL vs FP32 (nats)", &points, &markers)?;
    Ok(Some((stem, title)))
}

/// Taylor-predicted against measured calibration ΔL of every config.
fn taylor(dir: &Path, model: &str, cfg: &[&ConfigRow]) -> Drawn {
    if cfg.is_empty() {
        return Ok(None);
    }
    let series: Vec<Series> = config_bits(cfg)
        .iter()
        .map(|&b| Series {
            label: format!("{b}-bit"),
            points: cfg.iter().filter(|c| c.bits == b).map(|c| (c.taylor_pred, c.delta_calib, 0.0, 0.0)).collect(),
        })
        .collect();
    let stem = format!("taylor_{model}");
    let title = format!("{model}: Taylor-predicted vs measured ΔL (calibration)");
    scatter(&dir.join(&stem), &title, "predicted ΔL (nats)", "measured ΔL (nats)", &series)?;
    Ok(Some((stem, title)))
}

/// Storage against test loss of the mixed-precision allocations under each budget.
fn pareto(dir: &Path, model: &str, rows: &[&RunRow]) -> Drawn {
    let mixed: Vec<&&RunRow> = rows.iter().filter(|r| r.method.is_mixed()).collect();
    if mixed.is_empty() {
        return Ok(None);
    }
    let mut series = Vec::new();
    for m in [Method::MixedDp, Method::MixedDpGreedy, Method::MixedHawq, Method::MixedUniform, Method::MixedSearch] {
        let budgets: BTreeSet<u32> = mixed.iter().filter(|r| r.method == m).map(|r| r.bits).collect();
        if budgets.is_empty() {
            continue;
        }
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
    let (xl, yl) = ("weight storage (KiB)", "test cross-entropy (nats)");
    line_chart(&dir.join(&stem), &title, xl, yl, &series, Some(("FP32", fp_mean(rows))))?;
    Ok(Some((stem, title)))
}

/// Test ΔL of quantizing one layer's input or weight alone, per layer.
fn sensitivity(dir: &Path, model: &str, t: &Tables) -> Drawn {
    let sens: Vec<_> = t.sensitivity.iter().filter(|s| s.model == model).collect();
    if sens.is_empty() {
        return Ok(None);
    }
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
    let (xl, yl) = ("layer (forward order, 1-based)", "test ΔL (nats)");
    line_chart(&dir.join(&stem), &title, xl, yl, &series, Some(("FP32", 0.0)))?;
    Ok(Some((stem, title)))
}

/// Inference throughput per model and backend by bit width.
fn throughput(dir: &Path, t: &Tables) -> Drawn {
    if t.timing.is_empty() {
        return Ok(None);
    }
    let mut keys: Vec<(String, String)> = t.timing.iter().map(|r| (r.model.clone(), r.backend.clone())).collect();
    keys.sort();
    keys.dedup();
    let series: Vec<Series> = keys
        .iter()
        .map(|(m, b)| {
            let rows = || t.timing.iter().filter(|r| &r.model == m && &r.backend == b);
            let bits: BTreeSet<u32> = rows().map(|r| r.bits).collect();
            let points = bits
                .into_iter()
                .map(|bits| {
                    let v: Vec<f64> = rows().filter(|r| r.bits == bits).map(|r| r.samples_per_s / 1000.0).collect();
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
    Ok(Some((stem, title)))
}

/// Test ΔL over all rounding configs of a residual model beside its plain twin.
fn identity(dir: &Path, res: &str, plain: &str, configs: &[ConfigRow]) -> Drawn {
    let (mut cats, mut points) = (Vec::new(), Vec::new());
    let bits: Vec<u32> =
        configs.iter().filter(|c| c.model == res).map(|c| c.bits).collect::<BTreeSet<_>>().into_iter().rev().collect();
    for b in bits {
        for m in [res, plain] {
            let i = cats.len();
            cats.push(format!("{} {b}b", m.split('-').next().unwrap_or(m)));
            points.extend(configs.iter().filter(|c| c.model == m && c.bits == b).map(|c| (i, c.delta_test)));
        }
    }
    if points.is_empty() {
        // No exhaustive configs scored on the test split (deep networks, or
        // `configs_on_test = false`): nothing to draw.
        return Ok(None);
    }
    let stem = format!("identity_{res}");
    let title = format!("{res} vs {plain}: test ΔL over all rounding configs");
    strip_chart(&dir.join(&stem), &title, &cats, "test ΔL vs FP32 (nats)", &points, &[])?;
    Ok(Some((stem, title)))
}
