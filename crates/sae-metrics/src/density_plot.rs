//! The feature-density histogram: how many latents fire at each log₁₀ frequency, drawn as an
//! SVG (dead latents, which have no logarithm, are counted in the title).

use std::path::Path;

use plotters::prelude::*;

/// Why a plot could not be drawn.
#[derive(Debug, thiserror::Error)]
#[error("drawing {path}: {reason}")]
pub struct PlotError {
    /// The output file.
    pub path: std::path::PathBuf,
    /// What failed.
    pub reason: String,
}

/// Draws the histogram of log₁₀(firing frequency) of the latents in `density` to `out`.
pub fn density_histogram(density: &[f64], title: &str, out: &Path) -> Result<(), PlotError> {
    let err = |e: &dyn std::fmt::Display| PlotError { path: out.to_path_buf(), reason: e.to_string() };
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
    let root = SVGBackend::new(out, (900, 500)).into_drawing_area();
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
    Ok(())
}
