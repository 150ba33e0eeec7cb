//! The matched-cosine histogram of a stability comparison (`sae compare --plot`): how many
//! latents of one SAE found a partner in the other at each cosine, for the decoder and the
//! encoder matching, with the 0.7 line above which a latent counts as shared.

use std::path::Path;

use plotters::prelude::*;

pub use crate::figure::PlotError;
use crate::figure::{Figure, save_figure};

/// Bins of the histogram over cosines in [−1, 1].
const BINS: usize = 40;

/// Draws the histograms of the `decoder` and `encoder` matched cosines (one value per matched
/// latent) to `out` with extensions `.svg` and `.png`; `threshold` is drawn as a vertical line.
/// Non-finite values are left out and counted in the caption.
pub fn matched_cosine_histogram(decoder: &[f32], encoder: &[f32], threshold: f32, title: &str, out: &Path) -> Result<Figure, PlotError> {
    let svg = matched_cosine_svg(decoder, encoder, threshold, title).map_err(|e| PlotError::new(out, e))?;
    save_figure(&svg, out)
}

fn counts(values: &[f32]) -> (Vec<u32>, usize) {
    let mut c = vec![0u32; BINS];
    let mut skipped = 0;
    for v in values {
        if !v.is_finite() {
            skipped += 1;
            continue;
        }
        let b = ((v.clamp(-1.0, 1.0) + 1.0) / 2.0 * BINS as f32) as usize;
        c[b.min(BINS - 1)] += 1;
    }
    (c, skipped)
}

/// The histogram as an SVG document.
pub fn matched_cosine_svg(decoder: &[f32], encoder: &[f32], threshold: f32, title: &str) -> Result<String, String> {
    let err = |e: &dyn std::fmt::Display| e.to_string();
    let (dec, dec_bad) = counts(decoder);
    let (enc, enc_bad) = counts(encoder);
    let top = dec.iter().chain(&enc).copied().max().unwrap_or(1).max(1);
    let width = 2.0 / BINS as f64;
    let mut svg = String::new();
    let root = SVGBackend::with_string(&mut svg, (900, 500)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(&e))?;
    let bad = dec_bad + enc_bad;
    let caption = format!("{title}: matched cosines of {} latents{}", decoder.len(), if bad > 0 { format!(" ({bad} non-finite left out)") } else { String::new() });
    let mut chart = ChartBuilder::on(&root)
        .caption(caption, ("sans-serif", 20))
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(-1.0f64..1.0f64, 0u32..top + top / 10 + 1)
        .map_err(|e| err(&e))?;
    chart.configure_mesh().x_desc("cosine with the matched latent").y_desc("latents").draw().map_err(|e| err(&e))?;
    for (counts, color, name, shift) in [(&dec, BLUE, "decoder", 0.0), (&enc, RED, "encoder", 0.5)] {
        chart
            .draw_series(counts.iter().enumerate().map(|(i, c)| {
                let x0 = -1.0 + (i as f64 + shift * 0.5) * width;
                Rectangle::new([(x0, 0), (x0 + width * 0.5, *c)], color.mix(0.6).filled())
            }))
            .map_err(|e| err(&e))?
            .label(name)
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.mix(0.6).filled()));
    }
    let t = threshold as f64;
    chart.draw_series(std::iter::once(PathElement::new(vec![(t, 0), (t, top + top / 10)], BLACK.stroke_width(2)))).map_err(|e| err(&e))?;
    chart.configure_series_labels().background_style(WHITE.mix(0.8)).border_style(BLACK).position(SeriesLabelPosition::UpperLeft).draw().map_err(|e| err(&e))?;
    root.present().map_err(|e| err(&e))?;
    drop(chart);
    drop(root);
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_finite_cosine_lands_in_one_bin_and_the_rest_are_counted() {
        let (c, bad) = counts(&[-1.0, -0.99, 0.0, 0.7, 1.0, 1.5, f32::NAN]);
        assert_eq!((c.iter().sum::<u32>(), bad), (6, 1));
        assert_eq!((c[0], c[20], c[34], c[39]), (2, 1, 1, 2));
        let svg = matched_cosine_svg(&[0.9, 0.8, f32::NAN], &[0.2, 0.95, 0.1], 0.7, "a vs b").unwrap();
        assert!(svg.starts_with("<svg") && svg.contains("a vs b") && svg.contains("1 non-finite") && svg.contains("<rect"), "{svg:.300}");
    }
}
