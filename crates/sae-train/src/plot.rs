//! Training curves drawn from `metrics.jsonl`, saved as SVG and PNG: one panel per quantity
//! (loss, FVU, L0, dead fraction), one line per SAE, against tokens.

use std::collections::BTreeMap;
use std::path::Path;

use plotters::prelude::*;
use sae_metrics::figure::{Figure, save_figure};

use crate::error::{Result, TrainError};

const PANELS: [&str; 4] = ["loss", "fvu", "l0", "dead_fraction"];

/// `series[panel][sae] = [(tokens, value)]`.
type Series<'a> = BTreeMap<&'a str, BTreeMap<String, Vec<(f64, f64)>>>;

fn err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Plot { path: path.to_path_buf(), reason: e.to_string() }
}

/// Reads `metrics` (JSON lines with `sae`, `tokens` and the panel keys) and writes `out` with
/// extensions `.svg` and `.png`.
pub fn plot_metrics(metrics: &Path, out: &Path) -> Result<Figure> {
    let text = std::fs::read_to_string(metrics).map_err(|e| err(metrics, e))?;
    let mut series = Series::new();
    for line in text.lines() {
        let Ok(v) = serde_json::from_str::<serde_json::Value>(line) else { continue };
        let (Some(sae), Some(tokens)) = (v["sae"].as_str(), v["tokens"].as_f64()) else { continue };
        for p in PANELS {
            if let Some(y) = v[p].as_f64().filter(|y| y.is_finite()) {
                series.entry(p).or_default().entry(sae.to_string()).or_default().push((tokens, y));
            }
        }
    }
    if series.is_empty() {
        return Err(err(metrics, "no metric lines to plot"));
    }
    let mut svg = String::new();
    draw(&series, &mut svg).map_err(|e| err(out, e))?;
    save_figure(&svg, out).map_err(|e| err(out, e))
}

/// Draws the panels into `svg`.
fn draw(series: &Series<'_>, svg: &mut String) -> std::result::Result<(), String> {
    let root = SVGBackend::with_string(svg, (1200, 800)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let areas = root.split_evenly((2, 2));
    for (area, panel) in areas.iter().zip(PANELS) {
        let Some(lines) = series.get(panel) else { continue };
        let pts = lines.values().flatten();
        let (x_max, y_min, y_max) = pts.fold((1f64, f64::INFINITY, f64::NEG_INFINITY), |(x, lo, hi), (t, y)| (x.max(*t), lo.min(*y), hi.max(*y)));
        // A flat series (L0 of TopK, no dead latents) gets a visible band around its value.
        let spread = y_max - y_min;
        let pad = if spread > 1e-12 * y_max.abs().max(1.0) { spread * 0.05 } else { (y_max.abs() * 0.05).max(0.05) };
        let mut chart = ChartBuilder::on(area)
            .caption(panel, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(60)
            .build_cartesian_2d(0f64..x_max, (y_min - pad)..(y_max + pad))
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc("tokens").draw().map_err(|e| e.to_string())?;
        for (i, (name, pts)) in lines.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            chart
                .draw_series(LineSeries::new(pts.iter().copied(), colour.stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name.as_str())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], colour));
        }
        chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).draw().map_err(|e| e.to_string())?;
    }
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}
