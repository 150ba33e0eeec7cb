//! SmolLM2-135M-Instruct against references: token ids (tokenizer built from the GGUF
//! metadata), hidden states of several blocks, block 0's attention pattern, per-token
//! next-token losses and argmaxes of an independent implementation (transformers reading the
//! same GGUF, committed in `fixtures/lm/` by `fixtures/generate_smollm2.py`); DATA.md's checks:
//! the greedy continuation " Paris." and the perplexity ≈ 5.8 (mean NLL 1.755) of the story's
//! continuation. Also: norm folding and frozen scales, partial forwards, every hook point in
//! order, a truncated GGUF file, an unknown hook.

mod common;

use std::path::PathBuf;
use std::sync::OnceLock;

use burn::tensor::Device;
use sae_core::format::npy::read_npy;
use sae_core::hooks::{Capture, HookTensor, NoHooks};
use sae_data::assets::{AssetCache, catalog};
use sae_lm::generate::{generate_greedy, next_token_loss};
use sae_lm::smollm2::SmolLm2;
use sae_lm::{LanguageModel, LmError};

use common::{Seen, fixtures, host, max_abs};

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
}

#[test]
fn hidden_states_patterns_and_losses_match_transformers() {
    let m = model();
    let meta = meta();
    let layers: Vec<usize> = meta["layers"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
    for (j, sentence) in meta["sentences"].as_array().unwrap().iter().enumerate() {
        let tokens = m.tokenize(sentence.as_str().unwrap()).unwrap();
        assert_eq!(tokens, ids(&meta["ids"][j]), "token ids of sentence {j}");
        let mut names: Vec<String> = layers.iter().map(|i| format!("blocks.{i}.hook_resid_pre")).collect();
        names.push("ln_final.hook_normalized".into());
        names.push("blocks.0.attn.hook_pattern".into());
        let mut capture = Capture::new(names.clone());
        let loss = next_token_loss(m, std::slice::from_ref(&tokens), &mut capture).unwrap();
        let reference = read_npy(&fixtures().join(format!("smollm2_{j}_hidden.npy"))).unwrap().values;
        let per = tokens.len() * m.d_model();
        for (l, name) in names[..layers.len() + 1].iter().enumerate() {
            let ours = host(capture.get(name).unwrap());
            let want = &reference[l * per..(l + 1) * per];
            let scale = want.iter().fold(1f32, |a, v| a.max(v.abs()));
            let err = max_abs(&ours, want);
            eprintln!("sentence {j} {name}: max abs diff {err:.2e} (max |x| {scale:.1})");
            assert!(err < 1e-3f32.max(5e-6 * scale), "sentence {j}, {name}: max abs difference {err} (largest value {scale})");
        }
        let pattern = read_npy(&fixtures().join(format!("smollm2_{j}_pattern0.npy"))).unwrap().values;
        let err = max_abs(&host(capture.get("blocks.0.attn.hook_pattern").unwrap()), &pattern);
        assert!(err < 1e-4, "sentence {j}: attention pattern of block 0: {err}");
        let want: Vec<f32> = meta["next_token_nll"][j].as_array().unwrap().iter().map(|v| v.as_f64().unwrap() as f32).collect();
        let err = max_abs(&loss.nll, &want);
        eprintln!("sentence {j}: next-token NLL max diff {err:.2e}");
        assert!(err < 2e-3, "sentence {j}: next-token NLLs differ by {err}: {:?} vs {want:?}", loss.nll);
        let logits = m.forward(std::slice::from_ref(&tokens), &mut NoHooks).unwrap();
        let argmax: Vec<u32> = logits.argmax(2).into_data().convert::<i64>().try_to_vec::<i64>().unwrap().into_iter().map(|v| v as u32).collect();
        assert_eq!(argmax, ids(&meta["argmax"][j]), "argmax of sentence {j}");
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
    assert_eq!(out, ids(&meta["greedy_ids"]), "{text:?}");
    let story = m.tokenize(meta["story"].as_str().unwrap()).unwrap();
    let start = meta["story_prefix_tokens"].as_u64().unwrap() as usize;
    let loss = next_token_loss(m, std::slice::from_ref(&story), &mut NoHooks).unwrap();
    let cont = &loss.nll[start - 1..];
    let nll = cont.iter().map(|&v| v as f64).sum::<f64>() / cont.len() as f64;
    eprintln!("story continuation: mean NLL {nll:.4}, perplexity {:.3} (transformers {:.4})", nll.exp(), meta["story_nll"].as_f64().unwrap());
    assert!((nll - meta["story_nll"].as_f64().unwrap()).abs() < 2e-3, "{nll}");
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
        let width = m.hook_width(name);
        let flat = if dims.len() == 4 { dims[2] * dims[3] } else { dims[2] };
        if width != 0 {
            assert_eq!(flat, width, "{name}: {dims:?}");
        }
    }
    let shape = |n: &str| seen.0.iter().find(|(k, _)| k == n).unwrap().1.clone();
    assert_eq!(shape("blocks.0.attn.hook_k"), vec![2, 3, 3, 64]);
    assert_eq!(shape("blocks.0.attn.hook_pattern"), vec![2, 9, 3, 3]);
    let e = m.check_hook("blocks.3.hook_resid").unwrap_err().to_string();
    assert!(e.contains("blocks.{i}.hook_resid_post") && e.contains("ln_final.hook_normalized"), "{e}");
    assert!(matches!(m.forward(&[vec![49152]], &mut NoHooks), Err(LmError::Input(_))));
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
