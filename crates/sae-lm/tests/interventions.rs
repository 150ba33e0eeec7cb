//! Interventions on SmolLM2 with SAEs built by hand, so the expected effect is known:
//! - an exact SAE (`d_sae = 2·d`, `W_enc = [I, −I]`, `W_dec = [I; −I]`: `relu(x) − relu(−x) = x`)
//!   spliced in changes nothing: CE_sae = CE_clean, KL 0, CE recovered 1; zero-ablation costs loss;
//! - splicing with the error term and no edits changes nothing; ablating a feature does;
//! - steering with a decoder direction equal to the embedding of " London" turns the greedy
//!   continuation of "The capital of France is" away from " Paris." (asserted), towards London.

mod common;

use std::path::Path;
use std::sync::OnceLock;

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::hooks::NoHooks;
use sae_core::params::{ParamSet, ParamTensor};
use sae_core::{Sae, SaeConfig};
use sae_data::assets::{AssetCache, catalog};
use sae_lm::downstream::downstream_loss;
use sae_lm::generate::{generate_greedy, generate_greedy_uncached, next_token_loss};
use sae_lm::intervene::{FeatureEdit, Intervention, Splice};
use sae_lm::smollm2::SmolLm2;
use sae_lm::{LanguageModel, LmError};

use common::max_abs;

const HOOK: &str = "blocks.5.hook_resid_post";

fn model() -> &'static SmolLm2 {
    static M: OnceLock<SmolLm2> = OnceLock::new();
    M.get_or_init(|| {
        let dir = AssetCache::from_env().fetch(&catalog::SMOLLM2, |l| eprintln!("{l}")).unwrap_or_else(|e| panic!("{e}"));
        SmolLm2::load(&dir.join("SmolLM2-135M-Instruct.Q4_1.gguf"), &Device::flex()).unwrap()
    })
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
    // The same numbers by hand from the per-token losses.
    let clean = next_token_loss(m, &windows, &mut NoHooks).unwrap();
    let zero = next_token_loss(m, &windows, &mut Intervention::at(HOOK).splice(Splice::Zero)).unwrap();
    assert!((clean.mean_nll() - r.ce_clean).abs() < 1e-5 && (zero.mean_nll() - r.ce_zero).abs() < 1e-5);
    let kl = zero.kl_from(&clean).unwrap();
    assert!((kl - r.kl_zero).abs() < 1e-4, "{kl} vs {}", r.kl_zero);
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
    let clean = logits(m, &ids, &mut NoHooks);
    let mut neutral = Intervention::at(HOOK).with_sae(lossy.as_ref()).splice(Splice::WithError);
    let with_error = logits(m, &ids, &mut neutral);
    assert_eq!(neutral.calls, 1);
    assert!(max_abs(&with_error, &clean) < 1e-2, "{}", max_abs(&with_error, &clean));
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
    let doubled = logits(m, &ids, &mut Intervention::at(HOOK).with_sae(lossy.as_ref()).edit(FeatureEdit::Scale(f, 1.0)));
    assert!(max_abs(&doubled, &with_error) < 1e-2, "scaling by 1 should be neutral");
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
    // The key/value cache gives the tokens a full recomputation gives, plain and steered.
    let mut steer = Intervention::at("blocks.3.hook_resid_post").with_sae(steer_sae.as_ref()).steer(0, 60.0);
    let slow = generate_greedy_uncached(m, &prompt, 6, &mut steer).unwrap();
    assert_eq!(m.tokenizer().decode(&slow).unwrap(), steered);
    assert_eq!(generate_greedy_uncached(m, &prompt, 6, &mut NoHooks).unwrap(), generate_greedy(m, &prompt, 6, &mut NoHooks).unwrap());
}

#[test]
fn cached_steps_give_the_logits_of_a_full_forward() {
    let m = model();
    let ids = m.tokenize("To be, or not to be, that is the question").unwrap();
    let full = m.forward(std::slice::from_ref(&ids), &mut NoHooks).unwrap();
    let [_, s, v] = full.dims();
    let mut cache = sae_lm::KvCache::default();
    // The first 5 tokens at once, then one at a time.
    let mut got = vec![m.next_logits_cached(&ids[..5], &mut cache, &mut NoHooks).unwrap().unwrap()];
    for p in 5..s {
        got.push(m.next_logits_cached(&ids[p..p + 1], &mut cache, &mut NoHooks).unwrap().unwrap());
    }
    assert_eq!(cache.len(), s);
    for (j, p) in (4..s).enumerate() {
        let want = full.clone().slice([0..1, p..p + 1, 0..v]).reshape([v]).into_data().try_to_vec::<f32>().unwrap();
        let have = got[j].clone().into_data().try_to_vec::<f32>().unwrap();
        let err = max_abs(&have, &want);
        assert!(err < 2e-3, "position {p}: cached logits differ by {err}");
    }
    // Past the context: an error, not a panic.
    let mut full_cache = sae_lm::KvCache::default();
    let long = vec![28u32; m.max_positions() + 1];
    assert!(m.next_logits_cached(&long, &mut full_cache, &mut NoHooks).unwrap().is_err());
}
