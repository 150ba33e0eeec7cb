//! Top-activating examples on a store built by hand (so the answer is known), and the HTML
//! report rendered by a real headless browser (Debian's Chromium, `/usr/bin/chromium` or
//! `$SAE_CHROMIUM`; README command 2 installs it): the DOM it builds has the metrics table, one
//! card per feature, the known top token, the strongest example's context shaded and its own
//! token outlined; and it renders a non-empty screenshot.

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::params::{ParamSet, ParamTensor};
use sae_core::{Sae, SaeConfig};
use sae_core::{RowMeta, RowMetaKind};
use sae_data::store::{ActivationStore, StoreWriter};
use sae_label::report::Report;
use sae_label::top_examples::{densities, pick_features, top_examples};

const WORDS: [&str; 6] = ["the", "Ġcat", "Ġsat", "Ġon", "Ġmat", "."];

/// d_in 4, identity encoder and decoder: feature f is relu(x[f]).
fn identity_sae() -> Box<dyn Sae> {
    let device = Device::flex();
    let eye: Vec<f32> = (0..16).map(|i| if i % 5 == 0 { 1.0 } else { 0.0 }).collect();
    let mut p = ParamSet::new();
    p.insert("W_enc", ParamTensor::Matrix(Tensor::from_data(TensorData::new(eye.clone(), [4, 4]), &device)));
    p.insert("b_enc", ParamTensor::Vector(Tensor::zeros([4], &device)));
    p.insert("W_dec", ParamTensor::Matrix(Tensor::from_data(TensorData::new(eye, [4, 4]), &device)));
    p.insert("b_dec", ParamTensor::Vector(Tensor::zeros([4], &device)));
    sae_arch::registry().build(SaeConfig::new("standard", 4, 4), p, Path::new("<test>")).unwrap()
}

/// 3 windows of 6 tokens ("the cat sat on mat ."); feature 1 fires on " cat" (value 1 + window),
/// feature 2 weakly on every token, feature 0 never, feature 3 on "." only in window 0.
fn store(dir: &Path) -> ActivationStore {
    let mut w = StoreWriter::create_with_meta(dir, 4, 8, serde_json::json!({"model": "test"}), Some(RowMetaKind::Token)).unwrap();
    let (mut rows, mut toks) = (Vec::new(), Vec::new());
    for seq in 0..3u32 {
        for pos in 0..6u32 {
            let cat = if pos == 1 { 1.0 + seq as f32 } else { -1.0 };
            let dot = if pos == 5 && seq == 0 { 0.5 } else { 0.0 };
            rows.extend([-1.0, cat, 0.1 + pos as f32 * 0.01, dot]);
            toks.push(RowMeta::Token { id: pos, pos, window: seq });
        }
    }
    w.push_rows_with_meta(&rows, &toks).unwrap();
    w.finish().unwrap();
    ActivationStore::open(dir).unwrap()
}

fn chromium() -> PathBuf {
    let p = std::env::var_os("SAE_CHROMIUM").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(p.is_file(), "{} is missing: install Debian's chromium (`apt-get install -y chromium`, README command 2) or set SAE_CHROMIUM", p.display());
    p
}

fn headless(profile: &Path) -> Command {
    let mut c = Command::new(chromium());
    c.args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"]);
    c.arg(format!("--user-data-dir={}", profile.display()));
    c
}

#[test]
fn top_examples_are_the_known_rows_and_the_report_renders_in_chromium() {
    let tmp = tempfile::tempdir().unwrap();
    let store = store(&tmp.path().join("store"));
    let sae = identity_sae();
    let density = densities(sae.as_ref(), &store, 1000, 5, |_| {}).unwrap();
    assert_eq!(density, vec![0.0, 3.0 / 18.0, 1.0, 1.0 / 18.0]);
    // Feature 2 fires everywhere (dense), feature 0 never: both left out.
    assert_eq!(pick_features(&density, 4, 0.5), vec![3, 1]);
    let feats = top_examples(sae.as_ref(), &store, 1000, &[1, 3], 2, (3, 2), 4, |_| {}).unwrap();
    let cat = &feats[0];
    assert_eq!(cat.examples.iter().map(|e| (e.row, e.value)).collect::<Vec<_>>(), vec![(13, 3.0), (7, 2.0)]);
    // Context stays inside the window: row 13 is window 2, position 1 → rows 12..=15.
    assert_eq!(cat.examples[0].context.iter().map(|c| c.token).collect::<Vec<_>>(), vec![0, 1, 2, 3]);
    assert_eq!(cat.examples[0].centre, 1);
    assert_eq!(cat.examples[0].context[1].value, 3.0);
    assert_eq!(cat.top_tokens.len(), 1);
    assert_eq!((cat.top_tokens[0].token, cat.top_tokens[0].count, cat.top_tokens[0].total), (1, 3, 6.0));
    assert!(top_examples(sae.as_ref(), &store, 10, &[4], 1, (1, 1), 4, |_| {}).is_err());

    let metrics = serde_json::json!({"fvu": 0.25, "l0": 12.0, "downstream": {"ce_recovered": 0.9}, "title": "<script>alert(1)</script>"});
    let report = Report::new("Test <SAE>", metrics, feats, |t| WORDS[t as usize].to_string());
    let out = tmp.path().join("report");
    let svg = tmp.path().join("curve.svg");
    std::fs::write(&svg, "<?xml version=\"1.0\"?><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"40\" height=\"20\"><rect id=\"curve\" width=\"40\" height=\"20\" fill=\"blue\"/></svg>").unwrap();
    // An SVG from an untrusted SAE directory that would run script if inlined.
    let evil = tmp.path().join("evil.svg");
    std::fs::write(&evil, "<svg xmlns=\"http://www.w3.org/2000/svg\" onload=\"document.title='pwned-onload'\"><script>document.title='pwned-script'</script></svg>").unwrap();
    report.write(&out, &[("Training curves".into(), svg), ("missing".into(), tmp.path().join("nope.svg")), ("Density \"<b>\"".into(), evil)]).unwrap();
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(out.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["features"][0]["examples"][0]["row"], 13);

    let html = out.join("report.html");
    let dom = headless(&tmp.path().join("profile")).arg("--dump-dom").arg(format!("file://{}", html.display())).output().unwrap();
    assert!(dom.status.success(), "chromium failed: {}", String::from_utf8_lossy(&dom.stderr));
    let dom = String::from_utf8(dom.stdout).unwrap();
    assert!(dom.contains("<title>Test &lt;SAE&gt;</title>"), "{dom}");
    assert_eq!(dom.matches("class=\"feature\"").count(), 2);
    assert!(dom.contains("id=\"feature-1\"") && dom.contains("id=\"feature-3\""));
    assert!(dom.contains("<code> cat</code> (3×, mean 2.00)"), "{dom}");
    assert!(dom.contains("<span class=\"tok centre\" title=\"3.000\" style=\"background:rgba(255,120,0,1.00)\"> cat</span>"), "{dom}");
    assert!(dom.contains("downstream.ce_recovered") && dom.contains("<img alt=\"Training curves\" src=\"data:image/svg+xml;base64,"), "{dom}");
    assert!(!dom.contains("<script>"), "metrics text must be escaped");
    // The crafted SVG ran nothing, and neither it nor its caption became markup.
    assert!(!dom.contains("pwned"), "{dom}");
    assert!(dom.contains("<figcaption>Density \"&lt;b&gt;\"</figcaption>"), "{dom}");
    let raw = std::fs::read_to_string(&html).unwrap();
    assert!(!raw.contains("<svg") && !raw.contains("onload"), "figures are embedded as images, never as markup");
    let png = tmp.path().join("shot.png");
    let shot = headless(&tmp.path().join("profile2")).arg(format!("--screenshot={}", png.display())).arg("--window-size=1000,800").arg(format!("file://{}", html.display())).output().unwrap();
    assert!(shot.status.success(), "{}", String::from_utf8_lossy(&shot.stderr));
    let bytes = std::fs::read(&png).unwrap();
    assert!(bytes.len() > 1000 && bytes.starts_with(b"\x89PNG"), "screenshot of {} bytes", bytes.len());
}
