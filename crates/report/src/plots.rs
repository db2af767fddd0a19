//! Figures, each written as SVG and PNG with the embedded DejaVu Sans font (no system fonts).

use crate::ReportError;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::Path;
use std::sync::Once;

static FONT: Once = Once::new();

fn register_font() {
    FONT.call_once(|| {
        let _ =
            plotters::style::register_font("sans-serif", FontStyle::Normal, include_bytes!("../fonts/DejaVuSans.ttf"));
    });
}

/// One line of a line chart: points `(x, y, lo, hi)`; `lo == hi == y` draws no error bar.
#[derive(Debug, Clone)]
pub struct Series {
    /// Legend label.
    pub label: String,
    /// Points.
    pub points: Vec<(f64, f64, f64, f64)>,
}

/// A labelled marker on a strip chart.
#[derive(Debug, Clone)]
pub struct Marker {
    /// Legend label.
    pub label: String,
    /// Category index.
    pub cat: usize,
    /// Value.
    pub y: f64,
}

pub(crate) fn bounds(vals: impl Iterator<Item = f64>) -> (f64, f64) {
    let (lo, hi) =
        vals.filter(|v| v.is_finite()).fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| (a.min(v), b.max(v)));
    if !lo.is_finite() {
        return (0.0, 1.0);
    }
    let pad = ((hi - lo) * 0.08).max(1e-9);
    (lo - pad, hi + pad)
}

pub(crate) const COLORS: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

pub(crate) type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// The frame every chart shares: white background, title, margins and label areas.
fn frame<'a, 'b, DB: DrawingBackend>(
    root: &'a DrawingArea<DB, Shift>,
    title: &str,
) -> Result<ChartBuilder<'a, 'b, DB>, DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let mut b = ChartBuilder::on(root);
    b.caption(title, ("sans-serif", 22)).margin(12).x_label_area_size(40).y_label_area_size(70);
    Ok(b)
}

/// Draws the legend box every chart shares and writes the file.
pub(crate) fn finish<'a, DB: DrawingBackend + 'a, CT: CoordTranslate>(
    chart: &mut ChartContext<'a, DB, CT>,
    root: &DrawingArea<DB, Shift>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 14))
        .draw()?;
    root.present()?;
    Ok(())
}

fn lines_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    xl: &str,
    yl: &str,
    series: &[Series],
    hline: Option<(&str, f64)>,
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let (x0, x1) = bounds(series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let ys = series.iter().flat_map(|s| s.points.iter().flat_map(|p| [p.1, p.2, p.3])).chain(hline.map(|h| h.1));
    let (y0, y1) = bounds(ys);
    let mut chart = frame(&root, title)?.build_cartesian_2d(x0..x1, y0..y1)?;
    chart.configure_mesh().x_desc(xl).y_desc(yl).label_style(("sans-serif", 14)).draw()?;
    for (i, s) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(s.points.iter().map(|p| (p.0, p.1)), c.stroke_width(2)))?
            .label(s.label.clone())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2)));
        chart.draw_series(s.points.iter().map(|p| Circle::new((p.0, p.1), 3, c.filled())))?;
        chart.draw_series(
            s.points
                .iter()
                .filter(|p| p.3 > p.2)
                .map(|p| PathElement::new(vec![(p.0, p.2), (p.0, p.3)], c.stroke_width(1))),
        )?;
    }
    if let Some((label, y)) = hline {
        chart
            .draw_series(LineSeries::new([(x0, y), (x1, y)], BLACK.stroke_width(1)))?
            .label(label.to_string())
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    }
    finish(&mut chart, &root)
}

fn strip_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    cats: &[String],
    yl: &str,
    points: &[(usize, f64)],
    markers: &[Marker],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    root.fill(&WHITE)?;
    let root = root.titled(title, ("sans-serif", 22))?;
    let mut labels: Vec<&str> = markers.iter().map(|m| m.label.as_str()).collect();
    labels.sort();
    labels.dedup();
    let panels = root.split_evenly((1, cats.len().max(1)));
    let jitter = |i: usize| ((i * 7919) % 101) as f64 / 101.0 * 0.5 - 0.45;
    for (k, (panel, cat)) in panels.iter().zip(cats).enumerate() {
        // Each width gets its own y range: ΔL at 4 bits is orders larger than at 8.
        let mine = points.iter().filter(|p| p.0 == k).map(|p| p.1);
        let (y0, y1) = bounds(mine.chain(markers.iter().filter(|m| m.cat == k).map(|m| m.y)));
        let mut chart = ChartBuilder::on(panel)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(if k == 0 { 70 } else { 55 })
            .build_cartesian_2d(-0.5..0.5 + 0.1 * labels.len() as f64, y0..y1)?;
        let name = cat.clone();
        let fmt = |_: &f64| name.clone();
        let mut mesh = chart.configure_mesh();
        mesh.x_labels(1).x_label_formatter(&fmt).disable_x_mesh().label_style(("sans-serif", 13));
        if k == 0 {
            mesh.y_desc(yl);
        }
        mesh.draw()?;
        let grey = RGBColor(150, 150, 150);
        let dots = points.iter().enumerate().filter(|(_, p)| p.0 == k);
        let s = chart.draw_series(dots.map(|(i, p)| Circle::new((jitter(i), p.1), 2, grey.filled())))?;
        if k == 0 {
            s.label("all rounding configs").legend(move |(x, y)| Circle::new((x + 8, y), 3, grey.filled()));
        }
        // Markers side by side, one column per label, so none hides another.
        for (li, label) in labels.iter().enumerate() {
            let c = COLORS[li % COLORS.len()];
            let x = 0.15 + 0.1 * li as f64;
            let ms = markers.iter().filter(|m| m.cat == k && m.label == *label);
            let s = chart.draw_series(ms.map(|m| Cross::new((x, m.y), 6, c.stroke_width(2))))?;
            if k == 0 {
                s.label(label.to_string()).legend(move |(x, y)| Cross::new((x + 8, y), 5, c.stroke_width(2)));
            }
        }
        if k == 0 {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperLeft)
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .label_font(("sans-serif", 12))
                .draw()?;
        }
    }
    root.present()?;
    Ok(())
}

pub(crate) fn both(stem: &Path, draw: &dyn Fn(&Path, bool) -> DrawResult) -> Result<(), ReportError> {
    register_font();
    for svg in [true, false] {
        let path = stem.with_extension(if svg { "svg" } else { "png" });
        crate::write_whole(&path, |tmp| {
            draw(tmp, svg).map_err(|e| ReportError::Plot { file: path.display().to_string(), reason: e.to_string() })
        })?;
    }
    Ok(())
}

/// A line chart with optional error bars and a horizontal reference line, as `stem.svg` and `stem.png`.
pub fn line_chart(
    stem: &Path,
    title: &str,
    xl: &str,
    yl: &str,
    series: &[Series],
    hline: Option<(&str, f64)>,
) -> Result<(), ReportError> {
    both(stem, &|p, svg| {
        if svg {
            lines_on(SVGBackend::new(p, (900, 560)).into_drawing_area(), title, xl, yl, series, hline)
        } else {
            lines_on(BitMapBackend::new(p, (900, 560)).into_drawing_area(), title, xl, yl, series, hline)
        }
    })
}

/// A strip chart of values per category with labelled markers, one panel per category with
/// its own y range, as `stem.svg` and `stem.png`.
pub fn strip_chart(
    stem: &Path,
    title: &str,
    cats: &[String],
    yl: &str,
    points: &[(usize, f64)],
    markers: &[Marker],
) -> Result<(), ReportError> {
    both(stem, &|p, svg| {
        if svg {
            strip_on(SVGBackend::new(p, (1100, 560)).into_drawing_area(), title, cats, yl, points, markers)
        } else {
            strip_on(BitMapBackend::new(p, (1100, 560)).into_drawing_area(), title, cats, yl, points, markers)
        }
    })
}

/// A scatter plot (one series per label) with the y = x diagonal, as `stem.svg` and `stem.png`.
pub fn scatter(stem: &Path, title: &str, xl: &str, yl: &str, series: &[Series]) -> Result<(), ReportError> {
    let lines: Vec<Series> = series.to_vec();
    both(stem, &|p, svg| {
        let draw = |root: DrawingArea<_, Shift>| -> DrawResult { scatter_on(root, title, xl, yl, &lines) };
        if svg {
            draw(SVGBackend::new(p, (760, 620)).into_drawing_area())
        } else {
            scatter_on(BitMapBackend::new(p, (760, 620)).into_drawing_area(), title, xl, yl, &lines)
        }
    })
}

fn scatter_on<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    title: &str,
    xl: &str,
    yl: &str,
    series: &[Series],
) -> DrawResult
where
    DB::ErrorType: 'static,
{
    let all = || series.iter().flat_map(|s| s.points.iter().flat_map(|p| [p.0, p.1]));
    let (lo, hi) = bounds(all());
    let mut chart = frame(&root, title)?.build_cartesian_2d(lo..hi, lo..hi)?;
    chart.configure_mesh().x_desc(xl).y_desc(yl).label_style(("sans-serif", 14)).draw()?;
    chart
        .draw_series(LineSeries::new([(lo, lo), (hi, hi)], BLACK.stroke_width(1)))?
        .label("y = x")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK));
    for (i, s) in series.iter().enumerate() {
        let c = COLORS[i % COLORS.len()];
        chart
            .draw_series(s.points.iter().map(|p| Circle::new((p.0, p.1), 2, c.filled())))?
            .label(s.label.clone())
            .legend(move |(x, y)| Circle::new((x + 8, y), 3, c.filled()));
    }
    finish(&mut chart, &root)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svg_contains_labels_and_png_is_written() {
        let dir = std::env::temp_dir().join(format!("mpq-plot-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let s = vec![Series { label: "exhaustive".into(), points: vec![(4.0, 0.1, 0.05, 0.2), (8.0, 0.0, 0.0, 0.0)] }];
        line_chart(&dir.join("l"), "test loss", "bits", "loss (nats)", &s, Some(("FP32", 0.05))).unwrap();
        let svg = std::fs::read_to_string(dir.join("l.svg")).unwrap();
        assert!(svg.contains("exhaustive") && svg.contains("FP32") && svg.contains("bits"));
        assert!(std::fs::metadata(dir.join("l.png")).unwrap().len() > 1000);
        let m = vec![Marker { label: "all-nearest".into(), cat: 0, y: 0.1 }];
        strip_chart(&dir.join("s"), "t", &["8 bits".into()], "ΔL", &[(0, 0.1), (0, 0.2)], &m).unwrap();
        let svg = std::fs::read_to_string(dir.join("s.svg")).unwrap();
        assert!(svg.contains("all-nearest") && svg.contains("8 bits"));
        scatter(&dir.join("c"), "t", "pred", "meas", &s).unwrap();
        assert!(std::fs::read_to_string(dir.join("c.svg")).unwrap().contains("y = x"));
        let _ = std::fs::remove_dir_all(dir);
    }
}
