//! Properties of the architectures and formats over random shapes (proptest, Flex backend).

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use proptest::prelude::*;
use sae_core::format::{Format, StoreDtype, load_sae, save_sae};
use sae_core::params::host_f32;
use sae_core::rng::SplitMix64;
use sae_core::{KernelPolicy, SaeConfig, SparseCodes, TrainBatch, TrainContext};

fn random(rows: usize, cols: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = SplitMix64::new(seed);
    Tensor::from_data(TensorData::new((0..rows * cols).map(|_| rng.normal()).collect::<Vec<f32>>(), [rows, cols]), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    host_f32(t.into_data()).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, .. ProptestConfig::default() })]

    #[test]
    fn topk_rows_have_at_most_k_nonzeros(d_in in 1usize..12, d_sae in 1usize..48, n in 1usize..9, k_frac in 0.0f64..1.0, seed in any::<u64>()) {
        let k = 1 + ((d_sae - 1) as f64 * k_frac) as usize;
        let device = Device::flex();
        let sae = sae_arch::registry().init(SaeConfig::new("topk", d_in, d_sae).with("k", k), &device, seed).unwrap();
        let codes = sae.encode(random(n, d_in, seed ^ 1, &device)).unwrap();
        prop_assert!(host(codes.l0_per_row()).iter().all(|l0| *l0 <= k as f32));
        prop_assert_eq!(sae.decode(&codes).unwrap().dims(), [n, d_in]);
    }

    #[test]
    fn batchtopk_batch_has_at_most_kb_and_exactly_kb_when_all_positive(d_sae in 4usize..40, n in 1usize..8, k in 1usize..4, seed in any::<u64>()) {
        let device = Device::flex();
        let pre = random(n, d_sae, seed, &device);
        let acts = sae_kernels::portable::batch_topk(pre.clone(), k * n);
        let nnz: f32 = host(acts.not_equal_elem(0.0).float().sum()).iter().sum();
        prop_assert!(nnz <= (k * n) as f32);
        let shifted = sae_kernels::portable::batch_topk(pre.add_scalar(100.0), k * n);
        let nnz: f32 = host(shifted.not_equal_elem(0.0).float().sum()).iter().sum();
        prop_assert_eq!(nnz, (k * n) as f32);
    }

    #[test]
    fn sparse_decode_equals_dense_matmul(d_sae in 1usize..40, d_out in 1usize..10, n in 1usize..7, k_frac in 0.0f64..1.0, seed in any::<u64>()) {
        let k = 1 + ((d_sae - 1) as f64 * k_frac) as usize;
        let device = Device::flex();
        let (v, i) = sae_kernels::portable::topk_relu(random(n, d_sae, seed, &device), k);
        let codes = SparseCodes::topk(v, i, d_sae);
        let w = random(d_sae, d_out, seed ^ 7, &device);
        let a = host(sae_kernels::decode_codes(KernelPolicy::default(), &codes, w.clone()).unwrap());
        let b = host(codes.to_dense().matmul(w));
        for (x, y) in a.iter().zip(&b) {
            prop_assert!((x - y).abs() <= 1e-4 * (1.0 + y.abs()), "{} vs {}", x, y);
        }
    }

    #[test]
    fn matching_pursuit_residual_never_grows(d in 2usize..10, m in 2usize..30, seed in any::<u64>()) {
        use sae_arch::matching_pursuit::{MatchingPursuitHyper, matching_pursuit};
        let device = Device::flex();
        let w = random(m, d, seed, &device);
        let w = w.clone() / sae_kernels::row_norms(w).unsqueeze_dim(1);
        let x = random(3, d, seed ^ 3, &device);
        let mut prev = vec![f32::INFINITY; 3];
        for it in 1..=d {
            let h = MatchingPursuitHyper { residual_threshold: 0.0, max_iterations: Some(it), stop_on_duplicate_support: false };
            let r = host((x.clone() - matching_pursuit(x.clone(), w.clone(), &h).matmul(w.clone())).powi_scalar(2).sum_dim(1).sqrt());
            for (now, before) in r.iter().zip(&prev) {
                prop_assert!(*now <= before + 1e-4, "residual grew from {} to {}", before, now);
            }
            prev = r;
        }
    }

    #[test]
    fn jumprelu_ste_gradient_matches_formula(n in 1usize..6, d in 1usize..8, eps in 0.05f32..1.0, to_input in any::<bool>(), seed in any::<u64>()) {
        let device = Device::flex().autodiff();
        let pre_v: Vec<f32> = { let mut r = SplitMix64::new(seed); (0..n * d).map(|_| r.uniform(-1.0, 2.0)).collect() };
        let th_v: Vec<f32> = { let mut r = SplitMix64::new(seed ^ 5); (0..d).map(|_| r.uniform(0.0, 1.0)).collect() };
        let pre = Tensor::<2>::from_data(TensorData::new(pre_v.clone(), [n, d]), &device).require_grad();
        let th = Tensor::<1>::from_data(TensorData::new(th_v.clone(), [d]), &device).require_grad();
        let out = sae_arch::jumprelu::jumprelu_ste(pre.clone(), th.clone().unsqueeze_dim(0), eps, to_input);
        let g = out.sum().backward();
        let (gp, gt) = (host(pre.grad(&g).unwrap()), host(th.grad(&g).unwrap()));
        for j in 0..d {
            let mut want_t = 0.0f32;
            for i in 0..n {
                let (x, t) = (pre_v[i * d + j], th_v[j]);
                let k = (((x - t) / eps).abs() < 0.5) as i32 as f32;
                want_t -= t / eps * k;
                let want_p = (x > t) as i32 as f32 + if to_input { t / eps * k } else { 0.0 };
                prop_assert!((gp[i * d + j] - want_p).abs() <= 1e-4 * (1.0 + want_p.abs()));
            }
            prop_assert!((gt[j] - want_t).abs() <= 1e-4 * (1.0 + want_t.abs()), "{} vs {}", gt[j], want_t);
        }
    }

    #[test]
    fn every_architecture_saves_and_loads_identically(arch_idx in 0usize..8, d_in in 2usize..10, d_sae_mult in 1usize..5, seed in any::<u64>()) {
        let device = Device::flex();
        let d_sae = 4 * d_sae_mult;
        let cfg = match arch_idx {
            0 => SaeConfig::new("standard", d_in, d_sae),
            1 => SaeConfig::new("topk", d_in, d_sae).with("k", 2),
            2 => SaeConfig::new("batchtopk", d_in, d_sae).with("k", 2.0),
            3 => SaeConfig::new("jumprelu", d_in, d_sae),
            4 => SaeConfig::new("gated", d_in, d_sae),
            5 => SaeConfig::new("matryoshka", d_in, d_sae).with("k", 2.0).with("matryoshka_widths", serde_json::json!([2])),
            6 => SaeConfig::new("matching_pursuit", d_in, d_sae),
            _ => { let mut c = SaeConfig::new("skip_transcoder", d_in, d_sae); c.d_out = Some(d_in + 1); c }
        };
        let registry = sae_arch::registry();
        let sae = registry.init(cfg.clone(), &device, seed).unwrap();
        let x = random(3, d_in, seed ^ 9, &device);
        if cfg.d_out() == cfg.d_in {
            let out = sae.train_forward(&TrainBatch::autoencode(x.clone()), &TrainContext::plain()).unwrap();
            prop_assert!(out.loss.into_scalar::<f32>().is_finite());
        }
        let (c, p) = sae.inference_export().unwrap();
        let reference = registry.build(c, p, Path::new("<export>")).unwrap();
        let dir = tempfile::tempdir().unwrap();
        save_sae(sae.as_ref(), dir.path(), Format::SaeLens, StoreDtype::F32).unwrap();
        let loaded = load_sae(dir.path(), &registry, &device).unwrap();
        prop_assert_eq!(host(loaded.sae.forward(x.clone()).unwrap().output), host(reference.forward(x).unwrap().output));
    }
}

/// Decoder row norms of a freshly initialised SAE.
fn init_row_norms(cfg: SaeConfig) -> Vec<f32> {
    let device = Device::flex();
    let sae = sae_arch::registry().init(cfg, &device, 3).unwrap();
    host(sae_kernels::row_norms(sae.params().matrix("W_dec").unwrap()))
}

#[test]
fn saelens_architectures_initialise_decoder_rows_to_saelens_default_norm() {
    // SAELens's TrainingSAEConfig: decoder_init_norm = 0.1 unless set; `null` keeps Kaiming rows.
    for (arch, extra) in [("standard", None), ("jumprelu", None), ("gated", None), ("topk", Some(("k", serde_json::json!(2)))), ("batchtopk", Some(("k", serde_json::json!(2)))), ("matryoshka_batchtopk", Some(("k", serde_json::json!(2))))] {
        let mut cfg = SaeConfig::new(arch, 6, 24);
        if let Some((key, v)) = extra {
            cfg = cfg.with(key, v);
        }
        if arch == "matryoshka_batchtopk" {
            cfg = cfg.with("matryoshka_widths", serde_json::json!([8, 24]));
        }
        let norms = init_row_norms(cfg.clone());
        assert!(norms.iter().all(|n| (n - 0.1).abs() < 1e-5), "{arch}: {norms:?}");
        let kaiming = init_row_norms(cfg.with("decoder_init_norm", serde_json::Value::Null));
        assert!(kaiming.iter().all(|n| (n - 0.1).abs() > 1e-3), "{arch} with null: {kaiming:?}");
        let custom = init_row_norms(SaeConfig::new(arch, 6, 24).with("decoder_init_norm", 0.5).with("k", 2).with("matryoshka_widths", serde_json::json!([8, 24])));
        assert!(custom.iter().all(|n| (n - 0.5).abs() < 1e-5), "{arch} at 0.5: {custom:?}");
    }
    // sparsify's convention starts from unit rows whatever decoder_init_norm says.
    let unit = init_row_norms(SaeConfig::new("topk", 6, 24).with("k", 2).with("normalize_decoder", true));
    assert!(unit.iter().all(|n| (n - 1.0).abs() < 1e-5), "{unit:?}");
}
