//! Saving a drawn figure twice: as SVG (vector, exact) and as PNG (a raster any viewer shows),
//! both written atomically.
//!
//! Figures are drawn once, with plotters into an SVG string; the PNG is that SVG rasterised by
//! `resvg`. Text needs a font: the system's fonts are searched for a common sans-serif family
//! (DejaVu Sans, Liberation Sans, …, else the first family found). On a machine without any
//! font the PNG is still written, without its text, and [`Figure::png_has_text`] says so.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use resvg::{tiny_skia, usvg};

/// Why a figure could not be drawn or saved.
#[derive(Debug, thiserror::Error)]
#[error("drawing {path}: {reason}")]
pub struct PlotError {
    /// The output file.
    pub path: PathBuf,
    /// What failed.
    pub reason: String,
}

impl PlotError {
    /// An error about `path`.
    pub fn new(path: &Path, reason: impl std::fmt::Display) -> Self {
        Self { path: path.to_path_buf(), reason: reason.to_string() }
    }
}

/// The files a figure was saved to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Figure {
    /// The SVG file.
    pub svg: PathBuf,
    /// The PNG file.
    pub png: PathBuf,
    /// Whether a font was found to draw the PNG's text.
    pub png_has_text: bool,
}

/// Families tried, in order, for plotters' `sans-serif`.
const SANS_FAMILIES: [&str; 6] = ["DejaVu Sans", "Liberation Sans", "Noto Sans", "Arial", "Helvetica", "FreeSans"];

/// The system fonts, loaded once per process, with `sans-serif` mapped to an installed family.
fn fonts() -> &'static (Arc<usvg::fontdb::Database>, bool) {
    static FONTS: OnceLock<(Arc<usvg::fontdb::Database>, bool)> = OnceLock::new();
    FONTS.get_or_init(|| {
        let mut db = usvg::fontdb::Database::new();
        db.load_system_fonts();
        let installed: Vec<String> = db.faces().flat_map(|f| f.families.iter().map(|(name, _)| name.clone())).collect();
        let family = SANS_FAMILIES.iter().find(|want| installed.iter().any(|have| have == *want)).map(|s| s.to_string()).or_else(|| installed.first().cloned());
        let has_text = family.is_some();
        if let Some(family) = family {
            db.set_sans_serif_family(family.clone());
            db.set_serif_family(family);
        }
        (Arc::new(db), has_text)
    })
}

/// Rasterises an SVG document to PNG bytes at its own size.
pub fn svg_to_png(svg: &str, path_for_errors: &Path) -> Result<(Vec<u8>, bool), PlotError> {
    let (db, has_text) = fonts();
    let options = usvg::Options { fontdb: db.clone(), font_family: "sans-serif".into(), ..usvg::Options::default() };
    let tree = usvg::Tree::from_str(svg, &options).map_err(|e| PlotError::new(path_for_errors, format!("parsing the SVG: {e}")))?;
    let size = tree.size().to_int_size();
    let mut pixmap = tiny_skia::Pixmap::new(size.width(), size.height())
        .ok_or_else(|| PlotError::new(path_for_errors, format!("empty figure {}x{}", size.width(), size.height())))?;
    pixmap.fill(tiny_skia::Color::WHITE);
    resvg::render(&tree, tiny_skia::Transform::default(), &mut pixmap.as_mut());
    let png = pixmap.encode_png().map_err(|e| PlotError::new(path_for_errors, format!("encoding PNG: {e}")))?;
    Ok((png, *has_text))
}

/// Writes `svg` to `base` with extension `.svg` and its rasterisation to `.png`.
pub fn save_figure(svg: &str, base: &Path) -> Result<Figure, PlotError> {
    let svg_path = base.with_extension("svg");
    let png_path = base.with_extension("png");
    let (png, png_has_text) = svg_to_png(svg, &png_path)?;
    write(&svg_path, svg.as_bytes())?;
    write(&png_path, &png)?;
    Ok(Figure { svg: svg_path, png: png_path, png_has_text })
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), PlotError> {
    sae_core::format::atomic::write_atomic(path, bytes).map_err(|e| PlotError::new(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rasterises_a_rectangle_at_the_svg_size() {
        let svg = r#"<svg xmlns="http://www.w3.org/2000/svg" width="20" height="10"><rect x="0" y="0" width="10" height="10" fill="rgb(255,0,0)"/></svg>"#;
        let (png, _) = svg_to_png(svg, Path::new("t.png")).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        // IHDR: width and height as big-endian u32 at bytes 16..24.
        assert_eq!(u32::from_be_bytes(png[16..20].try_into().unwrap()), 20);
        assert_eq!(u32::from_be_bytes(png[20..24].try_into().unwrap()), 10);
        let pixmap = tiny_skia::Pixmap::decode_png(&png).unwrap();
        let at = |x: u32, y: u32| pixmap.pixel(x, y).map(|p| (p.red(), p.green(), p.blue()));
        assert_eq!(at(5, 5), Some((255, 0, 0)), "drawn area");
        assert_eq!(at(15, 5), Some((255, 255, 255)), "background is white");
    }

    #[test]
    fn malformed_svg_is_an_error_naming_the_file() {
        let e = svg_to_png("<svg", Path::new("x/plot.png")).unwrap_err();
        assert!(e.to_string().contains("x/plot.png"), "{e}");
    }
}
