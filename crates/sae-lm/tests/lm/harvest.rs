//! Harvesting MiniLM activations into a store: the rows equal a direct forward pass of the same
//! windows, every row carries its token, framing tokens and outliers are left out as asked; and
//! bad corpora (not UTF-8, empty, too short) are typed errors; an interrupted harvest continues
//! to the very store an uninterrupted one writes.


use std::path::PathBuf;

use burn::tensor::Device;
use sae_core::hooks::Capture;
use sae_assets::AssetCache;
use sae_core::{HookedModel, RowMeta};
use sae_lm::assets as catalog;
use sae_data::store::ActivationStore;
use sae_lm::harvest::{HarvestReport, HarvestSettings, harvest, read_corpus};
use sae_lm::minilm::MiniLm;
use sae_lm::{LanguageModel, LmError};

use crate::common::assert_rows_within;
use crate::common::error_model::{PRODUCTS_PER_BLOCK, stream_bound};

fn model() -> MiniLm {
    let dir = AssetCache::from_env().fetch(&catalog::MINILM, |l| eprintln!("{l}")).unwrap_or_else(|e| panic!("{e}"));
    MiniLm::load(&dir, &Device::flex()).unwrap()
}

const TEXT: &str = "Shall I compare thee to a summer's day? Thou art more lovely and more temperate. \
Rough winds do shake the darling buds of May, and summer's lease hath all too short a date. \
Sometime too hot the eye of heaven shines, and often is his gold complexion dimm'd.";

#[test]
fn harvested_rows_equal_a_direct_forward_and_carry_their_tokens() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sonnet.txt");
    std::fs::write(&file, TEXT).unwrap();
    let corpus = read_corpus(&[file]).unwrap();
    let settings = HarvestSettings {
        hook: "blocks.2.hook_resid_post".into(),
        tokens: 40,
        context: 12,
        batch: 2,
        exclude_special: true,
        max_norm_multiple: None,
        shard_rows: 16,
        ln_free_scales: None,
    };
    let out = dir.path().join("store");
    let mut calls = 0;
    let report = harvest(&model, &corpus, &settings, &out, |_, _| calls += 1).unwrap();
    assert_eq!(report.rows, 40);
    assert!(calls >= 1);
    let store = ActivationStore::open(&out).unwrap();
    assert_eq!((store.len(), store.d_in()), (40, 384));
    let tokens: Vec<(u32, u32)> = store.row_meta(0, 40).unwrap().unwrap().into_iter().map(|m| match m {
        RowMeta::Token { id, pos, .. } => (id, pos),
        other => panic!("{other:?}"),
    }).collect();
    assert!(tokens.iter().all(|t| t.1 >= 1 && t.1 <= 10), "framing rows were excluded");
    // The first window, run directly: its rows 1..=10 are the store's first ten rows.
    let body: Vec<u32> = model.tokenizer().encode(TEXT, false).unwrap()[..10].to_vec();
    let ids = model.frame(&body);
    assert_eq!(tokens[..10].iter().map(|t| t.0).collect::<Vec<_>>(), body);
    let mut capture = Capture::new(["blocks.2.hook_resid_post"]);
    model.forward(&[ids], &mut capture).unwrap();
    let direct = capture.get("blocks.2.hook_resid_post").unwrap().flat_rows().into_data().try_to_vec::<f32>().unwrap();
    let mut stored = Vec::new();
    store.append_rows(0, 10, &mut stored).unwrap();
    // A batch of two windows and one window alone are different products: equal within the f32
    // error model after the 3 blocks up to blocks.2.
    assert_rows_within("stored rows vs a direct forward", &stored, &direct[384..11 * 384], 384, stream_bound(3 * PRODUCTS_PER_BLOCK, 1536));
    assert_eq!(store.metadata().source["hook"], "blocks.2.hook_resid_post");

    // An outlier threshold below the median drops rows.
    let low = HarvestSettings { max_norm_multiple: Some(0.5), ..settings.clone() };
    let r = harvest(&model, &corpus, &low, &dir.path().join("store2"), |_, _| {}).unwrap();
    assert!(r.dropped_outliers > 0 && r.reference_norm.is_some());
    // Asking for an unknown hook lists the valid ones; an existing store is not overwritten.
    let bad = HarvestSettings { hook: "blocks.2.resid".into(), ..settings.clone() };
    assert!(matches!(harvest(&model, &corpus, &bad, &dir.path().join("s3"), |_, _| {}), Err(LmError::Core(sae_core::SaeError::UnknownHook { .. }))));
    assert!(harvest(&model, &corpus, &settings, &out, |_, _| {}).is_err());
}

/// Every file of a store directory but its lock, by name.
fn store_files(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .filter(|(n, _)| !n.starts_with('.'))
        .collect();
    files.sort();
    files
}

#[test]
fn an_interrupted_harvest_continues_to_the_store_of_an_uninterrupted_one() {
    let model = model();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sonnet.txt");
    std::fs::write(&file, TEXT.repeat(3)).unwrap();
    let corpus = read_corpus(&[file]).unwrap();
    // Shards of 7 rows end inside batches of 2 windows × 10 kept rows; the outlier filter's
    // threshold comes from the first batch and must survive the interruption.
    let settings = HarvestSettings {
        hook: "blocks.1.hook_resid_post".into(),
        tokens: 90,
        context: 12,
        batch: 2,
        exclude_special: true,
        max_norm_multiple: Some(1.05),
        shard_rows: 7,
        ln_free_scales: None,
    };
    let whole = dir.path().join("whole");
    let full = harvest(&model, &corpus, &settings, &whole, |_, _| {}).unwrap();
    assert!(full.dropped_outliers > 0, "the filter must drop rows for the test to mean anything");
    for stop_after in [1, 3] {
        let cut = dir.path().join(format!("cut{stop_after}"));
        let mut batches = 0;
        // A panic in the progress callback stands for a kill: pending rows are lost, the
        // committed shards and their metadata stay.
        let killed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            harvest(&model, &corpus, &settings, &cut, |_, _| {
                batches += 1;
                if batches == stop_after {
                    panic!("killed");
                }
            })
        }));
        assert!(killed.is_err());
        let partial = ActivationStore::open(&cut).unwrap();
        assert!(!partial.metadata().complete && partial.metadata().count % 7 == 0);
        let resumed = harvest(&model, &corpus, &settings, &cut, |_, _| {}).unwrap();
        assert_eq!(resumed.resumed_rows, partial.metadata().count);
        assert_eq!(HarvestReport { resumed_rows: 0, ..resumed }, full, "stopped after {stop_after} batches");
        assert_eq!(store_files(&cut), store_files(&whole), "stopped after {stop_after} batches");
    }

    // Continued with other settings, or over input that does not match, is an error that says so.
    let cut = dir.path().join("cut-other");
    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| harvest(&model, &corpus, &settings, &cut, |_, _| panic!("killed"))));
    let other = HarvestSettings { context: 16, ..settings.clone() };
    let err = harvest(&model, &corpus, &other, &cut, |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("other settings"), "{err}");
    // A resume point that lies about the samples used (not a batch boundary of this input).
    let meta_path = cut.join("metadata.json");
    let mut meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&meta_path).unwrap()).unwrap();
    assert!(meta["resume"].is_object(), "the first batch commits two shards: {meta}");
    meta["resume"]["cursor"]["samples"] = serde_json::json!(3);
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let err = harvest(&model, &corpus, &settings, &cut, |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("not the same input"), "{err}");
    meta["resume"]["cursor"]["reference_norm"] = serde_json::json!(-1.0);
    std::fs::write(&meta_path, meta.to_string()).unwrap();
    let err = harvest(&model, &corpus, &settings, &cut, |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("reference_norm"), "{err}");
}

#[test]
fn bad_corpora_are_typed_errors() {
    let dir = tempfile::tempdir().unwrap();
    let latin1 = dir.path().join("latin1.txt");
    std::fs::write(&latin1, b"caf\xe9 au lait").unwrap();
    let err = read_corpus(&[latin1]).unwrap_err();
    assert!(err.to_string().contains("not UTF-8") && err.to_string().contains("offset 3"), "{err}");
    let empty = dir.path().join("empty.txt");
    std::fs::write(&empty, "  \n").unwrap();
    assert!(read_corpus(std::slice::from_ref(&empty)).unwrap_err().to_string().contains("no text"));
    let missing: PathBuf = dir.path().join("missing.txt");
    assert!(read_corpus(&[missing]).is_err());
    // A corpus shorter than one window.
    let short = dir.path().join("short.txt");
    std::fs::write(&short, "Hi.").unwrap();
    let corpus = read_corpus(&[short]).unwrap();
    let settings = HarvestSettings { hook: "blocks.0.hook_resid_post".into(), context: 64, ..HarvestSettings::default() };
    let err = harvest(&model(), &corpus, &settings, &dir.path().join("s"), |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("fewer than one window"), "{err}");
}
