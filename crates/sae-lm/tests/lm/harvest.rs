//! Harvesting MiniLM activations into a store: the rows equal a direct forward pass of the same
//! windows, every row carries its token, framing tokens and outliers are left out as asked; and
//! bad corpora (not UTF-8, empty, too short) are typed errors.


use std::path::PathBuf;

use burn::tensor::Device;
use sae_core::hooks::Capture;
use sae_assets::AssetCache;
use sae_core::{HookedModel, RowMeta};
use sae_lm::assets as catalog;
use sae_data::store::ActivationStore;
use sae_lm::harvest::{HarvestSettings, harvest, read_corpus};
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
