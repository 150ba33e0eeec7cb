//! SmolLM2-135M-Instruct against references: token ids (tokenizer built from the GGUF
//! metadata), hidden states of several blocks, block 0's attention pattern, per-token
//! next-token losses and argmaxes of an independent implementation (transformers reading the
//! same GGUF, committed in `fixtures/lm/` by `fixtures/generate_smollm2.py`); DATA.md's checks:
//! the greedy continuation " Paris." and the perplexity ≈ 5.8 (mean NLL 1.755) of the story's
//! continuation. Every tolerance comes from the f32 error model of `common::error_model`, so
//! the comparison holds on any CPU's kernels, not one machine's rounding. Also: norm folding
//! and frozen scales, partial forwards, every hook point in order, a truncated GGUF file, an
//! unknown hook.


use std::path::PathBuf;
use std::sync::OnceLock;

use burn::tensor::Device;
use sae_core::format::npy::read_npy;
use sae_core::hooks::{Capture, HookTensor, NoHooks};
use sae_assets::AssetCache;
use sae_core::HookedModel;
use sae_lm::assets as catalog;
use sae_lm::generate::{generate_greedy, next_token_loss};
use sae_lm::smollm2::SmolLm2;
use sae_lm::{LanguageModel, LmError};

use crate::common::error_model::{self, PRODUCTS_PER_BLOCK, argmax, stream_bound};
use crate::common::{Seen, assert_rows_within, fixtures, host, machine, max_abs};

fn model_dir() -> PathBuf {
    AssetCache::from_env().fetch(&catalog::SMOLLM2, |l| eprintln!("{l}")).unwrap_or_else(|e| panic!("{e}"))
}

fn model() -> &'static SmolLm2 {
    static M: OnceLock<SmolLm2> = OnceLock::new();
    M.get_or_init(|| SmolLm2::load(&model_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf"), &Device::flex()).unwrap())
}

fn meta() -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(fixtures().join("smollm2.json")).unwrap()).unwrap()
}

fn ids(v: &serde_json::Value) -> Vec<u32> {
    v.as_array().unwrap().iter().map(|t| t.as_u64().unwrap() as u32).collect()
}

#[test]
fn tokenizer_from_gguf_metadata_matches_transformers() {
    let m = model();
    for case in meta()["tokenizer_cases"].as_array().unwrap() {
        let text = case["text"].as_str().unwrap();
        assert_eq!(m.tokenize(text).unwrap(), ids(&case["ids"]), "{text:?}");
        assert_eq!(m.tokenizer().decode(&m.tokenize(text).unwrap()).unwrap().replace("<|im_start|>", "").replace("<|im_end|>", ""), text.replace("<|im_start|>", "").replace("<|im_end|>", ""), "round trip of {text:?}");
    }
    // One token's text is what it decodes to, not its byte-level spelling (`Ġ`, `Ã©`).
    let ids = m.tokenizer().encode(" the café", false).unwrap();
    let texts: Vec<String> = ids.iter().map(|&id| m.tokenizer().token_text(id)).collect();
    assert_eq!(texts[0], " the", "{texts:?}");
    assert!(texts.iter().all(|t| !t.contains('Ġ') && !t.contains('Ã')), "{texts:?}");
    if texts.len() == 3 {
        assert_eq!(texts.concat(), " the café", "{texts:?}");
    }
}

/// The inner dimension bounding every product of SmolLM2 (d_mlp).
fn k_max(m: &SmolLm2) -> usize {
    m.config().d_mlp
}

/// The largest row norm of SmolLM2's unembedding (its tied embedding), read once.
fn unembedding_norm(m: &SmolLm2) -> f64 {
    static NORM: OnceLock<f64> = OnceLock::new();
    let c = m.config();
    *NORM.get_or_init(|| error_model::smollm2_unembedding_norm(&model_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf"), c.vocab_size, c.d_model))
}

/// Per-token logit bounds from the depth bound alone (`error_model::logit_bounds`): for logits
/// with no reference hidden state to measure against; coarse.
fn logit_bounds(m: &SmolLm2, h: &[f32]) -> Vec<f64> {
    let c = m.config();
    error_model::logit_bounds(h, c.d_model, k_max(m), c.n_layers, unembedding_norm(m))
}

/// Per-token logit bounds of fixture sentence `j` from our final hidden state `h` and
/// transformers' (the last block of `smollm2_{j}_hidden.npy`): `error_model::head_bounds`.
fn head_bounds_vs_fixture(m: &SmolLm2, j: usize, h: &[f32]) -> Vec<f64> {
    let reference = read_npy(&fixtures().join(format!("smollm2_{j}_hidden.npy"))).unwrap().values;
    error_model::head_bounds(h, &reference[reference.len() - h.len()..], m.d_model(), unembedding_norm(m))
}

#[test]
fn hidden_states_patterns_and_losses_match_transformers() {
    let m = model();
    let meta = meta();
    eprintln!("machine: {}", machine());
    let layers: Vec<usize> = meta["layers"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    let d = m.d_model();
    for (j, sentence) in meta["sentences"].as_array().unwrap().iter().enumerate() {
        let tokens = m.tokenize(sentence.as_str().unwrap()).unwrap();
        assert_eq!(tokens, ids(&meta["ids"][j]), "token ids of sentence {j}");
        let mut names: Vec<String> = layers.iter().map(|i| format!("blocks.{i}.hook_resid_pre")).collect();
        names.push("ln_final.hook_normalized".into());
        names.extend(["blocks.0.attn.hook_pattern", "blocks.0.attn.hook_rot_q", "blocks.0.attn.hook_rot_k"].map(String::from));
        let mut capture = Capture::new(names.clone());
        let loss = next_token_loss(m, std::slice::from_ref(&tokens), &mut capture).unwrap();
        let reference = read_npy(&fixtures().join(format!("smollm2_{j}_hidden.npy"))).unwrap().values;
        let per = tokens.len() * d;
        // The stream entering block l has passed PRODUCTS_PER_BLOCK·l products; the final norm
        // adds none (it rescales each token, keeping its relative error).
        let depths = layers.iter().map(|&l| l * PRODUCTS_PER_BLOCK).chain([m.n_layers() * PRODUCTS_PER_BLOCK]);
        for (l, (name, products)) in names[..layers.len() + 1].iter().zip(depths).enumerate() {
            let label = format!("sentence {j} {name}");
            assert_rows_within(&label, &host(capture.get(name).unwrap()), &reference[l * per..(l + 1) * per], d, stream_bound(products, k_max(m)));
        }
        let pattern = read_npy(&fixtures().join(format!("smollm2_{j}_pattern0.npy"))).unwrap().values;
        let (q, k) = (host(capture.get("blocks.0.attn.hook_rot_q").unwrap()), host(capture.get("blocks.0.attn.hook_rot_k").unwrap()));
        let c = m.config();
        let ours = host(capture.get("blocks.0.attn.hook_pattern").unwrap());
        error_model::assert_pattern_within(&format!("sentence {j} blocks.0.attn.hook_pattern"), &ours, &pattern, &q, &k, c.n_heads, c.n_kv_heads, c.d_head, d);
        // Next-token NLL = logsumexp(z) − z_y moves by at most 2·max_v |δz_v|, and the logits
        // by what the two final hidden states (checked above) differ, through the head.
        let logit_tol = head_bounds_vs_fixture(m, j, &host(capture.get("ln_final.hook_normalized").unwrap()));
        let want: Vec<f32> = meta["next_token_nll"][j].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        assert_eq!(loss.nll.len(), want.len());
        for (t, (a, b)) in loss.nll.iter().zip(&want).enumerate() {
            let (err, bound) = (((a - b).abs()) as f64, 2.0 * logit_tol[t]);
            assert!(err <= bound, "sentence {j} position {t}: next-token NLL {a} vs {b} ({err:.3e} > {bound:.3e}); on {}", machine());
        }
        eprintln!("sentence {j}: next-token NLL max diff {:.2e} (bounds {:.2e}..{:.2e})", max_abs(&loss.nll, &want), 2.0 * logit_tol.iter().fold(f64::MAX, |a, &b| a.min(b)), 2.0 * logit_tol.iter().fold(0.0, |a: f64, &b| a.max(b)));
        // Argmax: equal, or the two candidates within the logit error of each other (a near-tie
        // that another summation order may break either way).
        let logits = m.forward(std::slice::from_ref(&tokens), &mut NoHooks).unwrap().into_data().try_to_vec::<f32>().unwrap();
        let vocab = logits.len() / tokens.len();
        for (t, (row, want)) in logits.chunks(vocab).zip(ids(&meta["argmax"][j])).enumerate() {
            let ours = argmax(row);
            let gap = (row[ours] - row[want as usize]) as f64;
            assert!(ours == want as usize || gap <= 2.0 * logit_tol[t], "sentence {j} position {t}: argmax {ours} vs {want}, logit gap {gap:.3e} > {:.3e}; on {}", 2.0 * logit_tol[t], machine());
        }
    }
}

#[test]
fn greedy_continuation_and_perplexity_match_data_md() {
    let m = model();
    let meta = meta();
    let prompt = m.tokenize("The capital of France is").unwrap();
    let out = generate_greedy(m, &prompt, 8, &mut NoHooks).unwrap();
    let text = m.tokenizer().decode(&out).unwrap();
    assert!(text.starts_with(" Paris."), "{text:?}");
    // Equal to transformers' continuation up to the first step where the two picks are within
    // the logit error of each other; after such a near-tie the continuations may part. The
    // prompt is fixture sentence 0, so the first step's logit error is measured against
    // transformers' hidden state; later steps have no reference and take the coarse depth bound.
    let want = ids(&meta["greedy_ids"]);
    assert_eq!(prompt, ids(&meta["ids"][0]), "the prompt is fixture sentence 0");
    if let Some(step) = out.iter().zip(&want).position(|(a, b)| a != b) {
        let context: Vec<u32> = prompt.iter().chain(&out[..step]).copied().collect();
        let mut capture = Capture::new(["ln_final.hook_normalized"]);
        let logits = m.forward(std::slice::from_ref(&context), &mut capture).unwrap().into_data().try_to_vec::<f32>().unwrap();
        let vocab = logits.len() / context.len();
        let last = &logits[(context.len() - 1) * vocab..];
        let h = host(capture.get("ln_final.hook_normalized").unwrap());
        let tol = *if step == 0 { head_bounds_vs_fixture(m, 0, &h) } else { logit_bounds(m, &h) }.last().unwrap();
        let gap = (last[out[step] as usize] - last[want[step] as usize]) as f64;
        assert!(gap <= 2.0 * tol, "greedy step {step}: {} vs transformers' {}, logit gap {gap:.3e} > {:.3e} ({text:?}); on {}", out[step], want[step], 2.0 * tol, machine());
    }
    // The story is fixture sentence 1: its logit errors are measured against transformers'
    // final hidden state.
    let story = m.tokenize(meta["story"].as_str().unwrap()).unwrap();
    assert_eq!(story, ids(&meta["ids"][1]), "the story is fixture sentence 1");
    let start = meta["story_prefix_tokens"].as_u64().unwrap() as usize;
    let mut capture = Capture::new(["ln_final.hook_normalized"]);
    let loss = next_token_loss(m, std::slice::from_ref(&story), &mut capture).unwrap();
    let cont = &loss.nll[start - 1..];
    let nll = cont.iter().map(|&v| v as f64).sum::<f64>() / cont.len() as f64;
    // The mean of per-token NLLs moves by at most the mean of their bounds.
    let tol = head_bounds_vs_fixture(m, 1, &host(capture.get("ln_final.hook_normalized").unwrap()));
    let bound = 2.0 * tol[start - 1..story.len() - 1].iter().sum::<f64>() / cont.len() as f64;
    let err = (nll - meta["story_nll"].as_f64().unwrap()).abs();
    eprintln!("story continuation: mean NLL {nll:.4}, perplexity {:.3} (transformers {:.4}); diff {err:.2e}, bound {bound:.2e}", nll.exp(), meta["story_nll"].as_f64().unwrap());
    assert!(err <= bound, "story NLL {nll} differs from transformers' by {err:.3e} > {bound:.3e}; on {}", machine());
    assert!((nll - 1.755).abs() < 0.05 && (nll.exp() - 5.8).abs() < 0.3, "DATA.md: NLL 1.755, perplexity 5.8; got {nll}");
}

#[test]
fn folded_gains_and_scales_frozen_at_their_own_values_keep_the_logits() {
    let m = model();
    let tokens = m.tokenize("Once upon a time").unwrap();
    let reference = m.forward(std::slice::from_ref(&tokens), &mut NoHooks).unwrap().into_data().try_to_vec::<f32>().unwrap();
    let mut folded = m.clone();
    folded.fold_norm_gains();
    let f = folded.forward(std::slice::from_ref(&tokens), &mut NoHooks).unwrap().into_data().try_to_vec::<f32>().unwrap();
    let err = max_abs(&f, &reference);
    assert!(err < 1e-3, "folding changed the logits by {err}");
    // Freezing every norm's scale to the value it computes on a one-token input is exact on
    // that input, and changes the logits on another.
    let one = vec![tokens[0]];
    let scales = sae_lm::norms::measure_scales(m, std::slice::from_ref(&one)).unwrap();
    assert_eq!(scales.len(), 2 * m.n_layers() + 1);
    let mut frozen = m.clone();
    sae_lm::norms::freeze_scales(frozen.norms_mut(), &scales).unwrap();
    let a = m.forward(std::slice::from_ref(&one), &mut NoHooks).unwrap().into_data().try_to_vec::<f32>().unwrap();
    let b = frozen.forward(std::slice::from_ref(&one), &mut NoHooks).unwrap().into_data().try_to_vec::<f32>().unwrap();
    assert!(max_abs(&a, &b) < 1e-3 * a.iter().fold(1f32, |x, v| x.max(v.abs())), "{}", max_abs(&a, &b));
    let c = frozen.forward(std::slice::from_ref(&tokens), &mut NoHooks).unwrap().into_data().try_to_vec::<f32>().unwrap();
    assert!(max_abs(&c, &reference) > 0.1, "freezing the scales changed nothing");
    let mut missing = scales.clone();
    missing.remove("ln_final");
    let mut again = m.clone();
    assert!(sae_lm::norms::freeze_scales(again.norms_mut(), &missing).unwrap_err().to_string().contains("ln_final"));
}

#[test]
fn partial_forward_hook_order_and_bad_input() {
    let m = model();
    let tokens = m.tokenize("Hello there, friend").unwrap();
    let mut capture = Capture::new(["blocks.3.hook_resid_post"]);
    m.forward(std::slice::from_ref(&tokens), &mut capture).unwrap();
    let part = m.forward_blocks(std::slice::from_ref(&tokens), &mut NoHooks, 4).unwrap();
    assert_eq!(host(&HookTensor::D3(part)), host(capture.get("blocks.3.hook_resid_post").unwrap()));
    let mut seen = Seen(Vec::new());
    let out = m.forward(&[vec![1, 2, 3], vec![4, 5, 6]], &mut seen).unwrap();
    assert_eq!(out.dims(), [2, 3, 49152]);
    assert_eq!(seen.0.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(), m.hook_names());
    for (name, dims) in &seen.0 {
        let flat = if dims.len() == 4 { dims[2] * dims[3] } else { dims[2] };
        if let Some(width) = m.hook_width(name) {
            assert_eq!(flat, width, "{name}: {dims:?}");
        }
    }
    let shape = |n: &str| seen.0.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(shape("blocks.0.attn.hook_k"), vec![2, 3, 3, 64]);
    assert_eq!(shape("blocks.0.attn.hook_pattern"), vec![2, 9, 3, 3]);
    let e = m.check_hook("blocks.3.hook_resid").unwrap_err().to_string();
    assert!(e.contains("blocks.{i}.hook_resid_post") && e.contains("ln_final.hook_normalized"), "{e}");
    assert!(matches!(m.forward(&[vec![49152]], &mut NoHooks).map_err(LmError::from), Err(LmError::Input(_))));
    // A truncated GGUF file: a typed error naming the file, at several cut points.
    let src = std::fs::read(model_dir().join("SmolLM2-135M-Instruct.Q4_1.gguf")).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for cut in [10, 5_000, 1_000_000, src.len() - 1] {
        let p = dir.path().join("cut.gguf");
        std::fs::write(&p, &src[..cut]).unwrap();
        let e = SmolLm2::load(&p, &Device::flex()).unwrap_err();
        assert!(matches!(e, LmError::BadFile { .. }) && e.to_string().contains("cut.gguf"), "cut at {cut}: {e}");
    }
}
