//! Our encode/decode, training losses and gradients against numbers produced by the real
//! SAELens and sparsify packages (`fixtures/generate_reference.py`). Tolerance: relative to the
//! array's largest value (max |ours − theirs| / max |theirs|), from the f32 error model of
//! `sae_core::tolerance` (see [`tol`]), so that it holds for PyTorch's kernels and ours on any CPU.

use std::path::{Path, PathBuf};

use burn::tensor::{Bool, Device, Tensor, TensorData};
use sae_core::format::{load_sae, npy::read_npy, safetensors_io::read_safetensors};
use sae_core::params::{ParamTensor, host_f32};
use sae_core::{ParamSet, Sae, TrainBatch, TrainContext};

/// Two f32 computations of these fixtures (16 → 64 latents, 8 rows) may be this far apart:
/// chains of at most 32 products (a training step's forward, losses and gradients; matching
/// pursuit's iterations, two products each), every inner dimension ≤ 128 (a loss sums 8 × 16).
fn tol() -> f32 {
    sae_core::tolerance::network_depth(32, 128, 1.0) as f32
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/reference").join(name)
}

fn matrix(dir: &Path, file: &str, device: &Device) -> Tensor<2> {
    let a = read_npy(&dir.join(file)).unwrap();
    let [r, c] = a.as_matrix_shape(&dir.join(file), file).unwrap();
    Tensor::from_data(TensorData::new(a.values, [r, c]), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    host_f32(t.into_data()).unwrap()
}

fn rel_err(ours: &[f32], theirs: &[f32]) -> f32 {
    assert_eq!(ours.len(), theirs.len(), "length mismatch");
    let scale = theirs.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    ours.iter().zip(theirs).fold(0f32, |m, (a, b)| m.max((a - b).abs())) / scale
}

fn check(label: &str, ours: &[f32], theirs: &[f32]) -> f32 {
    let e = rel_err(ours, theirs);
    println!("{label:<60} max rel diff {e:.2e}");
    assert!(e <= tol(), "{label}: relative difference {e:.3e} > {:.3e}; on {}", tol(), sae_kernels::host::describe());
    e
}

fn check_inference(name: &str, sae: &dyn Sae, device: &Device) -> f32 {
    let dir = fixture(name);
    let x = matrix(&dir, "x.npy", device);
    let codes = sae.encode(x.clone()).unwrap().to_dense();
    let out = sae.forward(x).unwrap().output;
    let e1 = check(&format!("{name}: codes"), &host(codes), &read_npy(&dir.join("codes.npy")).unwrap().values);
    let e2 = check(&format!("{name}: output"), &host(out), &read_npy(&dir.join("output.npy")).unwrap().values);
    e1.max(e2)
}

#[test]
fn saelens_and_gemma_scope_inference_matches_reference() {
    let device = Device::flex();
    let registry = sae_arch::registry();
    let mut worst = 0f32;
    for name in [
        "saelens_standard",
        "saelens_standard_no_bdec",
        "saelens_standard_constant_norm",
        "saelens_standard_layer_norm",
        "saelens_topk",
        "saelens_topk_rescale",
        "saelens_topk_f16",
        "saelens_jumprelu",
        "saelens_jumprelu_bf16",
        "saelens_gated",
        "saelens_matching_pursuit",
        "saelens_transcoder",
        "saelens_skip_transcoder",
        "saelens_jumprelu_transcoder",
        "saelens_jumprelu_skip_transcoder",
        "train_batchtopk_inference",
        "train_matryoshka_inference",
        "train_topk_rescale_inference",
        "gemma_scope",
        "gemma_scope_compressed",
    ] {
        let loaded = load_sae(&fixture(name), &registry, &device).unwrap_or_else(|e| panic!("{name}: {e}"));
        // The half-precision fixtures really are stored in half precision.
        let want_dtype = if name.ends_with("_bf16") { "bfloat16" } else if name.ends_with("_f16") { "float16" } else { "float32" };
        assert_eq!(loaded.stored_dtype.name(), want_dtype, "{name}");
        worst = worst.max(check_inference(name, loaded.sae.as_ref(), &device));
    }
    println!("largest SAELens inference difference: {worst:.2e}");
}

#[test]
fn sparsify_inference_matches_reference() {
    let device = Device::flex();
    let registry = sae_arch::registry();
    for name in ["sparsify_topk", "sparsify_groupmax", "sparsify_skip", "sparsify_transcode"] {
        let loaded = load_sae(&fixture(name), &registry, &device).unwrap_or_else(|e| panic!("{name}: {e}"));
        check_inference(name, loaded.sae.as_ref(), &device);
    }
}

fn dead_mask(dir: &Path, device: &Device) -> (Tensor<1, Bool>, usize) {
    let m = read_npy(&dir.join("dead_mask.npy")).unwrap();
    let n_dead = m.values.iter().filter(|v| **v > 0.5).count();
    let n = m.values.len();
    (Tensor::<1>::from_data(TensorData::new(m.values, [n]), device).greater_elem(0.5), n_dead)
}

/// Replaces every parameter by a gradient-tracking leaf.
fn track(sae: &mut dyn Sae) {
    let p = std::mem::take(sae.params_mut());
    *sae.params_mut() = p.map(|_, t| t.require_grad());
}

fn grads_of(sae: &dyn Sae, grads: &burn::tensor::Gradients) -> Vec<(String, Vec<f32>)> {
    sae.params()
        .iter()
        .filter_map(|(name, t)| {
            let g = match t {
                ParamTensor::Matrix(t) => t.grad(grads).map(host),
                ParamTensor::Vector(t) => t.grad(grads).map(host),
            }?;
            Some((name.to_string(), g))
        })
        .collect()
}

fn load_training(name: &str, device: &Device, overrides: &[(&str, serde_json::Value)]) -> Box<dyn Sae> {
    let registry = sae_arch::registry();
    let loaded = load_sae(&fixture(name), &registry, device).unwrap_or_else(|e| panic!("{name}: {e}"));
    let mut cfg = loaded.sae.config().clone();
    for (k, v) in overrides {
        cfg.extra.insert((*k).to_string(), v.clone());
    }
    let params: ParamSet = loaded.sae.params().clone();
    registry.build(cfg, params, &fixture(name)).unwrap()
}

fn check_training(name: &str, overrides: &[(&str, serde_json::Value)]) {
    let device = Device::flex().autodiff();
    let dir = fixture(name);
    let mut sae = load_training(name, &device, overrides);
    track(sae.as_mut());
    let (mask, n_dead) = dead_mask(&dir, &device);
    let ctx = TrainContext { dead_mask: Some(mask), n_dead, sparsity_scale: 1.0 };
    let out = sae.train_forward(&TrainBatch::autoencode(matrix(&dir, "x.npy", &device)), &ctx).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("losses.json")).unwrap()).unwrap();
    let expected = &expected["losses"];
    for (term, value) in out.term_values() {
        let want = expected[term.as_str()].as_f64().unwrap_or_else(|| panic!("{name}: reference has no term {term}")) as f32;
        check(&format!("{name}: {term}"), &[value], &[want]);
    }
    check(&format!("{name}: total"), &[out.loss.clone().into_scalar::<f32>()], &[expected["total"].as_f64().unwrap() as f32]);
    check(&format!("{name}: codes"), &host(out.codes.to_dense().detach()), &read_npy(&dir.join("codes.npy")).unwrap().values);
    let grads = out.loss.backward();
    let ours = grads_of(sae.as_ref(), &grads);
    let theirs = read_safetensors(&dir.join("grads.safetensors")).unwrap();
    assert_eq!(ours.len(), theirs.len(), "{name}: gradient sets differ: ours {:?}", ours.iter().map(|g| &g.0).collect::<Vec<_>>());
    for t in theirs {
        let mine = &ours.iter().find(|(n, _)| *n == t.name).unwrap_or_else(|| panic!("{name}: no gradient for {}", t.name)).1;
        check(&format!("{name}: d loss / d {}", t.name), mine, &t.values);
    }
}

#[test]
fn saelens_training_losses_and_gradients_match_reference() {
    check_training("train_standard", &[]);
    check_training("train_topk_auxk", &[]);
    check_training("train_topk_rescale", &[]);
    check_training("train_jumprelu_step", &[]);
    check_training("train_jumprelu_tanh", &[]);
    check_training("train_jumprelu_quadratic", &[]);
    check_training("train_jumprelu_ste_to_input", &[]);
    // SAELens trains the decoder through the aux term too; the paper freezes it (our default).
    check_training("train_gated", &[("gated_aux_frozen_decoder", false.into())]);
    check_training("train_batchtopk", &[]);
    check_training("train_matryoshka", &[]);
    check_training("train_matryoshka_levelaux", &[]);
}

#[test]
fn sparsify_losses_match_reference() {
    let device = Device::flex();
    for name in ["sparsify_topk", "sparsify_skip", "sparsify_transcode"] {
        let dir = fixture(name);
        let sae = load_training(name, &device, &[("loss", "fvu".into())]);
        let (mask, n_dead) = dead_mask(&dir, &device);
        let y = dir.join("y.npy").exists().then(|| matrix(&dir, "y.npy", &device));
        let batch = TrainBatch { x: matrix(&dir, "x.npy", &device), y };
        let out = sae.train_forward(&batch, &TrainContext { dead_mask: Some(mask), n_dead, sparsity_scale: 1.0 }).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.join("losses.json")).unwrap()).unwrap();
        let l = &expected["losses"];
        for (term, value) in out.term_values() {
            let (key, scale) = match term.as_str() {
                "mse_loss" => ("fvu", 1.0),
                "auxiliary_reconstruction_loss" => ("auxk_loss", 1.0),
                "multi_topk_loss" => ("multi_topk_fvu", 1.0 / 8.0),
                other => panic!("unexpected term {other}"),
            };
            check(&format!("{name}: {term}"), &[value], &[l[key].as_f64().unwrap() as f32 * scale]);
        }
        check(&format!("{name}: output"), &host(out.output), &read_npy(&dir.join("output.npy")).unwrap().values);
    }
}

#[test]
fn our_batchtopk_export_matches_saelens_inference_model() {
    // SAELens ran one training forward (updating the threshold EMA) and saved the JumpReLU form.
    let device = Device::flex();
    for (train, inference) in [("train_batchtopk", "train_batchtopk_inference"), ("train_matryoshka", "train_matryoshka_inference"), ("train_topk_rescale", "train_topk_rescale_inference")] {
        let dir = fixture(train);
        let mut sae = load_training(train, &device, &[]);
        let (mask, n_dead) = dead_mask(&dir, &device);
        let out = sae.train_forward(&TrainBatch::autoencode(matrix(&dir, "x.npy", &device)), &TrainContext { dead_mask: Some(mask), n_dead, sparsity_scale: 1.0 }).unwrap();
        sae.after_step(&out).unwrap();
        let (cfg, params) = sae.inference_export().unwrap();
        let exported = sae_arch::registry().build(cfg, params, &dir).unwrap();
        check_inference(inference, exported.as_ref(), &device);
    }
}
