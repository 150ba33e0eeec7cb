//! The report of one trained SAE: a JSON file and one self-contained HTML page (no scripts, no
//! external files) with the evaluation metrics, the training curves and density histogram
//! (SVG files inlined), and for a few features their top tokens and top-activating examples
//! with each token shaded by the feature's activation.

use std::path::Path;

use serde::Serialize;

use crate::error::{LabelError, Result};
use crate::html::{display_token, escape};
use crate::top_examples::FeatureExamples;

/// Everything a report shows.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// Page title.
    pub title: String,
    /// Free-form metrics (the `sae eval` JSON: flat numbers and one level of nesting are shown).
    pub metrics: serde_json::Value,
    /// Features with their examples.
    pub features: Vec<FeatureExamples>,
    /// Token id → text of every token the features mention.
    pub vocabulary: std::collections::BTreeMap<u32, String>,
}

impl Report {
    /// A report whose token texts come from `token_text` (a tokenizer's vocabulary).
    pub fn new(title: impl Into<String>, metrics: serde_json::Value, features: Vec<FeatureExamples>, token_text: impl Fn(u32) -> String) -> Self {
        let mut vocabulary = std::collections::BTreeMap::new();
        for f in &features {
            for t in f.top_tokens.iter().map(|t| t.token).chain(f.examples.iter().flat_map(|e| e.context.iter().map(|c| c.token))) {
                vocabulary.entry(t).or_insert_with(|| token_text(t));
            }
        }
        Self { title: title.into(), metrics, features, vocabulary }
    }

    fn text(&self, token: u32) -> String {
        display_token(self.vocabulary.get(&token).map_or("?", String::as_str))
    }

    /// The HTML page; `figures` are `(caption, SVG text)`, shown in order as images.
    ///
    /// A figure file is untrusted input like any other (an SAE directory can come from anywhere,
    /// and an SVG can carry `<script>` or `onload=`): each is embedded as an `<img>` of a
    /// base64 `data:` URL, a context in which browsers run no script of the image, and the page
    /// carries a content security policy that allows no script at all.
    pub fn to_html(&self, figures: &[(String, String)]) -> String {
        let mut h = String::new();
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; img-src data:; style-src 'unsafe-inline'\"><title>");
        h.push_str(&escape(&self.title));
        h.push_str("</title><style>body{font-family:sans-serif;margin:2em;max-width:1100px}table{border-collapse:collapse}td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:left}td.num{text-align:right;font-family:monospace}.feature{border:1px solid #ccc;border-radius:6px;padding:8px 12px;margin:12px 0}.ex{font-family:monospace;white-space:pre-wrap;margin:2px 0}.tok{border-radius:2px}.centre{outline:1px solid #c00}figure{margin:1em 0}figure img{max-width:100%;height:auto}</style></head><body>\n");
        h.push_str(&format!("<h1>{}</h1>\n<h2>Metrics</h2>\n<table id=\"metrics\">\n", escape(&self.title)));
        let mut row = |k: &str, v: &serde_json::Value| {
            let shown = v.as_f64().map(|f| format!("{f:.5}")).or_else(|| v.as_str().map(String::from)).unwrap_or_else(|| v.to_string());
            h.push_str(&format!("<tr><th>{}</th><td class=\"num\">{}</td></tr>\n", escape(k), escape(&shown)));
        };
        if let Some(obj) = self.metrics.as_object() {
            for (k, v) in obj {
                match v {
                    serde_json::Value::Object(inner) => inner.iter().for_each(|(k2, v2)| row(&format!("{k}.{k2}"), v2)),
                    serde_json::Value::Array(_) => {}
                    v => row(k, v),
                }
            }
        }
        h.push_str("</table>\n");
        for (caption, svg) in figures {
            let caption = escape(caption);
            h.push_str(&format!("<figure><img alt=\"{caption}\" src=\"data:image/svg+xml;base64,{}\"><figcaption>{caption}</figcaption></figure>\n", base64(svg.as_bytes())));
        }
        h.push_str(&format!("<h2>Features</h2>\n<p>{} features spread over the density range; each token of an example is shaded by the feature's activation on it (darkest = the example's maximum), the example's own token outlined.</p>\n", self.features.len()));
        for f in &self.features {
            h.push_str(&format!("<div class=\"feature\" id=\"feature-{0}\"><h3>Feature {0}</h3><p>density {1:.5}</p>\n<p class=\"top-tokens\">Top tokens: ", f.feature, f.density));
            let tops: Vec<String> = f.top_tokens.iter().map(|t| format!("<code>{}</code> ({}×, mean {:.2})", escape(&self.text(t.token)), t.count, t.total / t.count.max(1) as f64)).collect();
            h.push_str(&tops.join(", "));
            h.push_str("</p>\n");
            for e in &f.examples {
                h.push_str(&format!("<div class=\"ex\" data-value=\"{:.4}\"><b>{:.2}</b> ", e.value, e.value));
                for (i, c) in e.context.iter().enumerate() {
                    let alpha = if e.value > 0.0 { (c.value / e.value).clamp(0.0, 1.0) } else { 0.0 };
                    let class = if i == e.centre { "tok centre" } else { "tok" };
                    h.push_str(&format!("<span class=\"{class}\" title=\"{:.3}\" style=\"background:rgba(255,120,0,{alpha:.2})\">{}</span>", c.value, escape(&self.text(c.token))));
                }
                h.push_str("</div>\n");
            }
            h.push_str("</div>\n");
        }
        h.push_str("</body></html>\n");
        h
    }

    /// Writes `report.json` and `report.html` into `dir` (atomically), inlining the SVG files
    /// of `figures` (`(caption, path)`; missing files are left out).
    pub fn write(&self, dir: &Path, figures: &[(String, std::path::PathBuf)]) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| LabelError::Input(format!("creating {}: {e}", dir.display())))?;
        let svgs: Vec<(String, String)> = figures.iter().filter_map(|(c, p)| std::fs::read_to_string(p).ok().map(|s| (c.clone(), s))).collect();
        let json = serde_json::to_vec_pretty(self).map_err(|e| LabelError::Input(e.to_string()))?;
        sae_core::format::atomic::write_atomic(&dir.join("report.json"), &json)?;
        sae_core::format::atomic::write_atomic(&dir.join("report.html"), self.to_html(&svgs).as_bytes())?;
        Ok(())
    }
}

/// Standard base64 (RFC 4648, with padding) of `bytes`.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> shift) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn base64_matches_the_rfc_4648_test_vectors() {
        for (plain, encoded) in [("", ""), ("f", "Zg=="), ("fo", "Zm8="), ("foo", "Zm9v"), ("foob", "Zm9vYg=="), ("fooba", "Zm9vYmE="), ("foobar", "Zm9vYmFy")] {
            assert_eq!(super::base64(plain.as_bytes()), encoded);
        }
    }
}
