//! # sae-plot
//!
//! The figures of the workspace, each drawn once with plotters into an SVG string and saved as
//! SVG and PNG ([`figure`]): line panels such as training curves ([`curves`]) the
//! feature-density histogram ([`density`]) and the matched-cosine histogram of a stability
//! comparison ([`matching`]). Callers hand over numbers, not files of their own
//! format: the trainer turns its metrics log into [`curves::Panel`]s.
//!
//! ```
//! use sae_plot::curves::{Panel, panels_svg};
//!
//! let mut loss = Panel::new("loss");
//! loss.push("sae", 1024.0, 0.9);
//! loss.push("sae", 2048.0, 0.5);
//! let svg = panels_svg(&[loss], (600, 400), "tokens").unwrap();
//! assert!(svg.starts_with("<svg") && svg.contains("loss"));
//! ```

#![warn(missing_docs)]

pub mod curves;
pub mod density;
pub mod figure;
pub mod matching;

pub use figure::{Figure, PlotError, save_figure};
