//! Line panels: one panel per quantity, one line per series (e.g. one per SAE), against a shared
//! x axis (tokens), laid out in a grid of two columns.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;

use crate::figure::{Figure, PlotError, save_figure};

/// One panel: a title and named series of `(x, y)` points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Panel {
    /// The panel's caption.
    pub title: String,
    /// `series[name] = [(x, y)]`, in the order the points were added.
    pub series: BTreeMap<String, Vec<(f64, f64)>>,
}

impl Panel {
    /// An empty panel titled `title`.
    pub fn new(title: impl Into<String>) -> Self {
        Self { title: title.into(), series: BTreeMap::new() }
    }

    /// Adds the point `(x, y)` to the series `name`; a non-finite point is left out.
    pub fn push(&mut self, name: &str, x: f64, y: f64) {
        if x.is_finite() && y.is_finite() {
            self.series.entry(name.to_string()).or_default().push((x, y));
        }
    }

    /// Whether the panel has no point.
    pub fn is_empty(&self) -> bool {
        self.series.values().all(Vec::is_empty)
    }
}

/// Draws `panels` (two per row) of `size` pixels into an SVG document, x axis labelled `x_desc`.
pub fn panels_svg(panels: &[Panel], size: (u32, u32), x_desc: &str) -> Result<String, String> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        let rows = panels.len().div_ceil(2).max(1);
        let areas = root.split_evenly((rows, 2));
        for (area, panel) in areas.iter().zip(panels) {
            draw_panel(area, panel, x_desc)?;
        }
        root.present().map_err(|e| e.to_string())?;
    }
    Ok(svg)
}

/// Draws `panels` as [`panels_svg`] does (1200 × 800) and saves them as `out` `.svg` and `.png`.
pub fn save_panels(panels: &[Panel], x_desc: &str, out: &Path) -> Result<Figure, PlotError> {
    if panels.iter().all(Panel::is_empty) {
        return Err(PlotError::new(out, "no points to plot"));
    }
    let svg = panels_svg(panels, (1200, 800), x_desc).map_err(|e| PlotError::new(out, e))?;
    save_figure(&svg, out)
}

fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, plotters::coord::Shift>, panel: &Panel, x_desc: &str) -> Result<(), String> {
    if panel.is_empty() {
        return Ok(());
    }
    let pts = panel.series.values().flatten();
    let (x_max, y_min, y_max) = pts.fold((1f64, f64::INFINITY, f64::NEG_INFINITY), |(x, lo, hi), (t, y)| (x.max(*t), lo.min(*y), hi.max(*y)));
    // A flat series (L0 of TopK, no dead latents) gets a visible band around its value.
    let spread = y_max - y_min;
    let pad = if spread > 1e-12 * y_max.abs().max(1.0) { spread * 0.05 } else { (y_max.abs() * 0.05).max(0.05) };
    let mut chart = ChartBuilder::on(area)
        .caption(&panel.title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(0f64..x_max, (y_min - pad)..(y_max + pad))
        .map_err(|e| e.to_string())?;
    chart.configure_mesh().x_desc(x_desc).draw().map_err(|e| e.to_string())?;
    for (i, (name, pts)) in panel.series.iter().enumerate() {
        let colour = Palette99::pick(i).to_rgba();
        chart
            .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
    }
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(|e| e.to_string())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_points_are_left_out_and_empty_panels_drawn_blank() {
        let mut p = Panel::new("l0");
        p.push("a", 1.0, f64::NAN);
        assert!(p.is_empty());
        p.push("a", 1.0, 3.0);
        p.push("a", 2.0, 3.0);
        let svg = panels_svg(&[p, Panel::new("empty")], (400, 300), "tokens").unwrap();
        assert!(svg.contains("l0") && !svg.contains(">empty<"), "{svg:.300}");
    }
}
