//! Training curves drawn from `metrics.jsonl`, saved as SVG and PNG: one panel per
//! [`Curve`] (loss, FVU, L0, dead fraction), one line per SAE, against tokens.

use std::path::Path;

use sae_plot::curves::{Panel, save_panels};
use sae_plot::figure::Figure;

use crate::error::{Result, TrainError};
use crate::metrics::{Curve, StepMetrics};

fn err(path: &Path, e: impl std::fmt::Display) -> TrainError {
    TrainError::Plot { path: path.to_path_buf(), reason: e.to_string() }
}

/// The panels of the [`StepMetrics`] lines in `text` (other lines are skipped).
pub fn curves(text: &str) -> Vec<Panel> {
    let mut panels: Vec<Panel> = Curve::ALL.iter().map(|c| Panel::new(c.name())).collect();
    for m in text.lines().filter_map(StepMetrics::from_json_line) {
        for (panel, curve) in panels.iter_mut().zip(Curve::ALL) {
            panel.push(&m.sae, m.tokens as f64, curve.value(&m));
        }
    }
    panels
}

/// Reads `metrics` ([`StepMetrics`] JSON lines) and writes `out` with extensions `.svg` and
/// `.png`; a log without a metrics line is an error.
pub fn plot_metrics(metrics: &Path, out: &Path) -> Result<Figure> {
    let text = std::fs::read_to_string(metrics).map_err(|e| err(metrics, e))?;
    let panels = curves(&text);
    if panels.iter().all(Panel::is_empty) {
        return Err(err(metrics, "no metric lines to plot"));
    }
    save_panels(&panels, "tokens", out).map_err(|e| err(out, e))
}
