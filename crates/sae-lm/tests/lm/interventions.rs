//! Interventions on SmolLM2 with SAEs built by hand, so the expected effect is known:
//! - an exact SAE (`d_sae = 2·d`, `W_enc = [I, −I]`, `W_dec = [I; −I]`: `relu(x) − relu(−x) = x`)
//!   spliced in changes nothing: CE_sae = CE_clean, KL 0, CE recovered 1; zero-ablation costs loss;
//! - splicing with the error term and no edits changes nothing; ablating a feature does;
//! - steering with a decoder direction equal to the embedding of " London" turns the greedy
//!   continuation of "The capital of France is" away from " Paris." (asserted), towards London.


use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::hooks::{Capture, Hooks, NoHooks};
use sae_core::params::{ParamSet, ParamTensor};
use sae_core::{Sae, SaeConfig};
use sae_assets::AssetCache;
use sae_core::HookedModel;
use sae_lm::assets as catalog;
use sae_lm::downstream::downstream_loss;
use sae_lm::generate::{generate_greedy, generate_greedy_uncached, next_token_loss};
use sae_hooked::intervene::{FeatureEdit, Intervention, Splice};
use sae_lm::smollm2::SmolLm2;
use sae_lm::{LanguageModel, LmError};

use crate::common::error_model::{Both, head_bounds, smollm2_unembedding_norm};
use crate::common::{host, machine, max_abs};

const HOOK: &str = "blocks.5.hook_resid_post";

fn gguf() -> PathBuf {
    AssetCache::from_env().fetch(&catalog::SMOLLM2, |l| eprintln!("{l}")).unwrap_or_else(|e| panic!("{e}")).join("SmolLM2-135M-Instruct.Q4_1.gguf")
}

fn model() -> &'static SmolLm2 {
    static M: OnceLock<SmolLm2> = OnceLock::new();
    M.get_or_init(|| SmolLm2::load(&gguf(), &Device::flex()).unwrap())
}

/// The largest row norm of SmolLM2's unembedding (its tied embedding), read once.
fn unembedding_norm() -> f64 {
    static NORM: OnceLock<f64> = OnceLock::new();
    *NORM.get_or_init(|| {
        let c = model().config();
        smollm2_unembedding_norm(&gguf(), c.vocab_size, c.d_model)
    })
}

const FINAL: &str = "ln_final.hook_normalized";

/// The logits of `ids` under `hooks` and the final hidden states that made them.
fn logits_and_final(m: &SmolLm2, ids: &[u32], hooks: &mut dyn Hooks) -> (Vec<f32>, Vec<f32>) {
    let mut capture = Capture::new([FINAL]);
    let logits = m.forward(&[ids.to_vec()], &mut Both(hooks, &mut capture)).unwrap().into_data().try_to_vec::<f32>().unwrap();
    (logits, host(capture.get(FINAL).unwrap()))
}

/// The largest logit difference of two computations (rows of the vocabulary) over its bound
/// from their final hidden states (`error_model::head_bounds`); ≤ 1 means within the f32 error
/// model, any order of summation.
fn logit_error_ratio(a: (&[f32], &[f32]), b: (&[f32], &[f32])) -> f64 {
    let (vocab, d) = (model().config().vocab_size, model().d_model());
    let bounds = head_bounds(a.1, b.1, d, unembedding_norm());
    a.0.chunks(vocab).zip(b.0.chunks(vocab)).zip(&bounds).map(|((x, y), t)| max_abs(x, y) as f64 / t).fold(0.0, f64::max)
}

/// Two greedy continuations of `prompt`, `cached` by [`generate_greedy`] and `full` by
/// [`generate_greedy_uncached`] under the hooks `make_hooks` makes, are equal, or part first at
/// a step where the cached pick is within the logit error of the full forward's (a near-tie
/// that the two orders of summation may break either way): the cached step is replayed to
/// measure its final hidden state against the full forward's.
fn assert_same_or_near_tie<'h>(m: &SmolLm2, prompt: &[u32], cached: &[u32], full: &[u32], make_hooks: &dyn Fn() -> Box<dyn Hooks + 'h>) {
    let Some(step) = cached.iter().zip(full).position(|(x, y)| x != y) else {
        assert_eq!(cached.len(), full.len());
        return;
    };
    let context: Vec<u32> = prompt.iter().chain(&cached[..step]).copied().collect();
    let (logits, h) = logits_and_final(m, &context, make_hooks().as_mut());
    let (vocab, d) = (m.config().vocab_size, m.d_model());
    let (mut cache, mut capture, mut hooks) = (sae_lm::KvCache::default(), Capture::new([FINAL]), make_hooks());
    m.next_logits_cached(prompt, &mut cache, &mut Both(hooks.as_mut(), &mut capture)).unwrap().unwrap();
    for t in &cached[..step] {
        capture = Capture::new([FINAL]);
        m.next_logits_cached(&[*t], &mut cache, &mut Both(hooks.as_mut(), &mut capture)).unwrap().unwrap();
    }
    let tol = head_bounds(&host(capture.get(FINAL).unwrap()), &h[h.len() - d..], d, unembedding_norm())[0];
    let last = &logits[logits.len() - vocab..];
    let gap = (last[full[step] as usize] - last[cached[step] as usize]) as f64;
    assert!(gap <= 2.0 * tol, "greedy step {step}: cached {} vs full {}, logit gap {gap:.3e} > {:.3e}; on {}", cached[step], full[step], 2.0 * tol, machine());
}

/// A ReLU SAE with the given weights (`W_enc [d, n]`, `W_dec [n, d]`, zero biases).
fn sae(w_enc: Vec<f32>, w_dec: Vec<f32>, d: usize, n: usize) -> Box<dyn Sae> {
    let device = Device::flex();
    let mut p = ParamSet::new();
    p.insert("W_enc", ParamTensor::Matrix(Tensor::from_data(TensorData::new(w_enc, [d, n]), &device)));
    p.insert("b_enc", ParamTensor::Vector(Tensor::zeros([n], &device)));
    p.insert("W_dec", ParamTensor::Matrix(Tensor::from_data(TensorData::new(w_dec, [n, d]), &device)));
    p.insert("b_dec", ParamTensor::Vector(Tensor::zeros([d], &device)));
    sae_arch::registry().build(SaeConfig::new("standard", d, n), p, Path::new("<test>")).unwrap()
}

/// `relu(x) − relu(−x) = x`: reconstruction is exact.
fn exact_sae(d: usize) -> Box<dyn Sae> {
    let n = 2 * d;
    let mut enc = vec![0f32; d * n];
    let mut dec = vec![0f32; n * d];
    for i in 0..d {
        enc[i * n + i] = 1.0;
        enc[i * n + d + i] = -1.0;
        dec[i * d + i] = 1.0;
        dec[(d + i) * d + i] = -1.0;
    }
    sae(enc, dec, d, n)
}

fn logits(m: &SmolLm2, ids: &[u32], hooks: &mut dyn sae_core::hooks::Hooks) -> Vec<f32> {
    m.forward(&[ids.to_vec()], hooks).unwrap().into_data().try_to_vec::<f32>().unwrap()
}

#[test]
fn an_exact_sae_recovers_all_the_loss_and_zero_ablation_does_not() {
    let m = model();
    let exact = exact_sae(m.d_model());
    let text = "Shall I compare thee to a summer's day? Thou art more lovely and more temperate.";
    let ids = m.tokenize(text).unwrap();
    let windows = vec![ids[..12].to_vec(), ids[4..16].to_vec()];
    let r = downstream_loss(m, exact.as_ref(), HOOK, &windows, 1, |_, _| {}).unwrap();
    eprintln!("{r:?}");
    assert_eq!(r.tokens, 2 * 11);
    assert!((r.ce_sae - r.ce_clean).abs() < 1e-4 && r.kl_sae.abs() < 1e-4, "{r:?}");
    assert!((r.ce_recovered - 1.0).abs() < 1e-3, "{r:?}");
    assert!(r.ce_zero > r.ce_clean + 1.0 && r.kl_zero > 1.0, "zero-ablating block 5's output should hurt: {r:?}");
    // The same numbers by hand from the per-token losses, batched as downstream_loss batches
    // them here (both windows at once), so that both run the same products: agreement up to the
    // order of the final f64 sums.
    let r = downstream_loss(m, exact.as_ref(), HOOK, &windows, windows.len(), |_, _| {}).unwrap();
    let clean = next_token_loss(m, &windows, &mut NoHooks).unwrap();
    let zero = next_token_loss(m, &windows, &mut Intervention::at(HOOK).splice(Splice::Zero)).unwrap();
    assert!((clean.mean_nll() - r.ce_clean).abs() < 1e-9 && (zero.mean_nll() - r.ce_zero).abs() < 1e-9, "{} {} vs {r:?}", clean.mean_nll(), zero.mean_nll());
    let kl = zero.kl_from(&clean).unwrap();
    assert!((kl - r.kl_zero).abs() < 1e-9, "{kl} vs {}", r.kl_zero);
    // A mismatched SAE width is an error, not a panic.
    let narrow = exact_sae(8);
    assert!(matches!(downstream_loss(m, narrow.as_ref(), HOOK, &windows, 1, |_, _| {}), Err(LmError::Input(_))));
}

#[test]
fn splicing_with_the_error_term_is_neutral_and_feature_edits_are_not() {
    let m = model();
    let d = m.d_model();
    // A lossy SAE: 64 random-ish directions (a fixed pattern, no RNG needed).
    let n = 64;
    let dec: Vec<f32> = (0..n * d).map(|i| (((i * 7919) % 101) as f32 / 50.0 - 1.0) * 0.2).collect();
    let mut enc = vec![0f32; d * n];
    for f in 0..n {
        for i in 0..d {
            enc[i * n + f] = dec[f * d + i];
        }
    }
    let lossy = sae(enc, dec, d, n);
    let ids = m.tokenize("The quick brown fox jumps over the lazy dog").unwrap();
    let clean = logits_and_final(m, &ids, &mut NoHooks);
    let mut neutral = Intervention::at(HOOK).with_sae(lossy.as_ref()).splice(Splice::WithError);
    let with_error = logits_and_final(m, &ids, &mut neutral);
    assert_eq!(neutral.calls, 1);
    // Splicing with the error term gives the stream back up to a few roundings: the logits
    // differ by what the final hidden states differ, through the head (the f32 error model).
    let ratio = logit_error_ratio((&with_error.0, &with_error.1), (&clean.0, &clean.1));
    assert!(ratio <= 1.0, "splicing with the error term moved the logits by {ratio:.2} of their error bound; on {}", machine());
    let (with_error, clean) = (with_error.0, clean.0);
    let spliced = logits(m, &ids, &mut Intervention::at(HOOK).with_sae(lossy.as_ref()).splice(Splice::Reconstruction));
    assert!(max_abs(&spliced, &clean) > 1.0);
    // Find a feature that fires, then ablate it (edits imply splicing with the error term).
    let acts = {
        let mut cap = sae_core::hooks::Capture::new([HOOK]);
        m.forward(std::slice::from_ref(&ids), &mut cap).unwrap();
        cap.take(HOOK).unwrap().flat_rows()
    };
    let codes = lossy.encode(acts).unwrap().to_dense().sum_dim(0).into_data().try_to_vec::<f32>().unwrap();
    let f = (0..n).max_by(|&a, &b| codes[a].total_cmp(&codes[b])).unwrap();
    assert!(codes[f] > 0.0);
    let ablated = logits(m, &ids, &mut Intervention::at(HOOK).with_sae(lossy.as_ref()).edit(FeatureEdit::Ablate(f)));
    assert!(max_abs(&ablated, &with_error) > 1e-2, "ablating feature {f} changed nothing");
    // Scaling by 1 is the with-error splice again, up to roundings: within the error model.
    let neutral = logits_and_final(m, &ids, &mut Intervention::at(HOOK).with_sae(lossy.as_ref()).splice(Splice::WithError));
    let doubled = logits_and_final(m, &ids, &mut Intervention::at(HOOK).with_sae(lossy.as_ref()).edit(FeatureEdit::Scale(f, 1.0)));
    let ratio = logit_error_ratio((&doubled.0, &doubled.1), (&neutral.0, &neutral.1));
    assert!(ratio <= 1.0, "scaling by 1 should be neutral: {ratio:.2} of the error bound; on {}", machine());
    let bad = m.forward(std::slice::from_ref(&ids), &mut Intervention::at(HOOK).with_sae(lossy.as_ref()).edit(FeatureEdit::Ablate(n)));
    assert!(bad.unwrap_err().to_string().contains("outside the SAE"));
}

#[test]
fn steering_with_a_decoder_direction_changes_the_greedy_continuation() {
    let m = model();
    let d = m.d_model();
    let prompt = m.tokenize("The capital of France is").unwrap();
    let plain = m.tokenizer().decode(&generate_greedy(m, &prompt, 6, &mut NoHooks).unwrap()).unwrap();
    assert!(plain.starts_with(" Paris"), "{plain:?}");
    // Feature 0's decoder row: the unit embedding of " London".
    let london = m.tokenize(" London").unwrap();
    assert_eq!(london.len(), 1);
    let probe = {
        let mut cap = sae_core::hooks::Capture::new(["hook_embed"]);
        m.forward(std::slice::from_ref(&london), &mut cap).unwrap();
        cap.take("hook_embed").unwrap().flat_rows().into_data().try_to_vec::<f32>().unwrap()
    };
    let norm = probe.iter().map(|v| v * v).sum::<f32>().sqrt();
    let mut dec = vec![0f32; 2 * d];
    dec[..d].iter_mut().zip(&probe).for_each(|(o, v)| *o = v / norm);
    dec[d] = 1.0;
    let steer_sae = sae(vec![0f32; d * 2], dec, d, 2);
    let dir = Intervention::direction(steer_sae.as_ref(), 0, 2.0).unwrap().into_data().try_to_vec::<f32>().unwrap();
    assert!(dir.iter().zip(&probe).all(|(a, b)| (a - 2.0 * b / norm).abs() < 1e-6), "the direction is the decoder row × scale");
    let mut steer = Intervention::at("blocks.3.hook_resid_post").with_sae(steer_sae.as_ref()).steer(0, 60.0);
    let steered = m.tokenizer().decode(&generate_greedy(m, &prompt, 6, &mut steer).unwrap()).unwrap();
    eprintln!("plain {plain:?}, steered {steered:?}");
    assert_ne!(steered, plain);
    assert!(!steered.starts_with(" Paris"), "{steered:?}");
    // The key/value cache gives the tokens a full recomputation gives, plain and steered: one
    // token at a time and all positions at once are different products, so equal up to a
    // near-tie within the logit error.
    let steer_at = || Intervention::at("blocks.3.hook_resid_post").with_sae(steer_sae.as_ref()).steer(0, 60.0);
    let fast = generate_greedy(m, &prompt, 6, &mut steer_at()).unwrap();
    let slow = generate_greedy_uncached(m, &prompt, 6, &mut steer_at()).unwrap();
    assert_same_or_near_tie(m, &prompt, &fast, &slow, &|| Box::new(steer_at()));
    let (fast, slow) = (generate_greedy(m, &prompt, 6, &mut NoHooks).unwrap(), generate_greedy_uncached(m, &prompt, 6, &mut NoHooks).unwrap());
    assert_same_or_near_tie(m, &prompt, &fast, &slow, &|| Box::new(NoHooks));
}

#[test]
fn cached_steps_give_the_logits_of_a_full_forward() {
    let m = model();
    let ids = m.tokenize("To be, or not to be, that is the question").unwrap();
    let (full, full_h) = logits_and_final(m, &ids, &mut NoHooks);
    let (s, v, d) = (ids.len(), m.config().vocab_size, m.d_model());
    let mut cache = sae_lm::KvCache::default();
    // The first 5 tokens at once, then one at a time, each step's final hidden state captured.
    let step = |new: &[u32], cache: &mut sae_lm::KvCache| {
        let mut capture = Capture::new([FINAL]);
        let logits = m.next_logits_cached(new, cache, &mut capture).unwrap().unwrap().into_data().try_to_vec::<f32>().unwrap();
        (logits, host(capture.get(FINAL).unwrap()))
    };
    let mut got = vec![step(&ids[..5], &mut cache)];
    for p in 5..s {
        got.push(step(&ids[p..p + 1], &mut cache));
    }
    assert_eq!(cache.len(), s);
    // One position at a time and all at once are different products: equal within the error
    // model, given the two final hidden states.
    for (j, p) in (4..s).enumerate() {
        let want = (&full[p * v..(p + 1) * v], &full_h[p * d..(p + 1) * d]);
        let ratio = logit_error_ratio((&got[j].0, &got[j].1), want);
        assert!(ratio <= 1.0, "position {p}: cached logits differ by {ratio:.2} of their error bound; on {}", machine());
    }
    // Past the context: an error, not a panic.
    let mut full_cache = sae_lm::KvCache::default();
    let long = vec![28u32; m.max_positions() + 1];
    assert!(m.next_logits_cached(&long, &mut full_cache, &mut NoHooks).unwrap().is_err());
}
