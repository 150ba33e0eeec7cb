//! The feature-density histogram: how many latents fire at each log₁₀ frequency, saved as SVG
//! and PNG (dead latents, which have no logarithm, are counted in the title).

use std::path::Path;

use plotters::prelude::*;

pub use crate::figure::PlotError;
use crate::figure::{Figure, save_figure};

/// Draws the histogram of log₁₀(firing frequency) of the latents in `density` to `out` with
/// extensions `.svg` and `.png` (any extension `out` has is replaced).
pub fn density_histogram(density: &[f64], title: &str, out: &Path) -> Result<Figure, PlotError> {
    let svg = density_histogram_svg(density, title).map_err(|e| PlotError::new(out, e))?;
    save_figure(&svg, out)
}

/// The histogram as an SVG document.
fn density_histogram_svg(density: &[f64], title: &str) -> Result<String, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let logs: Vec<f64> = density.iter().filter(|d| **d > 0.0).map(|d| d.log10()).collect();
    let dead = density.len() - logs.len();
    const BINS: usize = 40;
    let (lo, hi) = (-7.0f64, 0.0f64);
    let width = (hi - lo) / BINS as f64;
    let mut counts = vec![0u32; BINS];
    for l in &logs {
        let b = (((l.clamp(lo, hi - 1e-9)) - lo) / width) as usize;
        counts[b.min(BINS - 1)] += 1;
    }
    let top = counts.iter().copied().max().unwrap_or(1).max(1);
    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let caption = format!("{title}: feature density ({} latents, {dead} dead)", density.len());
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(lo..hi, 0u32..top + top / 10 + 1)
        .map_err(|e| err(&e))?;
    chart.configure_mesh().x_desc("log10(firing frequency)").y_desc("latents").draw().map_err(|e| err(&e))?;
    chart
        .draw_series(counts.iter().enumerate().map(|(i, c)| {
            let x0 = lo + i as f64 * width;
            Rectangle::new([(x0, 0), (x0 + width, *c)], BLUE.mix(0.6).filled())
        }))
        .map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    drop(chart);
    drop(root);
    Ok(svg)
}
