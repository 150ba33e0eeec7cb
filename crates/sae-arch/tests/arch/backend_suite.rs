//! The same tests on every enabled backend: Flex always, NdArray with `--features ndarray`,
//! WGPU with `--features wgpu` (Mesa's software Vulkan driver in CI). Shapes are small and fixed
//! so that WGPU's kernel JIT stays cheap; random-shape properties live in `properties.rs`.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::format::{Format, StoreDtype, load_sae, npy::read_npy, save_sae};
use sae_core::params::host_f32;
use sae_core::rng::SplitMix64;
use sae_core::{SaeConfig, TrainBatch, TrainContext, tolerance};

fn random(rows: usize, cols: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = SplitMix64::new(seed);
    let v: Vec<f32> = (0..rows * cols).map(|_| rng.normal()).collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    host_f32(t.into_data()).unwrap()
}

/// How far two f32 computations of one result of these tests may be apart, relative to the
/// array's largest value (`sae_core::tolerance`): any summation order, any backend (Flex,
/// NdArray, WGPU, whose lavapipe subgroups follow the host CPU's SIMD width). Chains of at most
/// 12 products (encode, decode, loss, their gradients, AuxK), every inner dimension ≤ 64 (the
/// shapes here are at most 40 wide; a loss row sums at most 64 terms).
fn parity() -> f32 {
    tolerance::network_depth(12, 64, 1.0) as f32
}

/// One product of inner dimension ≤ 64 computed in two orders (see [`parity`]).
fn one_product() -> f32 {
    tolerance::between_implementations(64) as f32
}

/// The SAELens/sparsify fixtures (16 → 64 latents, 8 rows) against PyTorch's f32: chains of at
/// most 32 products (matching pursuit's iterations, two products each, bound every other
/// architecture's forward), inner dimensions ≤ 128.
fn fixture_parity() -> f32 {
    tolerance::network_depth(32, 128, 1.0) as f32
}

fn max_rel(a: &[f32], b: &[f32]) -> f32 {
    let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-12);
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs())) / scale
}

/// One config per registered architecture (and variant), at small sizes.
pub fn arch_configs() -> Vec<SaeConfig> {
    let tc = |arch: &str| {
        let mut c = SaeConfig::new(arch, 8, 32);
        c.d_out = Some(6);
        c
    };
    vec![
        SaeConfig::new("standard", 8, 32).with("l1_coefficient", 0.1),
        SaeConfig::new("standard", 8, 32).with("decoder_norm", "unit"),
        SaeConfig::new("topk", 8, 32).with("k", 4),
        SaeConfig::new("topk", 8, 32).with("k", 4).with("rescale_acts_by_decoder_norm", true).with("multi_topk", true),
        SaeConfig::new("topk", 8, 32).with("k", 4).with("activation", "groupmax").with("skip_connection", true),
        SaeConfig::new("batchtopk", 8, 32).with("k", 4.0),
        SaeConfig::new("jumprelu", 8, 32).with("pre_act_loss_coefficient", 0.01),
        SaeConfig::new("gated", 8, 32),
        SaeConfig::new("matryoshka_batchtopk", 8, 32).with("k", 4.0).with("matryoshka_widths", serde_json::json!([4, 12])),
        SaeConfig::new("matching_pursuit", 8, 32),
        tc("transcoder"),
        tc("skip_transcoder"),
        tc("jumprelu_transcoder"),
        tc("jumprelu_skip_transcoder"),
    ]
}

/// Every architecture: forward shapes, a training forward with a dead mask, and save → load →
/// identical outputs in SAELens format (and sparsify for TopK), f32 exactly and f16 within its
/// precision.
pub fn every_architecture_round_trips(device: &Device) {
    let registry = sae_arch::registry();
    for (i, cfg) in arch_configs().into_iter().enumerate() {
        let label = format!("{} {:?}", cfg.architecture, cfg.extra);
        let sae = registry.init(cfg.clone(), device, 7 + i as u64).unwrap_or_else(|e| panic!("{label}: {e}"));
        let x = random(5, cfg.d_in, 100 + i as u64, device);
        let fwd = sae.forward(x.clone()).unwrap();
        assert_eq!(fwd.output.dims(), [5, cfg.d_out()], "{label}");
        assert_eq!(fwd.codes.to_dense().dims(), [5, cfg.d_sae], "{label}");
        let dead = Tensor::<1>::from_data(TensorData::new((0..cfg.d_sae).map(|j| (j % 3 == 0) as i32 as f32).collect::<Vec<_>>(), [cfg.d_sae]), device).greater_elem(0.5);
        let n_dead = cfg.d_sae.div_ceil(3);
        let ctx = TrainContext { dead_mask: Some(dead), n_dead, sparsity_scale: 1.0 };
        let autoencode = sae.train_forward(&TrainBatch::autoencode(x.clone()), &ctx);
        let out = if cfg.d_out() == cfg.d_in {
            autoencode.unwrap_or_else(|e| panic!("{label}: {e}"))
        } else {
            // A transcoder given no target is a typed shape error, not a panic.
            assert!(matches!(autoencode, Err(sae_core::SaeError::ShapeMismatch { .. })), "{label}: {autoencode:?}");
            let y = random(5, cfg.d_out(), 200 + i as u64, device);
            sae.train_forward(&TrainBatch { x: x.clone(), y: Some(y) }, &ctx).unwrap_or_else(|e| panic!("{label}: {e}"))
        };
        let terms = out.term_values();
        assert!(terms.iter().all(|(_, v)| v.is_finite()) && out.loss.clone().into_scalar::<f32>().is_finite(), "{label}: {terms:?}");
        assert_eq!(out.output.dims(), [5, cfg.d_out()], "{label}");

        let (exp_cfg, exp_params) = sae.inference_export().unwrap();
        let reference = registry.build(exp_cfg, exp_params, Path::new("<export>")).unwrap();
        let want = host(reference.forward(x.clone()).unwrap().output);
        let dir = tempfile::tempdir().unwrap();
        let mut formats = vec![Format::SaeLens];
        if reference.config().architecture == "topk" && !reference.config().extra.get("rescale_acts_by_decoder_norm").and_then(|v| v.as_bool()).unwrap_or(false) {
            formats.push(Format::Sparsify);
        }
        for format in formats {
            let path = dir.path().join(format.name());
            save_sae(sae.as_ref(), &path, format, StoreDtype::F32).unwrap_or_else(|e| panic!("{label} {format:?}: {e}"));
            let loaded = load_sae(&path, &registry, device).unwrap();
            assert_eq!(loaded.format, format);
            let got = host(loaded.sae.forward(x.clone()).unwrap().output);
            assert_eq!(got, want, "{label}: {format:?} round trip changed the outputs");
        }
        let half = dir.path().join("f16");
        save_sae(sae.as_ref(), &half, Format::SaeLens, StoreDtype::F16).unwrap();
        let loaded = load_sae(&half, &registry, device).unwrap();
        assert_eq!(loaded.stored_dtype, StoreDtype::F16);
        let got = host(loaded.sae.forward(x).unwrap().output);
        let err = max_rel(&got, &want);
        assert!(err < 2e-2, "{label}: f16 round trip error {err}");
    }
}

/// TopK codes never have more than k non-zeros per row.
pub fn topk_has_at_most_k_nonzeros(device: &Device) {
    let sae = sae_arch::registry().init(SaeConfig::new("topk", 8, 40).with("k", 5), device, 3).unwrap();
    let codes = sae.encode(random(9, 8, 4, device)).unwrap();
    for l0 in host(codes.l0_per_row()) {
        assert!(l0 <= 5.0, "row with {l0} active latents");
    }
}

/// BatchTopK keeps exactly k·B activations when at least that many are positive.
pub fn batchtopk_keeps_exactly_k_times_batch(device: &Device) {
    let registry = sae_arch::registry();
    let sae = registry.init(SaeConfig::new("batchtopk", 8, 40).with("k", 3.0), device, 5).unwrap();
    let mut params = sae.params().clone();
    params.set_vector("b_enc", Tensor::full([40], 50.0, device)); // every pre-activation positive
    let sae = registry.build(sae.config().clone(), params, Path::new("<test>")).unwrap();
    let codes = sae.encode(random(6, 8, 6, device)).unwrap();
    let total: f32 = host(codes.l0_per_row()).iter().sum();
    assert_eq!(total, 18.0);
    // `per_row_warmup`: during the sparsity warm-up each row keeps exactly round(k); after it,
    // the batch keeps k·B in total.
    let cfg = sae.config().clone().with("per_row_warmup", true);
    let sae = registry.build(cfg, sae.params().clone(), Path::new("<test>")).unwrap();
    let batch = sae_core::TrainBatch::autoencode(random(6, 8, 6, device));
    let warm = sae_core::TrainContext { sparsity_scale: 0.5, ..sae_core::TrainContext::plain() };
    let out = sae.train_forward(&batch, &warm).unwrap();
    assert_eq!(host(out.codes.l0_per_row()), vec![3.0; 6]);
    let out = sae.train_forward(&batch, &sae_core::TrainContext::plain()).unwrap();
    assert_eq!(host(out.codes.l0_per_row()).iter().sum::<f32>(), 18.0);
}

/// JumpReLU's `topk_warmup_k`: during the sparsity warm-up each row keeps exactly k latents and
/// every threshold moves 1 % of the way to the smallest kept activation; after it, the codes
/// are JumpReLU's (every pre-activation above its threshold).
pub fn jumprelu_topk_warmup_keeps_k_then_thresholds(device: &Device) {
    let registry = sae_arch::registry();
    let cfg = SaeConfig::new("jumprelu", 8, 40).with("topk_warmup_k", 3).with("jumprelu_init_threshold", 1.0);
    let sae = registry.init(cfg, device, 5).unwrap();
    let mut params = sae.params().clone();
    params.set_vector("b_enc", Tensor::full([40], 50.0, device)); // every pre-activation ≈ 50
    let mut sae = registry.build(sae.config().clone(), params, Path::new("<test>")).unwrap();
    let batch = sae_core::TrainBatch::autoencode(random(6, 8, 6, device));
    let warm = sae_core::TrainContext { sparsity_scale: 0.5, ..sae_core::TrainContext::plain() };
    let out = sae.train_forward(&batch, &warm).unwrap();
    assert_eq!(host(out.codes.l0_per_row()), vec![3.0; 6]);
    let kept = host(out.codes.to_dense());
    let min_kept = kept.iter().copied().filter(|v| *v > 0.0).fold(f32::INFINITY, f32::min);
    assert!(min_kept > 40.0, "{min_kept}");
    sae.after_step(&out).unwrap();
    let want = 0.99 * 1.0 + 0.01 * min_kept as f64;
    for t in host(sae.params().vector("threshold").unwrap()) {
        assert!((t as f64 - want).abs() < 1e-4, "threshold {t}, want {want}");
    }
    // After the warm-up: every latent whose pre-activation (≈ 50) passes its threshold (≈ 1.5).
    let out = sae.train_forward(&batch, &sae_core::TrainContext::plain()).unwrap();
    assert_eq!(host(out.codes.l0_per_row()), vec![40.0; 6]);
}

/// JumpReLU and step straight-through estimators against a hand-computed case.
pub fn jumprelu_ste_gradients_match_hand_computation(device: &Device) {
    let device = device.clone().autodiff();
    let pre = || Tensor::<2>::from_floats([[0.0, 0.5, 1.0], [0.98, 1.02, 2.0]], &device).require_grad();
    let theta = || Tensor::<1>::from_floats([1.0, 1.0, 1.0], &device).require_grad();
    for to_input in [false, true] {
        let (p, t) = (pre(), theta());
        let out = sae_arch::jumprelu::jumprelu_ste(p.clone(), t.clone().unsqueeze_dim(0), 0.1, to_input);
        assert_eq!(host(out.clone().detach()), vec![0.0, 0.0, 0.0, 0.0, 1.02, 2.0]);
        let g = out.sum().backward();
        // In the window |pre − θ| < ε/2 = 0.05: (0,2), (1,0), (1,1); each gives −θ/ε = −10 to θ.
        assert_eq!(host(t.grad(&g).unwrap()), vec![-10.0, -10.0, -10.0]);
        let ste = if to_input { 10.0 } else { 0.0 };
        assert_eq!(host(p.grad(&g).unwrap()), vec![0.0, 0.0, ste, ste, 1.0 + ste, 1.0]);

        let (p, t) = (pre(), theta());
        let step = sae_arch::jumprelu::step_ste(p.clone(), t.clone().unsqueeze_dim(0), 0.1, to_input);
        assert_eq!(host(step.clone().detach()), vec![0.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
        let g = step.sum().backward();
        assert_eq!(host(t.grad(&g).unwrap()), vec![-10.0, -10.0, -10.0]);
        if to_input {
            assert_eq!(host(p.grad(&g).unwrap()), vec![0.0, 0.0, 10.0, 10.0, 10.0, 0.0]);
        }
    }
}

/// With unit-norm atoms, the matching-pursuit residual norm never grows with more iterations.
pub fn matching_pursuit_residual_never_grows(device: &Device) {
    use sae_arch::matching_pursuit::{MatchingPursuitHyper, matching_pursuit};
    let w = random(24, 8, 9, device);
    let w = w.clone() / sae_kernels::row_norms(w).unsqueeze_dim(1);
    let x = random(4, 8, 10, device);
    let mut prev = vec![f32::INFINITY; 4];
    for it in 1..=8 {
        let h = MatchingPursuitHyper { residual_threshold: 0.0, max_iterations: Some(it), stop_on_duplicate_support: false };
        let acts = matching_pursuit(x.clone(), w.clone(), &h);
        let r = host((x.clone() - acts.matmul(w.clone())).powi_scalar(2).sum_dim(1).sqrt());
        for (now, before) in r.iter().zip(&prev) {
            assert!(*now <= before + 1e-5, "iteration {it}: residual grew from {before} to {now}");
        }
        prev = r;
    }
}

/// Reference fixtures from SAELens and sparsify reproduce on this backend.
pub fn reference_fixtures_reproduce(device: &Device) {
    let registry = sae_arch::registry();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/reference");
    for name in ["saelens_topk", "saelens_jumprelu", "saelens_gated", "saelens_standard_layer_norm", "saelens_matching_pursuit", "sparsify_groupmax"] {
        let dir = root.join(name);
        let sae = load_sae(&dir, &registry, device).unwrap().sae;
        let x = read_npy(&dir.join("x.npy")).unwrap();
        let [r, c] = x.as_matrix_shape(&dir, "x").unwrap();
        let out = host(sae.forward(Tensor::from_data(TensorData::new(x.values, [r, c]), device)).unwrap().output);
        let err = max_rel(&out, &read_npy(&dir.join("output.npy")).unwrap().values);
        assert!(err <= fixture_parity(), "{name}: {err:.3e} > {:.3e}; on {}", fixture_parity(), sae_kernels::host::describe());
    }
}

// The hot-path kernels against their references: sparse decode, the three sparse products,
// the fused TopK encoder.
mod kernels;
use kernels::{batch_topk_and_groupmax_encode_equal_dense_path, dense_kernels_equal_burn_ops, sparse_decode_equals_dense_path, sparse_kernels_equal_reference, topk_encode_equals_dense_path};

macro_rules! backend_suite {
    ($backend:ident, $device:expr) => {
        mod $backend {
            use super::*;

            fn device() -> Device {
                $device
            }

            #[test]
            fn every_architecture_round_trips() {
                super::every_architecture_round_trips(&device());
            }
            #[test]
            fn topk_has_at_most_k_nonzeros() {
                super::topk_has_at_most_k_nonzeros(&device());
            }
            #[test]
            fn batchtopk_keeps_exactly_k_times_batch() {
                super::batchtopk_keeps_exactly_k_times_batch(&device());
            }
            #[test]
            fn jumprelu_topk_warmup_keeps_k_then_thresholds() {
                super::jumprelu_topk_warmup_keeps_k_then_thresholds(&device());
            }
            #[test]
            fn jumprelu_ste_gradients_match_hand_computation() {
                super::jumprelu_ste_gradients_match_hand_computation(&device());
            }
            #[test]
            fn matching_pursuit_residual_never_grows() {
                super::matching_pursuit_residual_never_grows(&device());
            }
            #[test]
            fn sparse_decode_equals_dense_path() {
                super::sparse_decode_equals_dense_path(&device());
            }
            #[test]
            fn sparse_kernels_equal_reference() {
                super::sparse_kernels_equal_reference(&device());
            }
            #[test]
            fn topk_encode_equals_dense_path() {
                super::topk_encode_equals_dense_path(&device());
            }
            #[test]
            fn batch_topk_and_groupmax_encode_equal_dense_path() {
                super::batch_topk_and_groupmax_encode_equal_dense_path(&device());
            }
            #[test]
            fn dense_kernels_equal_burn_ops() {
                super::dense_kernels_equal_burn_ops(&device());
            }
            #[test]
            fn reference_fixtures_reproduce() {
                super::reference_fixtures_reproduce(&device());
            }
        }
    };
}

backend_suite!(flex, Device::flex());

#[cfg(feature = "ndarray")]
backend_suite!(ndarray, {
    #[allow(deprecated)]
    Device::ndarray()
});

#[cfg(feature = "wgpu")]
backend_suite!(wgpu, Device::wgpu(burn::tensor::DeviceKind::DefaultDevice));
