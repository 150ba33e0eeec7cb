//! The same tests on every enabled backend: Flex always, NdArray with `--features ndarray`,
//! WGPU with `--features wgpu` (Mesa's software Vulkan driver in CI). Shapes are small and fixed
//! so that WGPU's kernel JIT stays cheap; random-shape properties live in `properties.rs`.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::format::{Format, StoreDtype, load_sae, npy::read_npy, save_sae};
use sae_core::params::host_f32;
use sae_core::rng::SplitMix64;
use sae_core::{SaeConfig, SparseCodes, TrainBatch, TrainContext, ops};

fn random(rows: usize, cols: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = SplitMix64::new(seed);
    let v: Vec<f32> = (0..rows * cols).map(|_| rng.normal()).collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

fn host<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    host_f32(t.into_data())
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
    let w = w.clone() / ops::row_norms(w).unsqueeze_dim(1);
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

/// The sparse decode equals the dense path, forward and gradients.
pub fn sparse_decode_equals_dense_path(device: &Device) {
    let ad = device.clone().autodiff();
    let w = random(30, 7, 11, &ad).require_grad();
    let pre = random(6, 30, 12, &ad).require_grad();
    let (values, indices) = ops::topk_relu(pre.clone(), 5);
    let codes = SparseCodes::topk(values, indices, 30);
    let sparse = codes.times_decoder(w.clone());
    let dense = codes.to_dense().matmul(w.clone());
    assert!(max_rel(&host(sparse.clone().detach()), &host(dense.clone().detach())) < 1e-5);
    let gs = (sparse.powi_scalar(2)).sum().backward();
    let (gw_s, gp_s) = (host(w.grad(&gs).unwrap()), host(pre.grad(&gs).unwrap()));
    let w2 = random(30, 7, 11, &ad).require_grad();
    let pre2 = random(6, 30, 12, &ad).require_grad();
    let (values, indices) = ops::topk_relu(pre2.clone(), 5);
    let dense = SparseCodes::topk(values, indices, 30).to_dense().matmul(w2.clone());
    let gd = dense.powi_scalar(2).sum().backward();
    assert!(max_rel(&gw_s, &host(w2.grad(&gd).unwrap())) < 1e-5);
    assert!(max_rel(&gp_s, &host(pre2.grad(&gd).unwrap())) < 1e-5);
}

/// Indices `[n, k]` for the kernel tests: each row names distinct latents, latents repeat across
/// rows (up to every row naming latent 0), and with `invalid` one slot per row is out of range
/// (`-1`, or `m + 2`).
fn kernel_indices(n: usize, k: usize, m: usize, invalid: bool) -> Vec<i64> {
    let mut rng = SplitMix64::new(77);
    let mut out = Vec::with_capacity(n * k);
    for r in 0..n {
        let mut row: Vec<i64> = vec![0];
        while row.len() < k {
            let c = (rng.next_u64() % m as u64) as i64;
            if !row.contains(&c) {
                row.push(c);
            }
        }
        if invalid {
            row[k - 1] = if r % 2 == 0 { -1 } else { (m + 2) as i64 };
        }
        out.extend(row);
    }
    out
}

/// The sparse-product kernels of this backend (`ops::kernels`: host threads on Flex/NdArray,
/// CubeCL on WGPU) against a hand-written f64 triple loop, on odd sizes, with latents shared by
/// many rows and out-of-range indices (which contribute nothing); `scatter_outer` gives the same
/// bits twice; under autodiff, the gradients equal those of the portable burn ops.
pub fn sparse_kernels_equal_reference(device: &Device) {
    assert!(ops::kernels::available(device), "no sparse kernels on {device:?}");
    let (n, k, m, d) = (9, 5, 23, 13);
    let coeffs = random(n, k, 41, device);
    let x = random(n, d, 42, device);
    let rows = random(m, d, 43, device);
    let idx_host = kernel_indices(n, k, m, true);
    let idx = Tensor::<2, burn::tensor::Int>::from_data(TensorData::new(idx_host.clone(), [n, k]), device);
    let (c, xv, rv) = (host(coeffs.clone()), host(x.clone()), host(rows.clone()));
    let valid = |i: i64| i >= 0 && (i as usize) < m;
    let mut decode = vec![0f64; n * d];
    let mut dots = vec![0f64; n * k];
    let mut scatter = vec![0f64; m * d];
    for r in 0..n {
        for j in 0..k {
            let i = idx_host[r * k + j];
            if !valid(i) {
                continue;
            }
            let i = i as usize;
            for col in 0..d {
                decode[r * d + col] += c[r * k + j] as f64 * rv[i * d + col] as f64;
                dots[r * k + j] += xv[r * d + col] as f64 * rv[i * d + col] as f64;
                scatter[i * d + col] += c[r * k + j] as f64 * xv[r * d + col] as f64;
            }
        }
    }
    let f = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect::<Vec<f32>>();
    let got_decode = host(ops::kernels::sparse_decode(coeffs.clone(), idx.clone(), rows.clone()));
    assert!(max_rel(&got_decode, &f(decode)) < 1e-5, "sparse_decode");
    let got_dots = host(ops::kernels::gather_dot(x.clone(), idx.clone(), rows.clone()));
    assert!(max_rel(&got_dots, &f(dots)) < 1e-5, "gather_dot");
    let got_scatter = host(ops::kernels::scatter_outer(coeffs.clone(), idx.clone(), x.clone(), m));
    assert!(max_rel(&got_scatter, &f(scatter)) < 1e-5, "scatter_outer");
    let again = host(ops::kernels::scatter_outer(coeffs, idx, x, m));
    assert_eq!(got_scatter, again, "scatter_outer is not deterministic");

    // Gradients through both kernels against autodiff of the portable ops (valid indices only:
    // the portable `select` rejects out-of-range ones).
    let idx_host = kernel_indices(n, k, m, false);
    let grads = |kernels: bool| {
        let ad = device.clone().autodiff();
        let idx = Tensor::<2, burn::tensor::Int>::from_data(TensorData::new(idx_host.clone(), [n, k]), &ad);
        let coeffs = random(n, k, 41, &ad).require_grad();
        let x = random(n, d, 42, &ad).require_grad();
        let rows = random(m, d, 43, &ad).require_grad();
        let (decoded, dots) = if kernels {
            (ops::kernels::sparse_decode(coeffs.clone(), idx.clone(), rows.clone()), ops::kernels::gather_dot(x.clone(), idx.clone(), rows.clone()))
        } else {
            let gathered = rows.clone().select(0, idx.clone().reshape([n * k])).reshape([n, k, d]);
            (ops::sparse_decode_portable(coeffs.clone(), idx.clone(), rows.clone()), (gathered * x.clone().reshape([n, 1, d])).sum_dim(2).reshape([n, k]))
        };
        let loss = decoded.powi_scalar(2).sum() + dots.sin().sum();
        let g = loss.backward();
        [host(coeffs.grad(&g).unwrap()), host(x.grad(&g).unwrap()), host(rows.grad(&g).unwrap())]
    };
    let (fast, portable) = (grads(true), grads(false));
    for (name, (a, b)) in ["coeffs", "x", "rows"].iter().zip(fast.iter().zip(&portable)) {
        assert!(b.iter().any(|v| *v != 0.0), "{name}: zero reference gradient");
        let err = max_rel(a, b);
        assert!(err < 1e-5, "gradient of {name}: max relative difference {err}");
    }
}

/// Loss and gradients of `topk_encode` (with decoder-norm scale and an AuxK selection) against
/// the dense path: `topk(relu(pre))` and a masked top-k over the dense pre-activations. Returns
/// `(loss, [grad xc, grad W_enc, grad b_enc, grad W_dec])`.
fn topk_encode_loss_and_grads(device: &Device, fused: bool) -> (Vec<f32>, Vec<Vec<f32>>) {
    let ad = device.clone().autodiff();
    let (n, d_in, d_sae, k, k_aux) = (6, 7, 30, 5, 4);
    let xc = random(n, d_in, 21, &ad).require_grad();
    let w_enc = random(d_in, d_sae, 22, &ad).require_grad();
    let b_enc = random(1, d_sae, 23, &ad).reshape([d_sae]).require_grad();
    let w_dec = random(d_sae, d_in, 24, &ad).require_grad();
    let dead_host: Vec<f32> = (0..d_sae).map(|j| (j % 3 == 1) as u8 as f32).collect();
    let dead = Tensor::<1>::from_data(TensorData::new(dead_host, [d_sae]), &ad).greater_elem(0.5);
    let enc = ops::LinearEncoder { w_enc: w_enc.clone(), b_enc: b_enc.clone(), scale: Some(ops::row_norms(w_dec.clone())) };
    let ((values, indices), (aux_v, aux_i)) = if fused {
        let sel = ops::topk_encode(xc.clone(), &enc, k, Some(ops::AuxSelect { dead: &dead, k: k_aux }));
        ((sel.values, sel.indices), sel.aux.expect("aux selection"))
    } else {
        let pre = enc.pre(xc.clone());
        let main = ops::topk_relu(pre.clone(), k);
        (main, pre.mask_fill(dead.clone().bool_not().unsqueeze_dim(0), f32::NEG_INFINITY).topk_with_indices(k_aux, 1))
    };
    let recon = ops::sparse_decode(values, indices, w_dec.clone());
    let aux = ops::sparse_decode(aux_v, aux_i, w_dec.clone());
    let loss = (recon - xc.clone()).powi_scalar(2).sum() + aux.powi_scalar(2).sum().mul_scalar(0.5);
    let g = loss.backward();
    let grads = vec![host(xc.grad(&g).unwrap()), host(w_enc.grad(&g).unwrap()), host(b_enc.grad(&g).unwrap()), host(w_dec.grad(&g).unwrap())];
    (host(loss.detach()), grads)
}

/// The fused TopK encoder (the host kernel on Flex/NdArray, burn ops and the CubeCL sparse kernels
/// on WGPU) equals the dense
/// path: loss, and gradients of the input, `W_enc`, `b_enc` and (through the scale) `W_dec`.
pub fn topk_encode_equals_dense_path(device: &Device) {
    let (loss_f, grads_f) = topk_encode_loss_and_grads(device, true);
    let (loss_d, grads_d) = topk_encode_loss_and_grads(device, false);
    assert!(max_rel(&loss_f, &loss_d) < 1e-5, "loss {loss_f:?} vs {loss_d:?}");
    for (name, (f, d)) in ["xc", "W_enc", "b_enc", "W_dec"].iter().zip(grads_f.iter().zip(&grads_d)) {
        assert!(d.iter().any(|v| *v != 0.0), "{name}: the dense gradient is zero, the test would prove nothing");
        let err = max_rel(f, d);
        assert!(err < 1e-5, "gradient of {name}: max relative difference {err}");
    }
    // Without autodiff the values come straight from the selection.
    let x = random(5, 7, 31, device);
    let enc = ops::LinearEncoder { w_enc: random(7, 30, 32, device), b_enc: random(1, 30, 33, device).reshape([30]), scale: None };
    let sel = ops::topk_encode(x.clone(), &enc, 5, None);
    let (v, i) = ops::topk_relu(enc.pre(x.clone()), 5);
    assert!(max_rel(&host(sel.values), &host(v)) < 1e-5);
    assert_eq!(sel.indices.into_data().try_into_vec_as::<i64>().unwrap(), i.into_data().try_into_vec_as::<i64>().unwrap());
    // Asking AuxK for more latents than are flagged: the extra slots are zero, the rest flagged.
    let dead = Tensor::<1>::from_data(TensorData::new((0..30).map(|j| (j == 3 || j == 17) as u8 as f32).collect::<Vec<f32>>(), [30]), device);
    let dead = dead.greater_elem(0.5);
    let sel = ops::topk_encode(x, &enc, 5, Some(ops::AuxSelect { dead: &dead, k: 4 }));
    let (v, i) = sel.aux.expect("aux selection");
    let (v, i) = (host(v), i.into_data().try_into_vec_as::<i64>().unwrap());
    for r in 0..5 {
        let mut first: Vec<i64> = i[r * 4..r * 4 + 2].to_vec();
        first.sort();
        assert_eq!(first, vec![3, 17], "row {r}: {:?}", &i[r * 4..r * 4 + 4]);
        assert_eq!(&v[r * 4 + 2..r * 4 + 4], &[0.0, 0.0], "row {r}");
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
        assert!(err < 1e-4, "{name}: {err}");
    }
}

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
