//! all-MiniLM-L6-v2 against references: the token ids, hidden states of every block and block
//! 0's attention pattern of an independent implementation (Hugging Face transformers, committed
//! in `fixtures/lm/` by `fixtures/generate_lm.py`), within the f32 error model of
//! `common::error_model`; and the sentence-embedding
//! cosines of `../shared/DATA.md` (0.667 for the related pair, about −0.1 for unrelated ones).
//! The model comes from the pinned asset, fetched into the cache if it is not there yet.
//! Bad input: an unknown hook (lists the valid ones), a truncated weights file, a missing asset.


use std::path::PathBuf;

use burn::tensor::Device;
use sae_core::format::npy::read_npy;
use sae_core::hooks::{Capture, NoHooks};
use sae_assets::AssetCache;
use sae_core::HookedModel;
use sae_lm::assets as catalog;
use sae_lm::minilm::MiniLm;
use sae_lm::{LanguageModel, LmError};

use crate::common::error_model::{PRODUCTS_PER_BLOCK, assert_pattern_within, stream_bound};
use crate::common::{Seen, assert_rows_within, fixtures, host, machine, max_abs};

fn model_dir() -> PathBuf {
    AssetCache::from_env().fetch(&catalog::MINILM, |l| eprintln!("{l}")).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn minilm_matches_transformers_and_the_published_cosines() {
    let device = Device::flex();
    let model = MiniLm::from_cache(&AssetCache::new(model_dir().parent().unwrap()), &device).unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(fixtures().join("minilm.json")).unwrap()).unwrap();
    let layers = model.n_layers();
    for (j, sentence) in meta["sentences"].as_array().unwrap().iter().enumerate() {
        let ids = model.tokenize(sentence.as_str().unwrap()).unwrap();
        let expected: Vec<u32> = meta["ids"][j].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as u32).collect();
        assert_eq!(ids, expected, "token ids of sentence {j}");
        let mut names = vec!["blocks.0.hook_resid_pre".to_string(), "blocks.0.attn.hook_pattern".to_string()];
        names.extend((0..layers).map(|i| format!("blocks.{i}.ln2.hook_normalized")));
        names.extend(["blocks.0.attn.hook_q", "blocks.0.attn.hook_k"].map(String::from));
        let mut capture = Capture::new(names.clone());
        model.forward(std::slice::from_ref(&ids), &mut capture).unwrap();
        let reference = read_npy(&fixtures().join(format!("minilm_{j}_hidden.npy"))).unwrap().values;
        let per = ids.len() * model.d_model();
        let ours: Vec<f32> = std::iter::once(&names[0]).chain(&names[2..2 + layers]).flat_map(|n| host(capture.get(n).unwrap())).collect();
        // Hidden state l has passed l blocks of PRODUCTS_PER_BLOCK products each (the embedding
        // sum and its LayerNorm add only roundings), every inner dimension at most d_mlp 1536.
        for l in 0..=layers {
            let bound = stream_bound(l * PRODUCTS_PER_BLOCK, 1536);
            assert_rows_within(&format!("sentence {j}, hidden state {l}"), &ours[l * per..(l + 1) * per], &reference[l * per..(l + 1) * per], model.d_model(), bound);
        }
        let pattern = read_npy(&fixtures().join(format!("minilm_{j}_pattern0.npy"))).unwrap().values;
        let (q, k) = (host(capture.get("blocks.0.attn.hook_q").unwrap()), host(capture.get("blocks.0.attn.hook_k").unwrap()));
        let ours = host(capture.get("blocks.0.attn.hook_pattern").unwrap());
        assert_pattern_within(&format!("sentence {j}: block 0 pattern"), &ours, &pattern, &q, &k, 12, 12, 32, model.d_model());
    }
    let e: Vec<Vec<f32>> = meta["sentences"].as_array().unwrap().iter().map(|s| model.embed_sentence(s.as_str().unwrap()).unwrap()).collect();
    let cos = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    // DATA.md gives the related pair's cosine to three digits.
    assert!((cos(&e[0], &e[1]) - 0.667).abs() < 1e-3, "related pair: {}", cos(&e[0], &e[1]));
    // Unit embeddings with relative errors ε each have cosines within 2ε (plus the mean pool
    // and the cosine's own sums, one product of d_model each).
    let cos_bound = 2.0 * stream_bound(layers * PRODUCTS_PER_BLOCK + 2, 1536);
    for (a, b) in [(0, 1), (0, 2), (1, 2)] {
        let c = cos(&e[a], &e[b]);
        assert!(b == 1 || c.abs() < 0.15, "unrelated pair {a}/{b}: {c}");
        let err = (c as f64 - meta["cosine"][a][b].as_f64().unwrap()).abs();
        assert!(err <= cos_bound, "pair {a}/{b}: {c} differs from transformers' by {err:.3e} > {cos_bound:.3e}; on {}", machine());
    }
    // Every hook point is called, in forward order, with the documented shapes.
    let mut seen = Seen(Vec::new());
    let out = model.forward(&[vec![101, 2158, 102]], &mut seen).unwrap();
    assert_eq!(seen.0.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(), model.hook_names());
    let shape = |n: &str| seen.0.iter().find(|(m, _)| m == n).map(|(_, s)| s.clone()).unwrap();
    assert_eq!(shape("blocks.2.attn.hook_q"), vec![1, 3, 12, 32]);
    assert_eq!(shape("blocks.2.attn.hook_pattern"), vec![1, 12, 3, 3]);
    assert_eq!(shape("blocks.2.ln1.hook_scale"), vec![1, 3, 1]);
    assert_eq!(shape("blocks.2.mlp.hook_post"), vec![1, 3, 1536]);
    assert_eq!(out.dims(), [1, 3, 384]);

    // Bad input: unknown hook names list the valid ones; out-of-vocabulary ids; empty batch.
    let err = model.check_hook("blocks.2.hook_resid_postt").unwrap_err();
    assert!(matches!(err, sae_core::SaeError::UnknownHook { .. }) && err.to_string().contains("blocks.{i}.hook_resid_post"), "{err}");
    assert!(model.check_hook("blocks.5.attn.hook_z").is_ok());
    assert!(matches!(model.forward(&[vec![101, 999_999]], &mut NoHooks).map_err(LmError::from), Err(LmError::Input(_))));
    assert!(matches!(model.forward(&[], &mut NoHooks).map_err(LmError::from), Err(LmError::Input(_))));

    // LN-free forward: every LayerNorm frozen to the scale it computes on one input leaves that
    // input's output unchanged, and changes another's.
    let one = model.tokenize("A man is playing a guitar.").unwrap();
    let scales = sae_lm::norms::measure_scales(&model, std::slice::from_ref(&one)).unwrap();
    assert_eq!(scales.len(), 2 * layers + 1);
    let mut frozen = model.clone();
    sae_lm::norms::freeze_scales(frozen.norms_mut(), &scales).unwrap();
    let host3 = |t: burn::tensor::Tensor<3>| t.into_data().try_to_vec::<f32>().unwrap();
    let run = |m: &MiniLm, ids: &[u32]| host3(m.forward(&[ids.to_vec()], &mut NoHooks).unwrap());
    // A one-token input has one scale per norm: frozen at those, the output is unchanged.
    let single = vec![101u32];
    let per_token = sae_lm::norms::measure_scales(&model, std::slice::from_ref(&single)).unwrap();
    let mut frozen_single = model.clone();
    sae_lm::norms::freeze_scales(frozen_single.norms_mut(), &per_token).unwrap();
    let (a, b) = (run(&model, &single), run(&frozen_single, &single));
    assert!(max_abs(&a, &b) < 1e-4, "{}", max_abs(&a, &b));
    assert!(max_abs(&run(&model, &one), &run(&frozen, &one)) > 1e-3, "freezing changed nothing");
}

#[test]
fn a_truncated_weights_file_or_a_missing_asset_is_a_typed_error() {
    let src = model_dir();
    let dir = tempfile::tempdir().unwrap();
    for f in ["config.json", "tokenizer.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let bytes = std::fs::read(src.join("model.safetensors")).unwrap();
    std::fs::write(dir.path().join("model.safetensors"), &bytes[..bytes.len() / 3]).unwrap();
    let err = MiniLm::load(dir.path(), &Device::flex()).unwrap_err();
    assert!(err.to_string().contains("corrupt"), "{err}");
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    let err = MiniLm::load(dir.path(), &Device::flex()).unwrap_err();
    assert!(matches!(err, LmError::MissingFile { .. }) && err.to_string().contains("sae assets fetch minilm"), "{err}");
    let err = MiniLm::from_cache(&AssetCache::new(dir.path().join("empty-cache")), &Device::flex()).unwrap_err();
    assert!(err.to_string().contains("sae assets fetch minilm"), "{err}");
}
