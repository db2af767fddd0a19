//! The forest plot of the primary claims: one row per claim and setting, the mean with its
//! 95% interval, coloured by the adjusted verdict, with an optional reference marker (the
//! effect FP32 with temperature scaling alone has), and the line of no effect.

use crate::ReportError;
use crate::plots::{DrawResult, both, bounds};
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;

/// One row of a forest plot.
#[derive(Debug, Clone)]
pub struct ForestRow {
    /// Row label (claim and setting).
    pub label: String,
    /// Mean effect.
    pub mean: f64,
    /// Interval, lower.
    pub lo: f64,
    /// Interval, upper.
    pub hi: f64,
    /// Adjusted verdict: picks the colour.
    pub verdict: String,
    /// A reference effect drawn beside the row (FP32 with temperature scaling), if any.
    pub reference: Option<f64>,
}

fn color(verdict: &str) -> RGBColor {
    match verdict {
        "reproduced" => RGBColor(44, 160, 44),
        "not reproduced" => RGBColor(214, 39, 40),
        _ => RGBColor(120, 120, 120),
    }
}

/// Pixel height of one row and the extra height of a panel (axis and margins).
const ROW: u32 = 24;
const PANEL: u32 = 58;

fn forest_on<DB: DrawingBackend>(root: DrawingArea<DB, Shift>, title: &str, xl: &str, rows: &[ForestRow]) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let mut rest = root.titled(title, ("sans-serif", 22))?;
    // One panel per claim (the label before ':'), each with its own x range: effects of one
    // claim are on another scale than those of the next.
    let mut groups: Vec<(&str, Vec<&ForestRow>)> = Vec::new();
    for r in rows {
        let g = r.label.split(':').next().unwrap_or("");
        match groups.last_mut() {
            Some((name, v)) if *name == g => v.push(r),
            _ => groups.push((g, vec![r])),
        }
    }
    let last = groups.len().saturating_sub(1);
    for (gi, (_, group)) in groups.iter().enumerate() {
        let h = PANEL + ROW * group.len() as u32;
        let (panel, below) = rest.split_vertically(h);
        rest = below;
        panel_on(&panel, if gi == last { xl } else { "" }, group, gi == 0)?;
    }
    root.present()?;
    Ok(())
}

fn panel_on<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    xl: &str,
    rows: &[&ForestRow],
    legend: bool,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let xs = rows.iter().flat_map(|r| [r.lo, r.hi, r.mean].into_iter().chain(r.reference)).chain([0.0]);
    let (x0, x1) = bounds(xs);
    let n = rows.len().max(1) as f64;
    // Row 0 at the top.
    let y = |i: usize| n - 1.0 - i as f64;
    let mut chart = ChartBuilder::on(area)
        .margin(6)
        .x_label_area_size(28)
        .y_label_area_size(360)
        .build_cartesian_2d(x0..x1, -0.5..n - 0.5)?;
    let labels: Vec<String> = rows.iter().map(|r| r.label.clone()).collect();
    let fmt = |v: &f64| {
        let i = n - 1.0 - v.round();
        if (v - v.round()).abs() > 1e-6 || i < 0.0 {
            String::new()
        } else {
            labels.get(i as usize).cloned().unwrap_or_default()
        }
    };
    chart
        .configure_mesh()
        .x_desc(xl)
        .y_labels(rows.len().max(1))
        .y_label_formatter(&fmt)
        .disable_y_mesh()
        .x_labels(6)
        .label_style(("sans-serif", 13))
        .draw()?;
    chart.draw_series(LineSeries::new([(0.0, -0.5), (0.0, n - 0.5)], BLACK.stroke_width(1)))?;
    for verdict in ["reproduced", "not reproduced", "inconclusive"] {
        let c = color(verdict);
        let mine: Vec<(usize, &&ForestRow)> = rows.iter().enumerate().filter(|(_, r)| r.verdict == verdict).collect();
        chart.draw_series(
            mine.iter().map(|(i, r)| PathElement::new(vec![(r.lo, y(*i)), (r.hi, y(*i))], c.stroke_width(2))),
        )?;
        let s = chart.draw_series(mine.iter().map(|(i, r)| Circle::new((r.mean, y(*i)), 5, c.filled())))?;
        if legend {
            s.label(format!("{verdict} (adjusted)")).legend(move |(x, y)| Circle::new((x + 8, y), 5, c.filled()));
        }
    }
    let c = RGBColor(31, 119, 180);
    let refs = rows.iter().enumerate().filter_map(|(i, r)| r.reference.map(|v| (y(i), v)));
    let s = chart.draw_series(refs.map(|(yy, v)| TriangleMarker::new((v, yy), 6, c.stroke_width(2))))?;
    if legend {
        s.label("FP32 + temperature alone").legend(move |(x, y)| TriangleMarker::new((x + 8, y), 5, c.stroke_width(2)));
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperRight)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()?;
    }
    Ok(())
}

/// Draws a forest plot as `stem.svg` and `stem.png`.
pub fn forest(stem: &Path, title: &str, xl: &str, rows: &[ForestRow]) -> Result<(), ReportError> {
    let mut groups: Vec<&str> = rows.iter().map(|r| r.label.split(':').next().unwrap_or("")).collect();
    groups.dedup();
    let h = 50 + ROW * rows.len() as u32 + PANEL * groups.len() as u32;
    both(stem, &|p, svg| {
        if svg {
            forest_on(SVGBackend::new(p, (1100, h)).into_drawing_area(), title, xl, rows)
        } else {
            forest_on(BitMapBackend::new(p, (1100, h)).into_drawing_area(), title, xl, rows)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forest_svg_names_rows_and_verdicts() {
        let dir = std::env::temp_dir().join(format!("mpq-forest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let row = |label: &str, verdict: &str, reference| ForestRow {
            label: label.into(),
            mean: -0.02,
            lo: -0.03,
            hi: -0.01,
            verdict: verdict.into(),
            reference,
        };
        let rows =
            [row("lower-loss: mlp 8-bit", "reproduced", Some(-0.04)), row("identity: 4-bit", "inconclusive", None)];
        forest(&dir.join("f"), "primary claims", "ΔL (nats)", &rows).unwrap();
        let svg = std::fs::read_to_string(dir.join("f.svg")).unwrap();
        for s in ["lower-loss: mlp 8-bit", "identity: 4-bit", "reproduced (adjusted)", "FP32 + temperature alone"] {
            assert!(svg.contains(s), "svg lacks {s}");
        }
        assert!(std::fs::metadata(dir.join("f.png")).unwrap().len() > 1000);
        let _ = std::fs::remove_dir_all(dir);
    }
}
