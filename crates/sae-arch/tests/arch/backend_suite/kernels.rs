//! The hot-path kernels of `sae_kernels` against references, on one backend: sparse decode vs
//! the dense GEMM path, the three sparse products of `sae_kernels::extension::sparse` vs an f64 loop and the
//! portable ops' gradients, and the fused TopK encoder vs the dense path. Instantiated per
//! backend by `backend_suite!`.

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::rng::SplitMix64;
use sae_core::{KernelPolicy, SparseCodes};

use super::{host, max_rel, one_product, parity, random};

/// The sparse decode equals the dense path, forward and gradients.
pub fn sparse_decode_equals_dense_path(device: &Device) {
    let ad = device.clone().autodiff();
    let w = random(30, 7, 11, &ad).require_grad();
    let pre = random(6, 30, 12, &ad).require_grad();
    let (values, indices) = sae_kernels::portable::topk_relu(pre.clone(), 5);
    let codes = SparseCodes::topk(values, indices, 30);
    let sparse = sae_kernels::decode_codes(KernelPolicy::default(), &codes, w.clone()).unwrap();
    let dense = codes.to_dense().matmul(w.clone());
    assert!(max_rel(&host(sparse.clone().detach()), &host(dense.clone().detach())) <= parity());
    let gs = (sparse.powi_scalar(2)).sum().backward();
    let (gw_s, gp_s) = (host(w.grad(&gs).unwrap()), host(pre.grad(&gs).unwrap()));
    let w2 = random(30, 7, 11, &ad).require_grad();
    let pre2 = random(6, 30, 12, &ad).require_grad();
    let (values, indices) = sae_kernels::portable::topk_relu(pre2.clone(), 5);
    let dense = SparseCodes::topk(values, indices, 30).to_dense().matmul(w2.clone());
    let gd = dense.powi_scalar(2).sum().backward();
    assert!(max_rel(&gw_s, &host(w2.grad(&gd).unwrap())) <= parity());
    assert!(max_rel(&gp_s, &host(pre2.grad(&gd).unwrap())) <= parity());
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

/// The sparse-product kernels of this backend (`sae_kernels::extension::sparse`: host threads on Flex/NdArray,
/// CubeCL on WGPU) against a hand-written f64 triple loop, on odd sizes, with latents shared by
/// many rows and out-of-range indices (which contribute nothing); `scatter_outer` gives the same
/// bits twice; under autodiff, the gradients equal those of the portable burn ops.
pub fn sparse_kernels_equal_reference(device: &Device) {
    assert!(sae_kernels::route(&KernelPolicy::default(), device) != sae_kernels::Route::Portable, "no sparse kernels on {device:?}");
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
    let got_decode = host(sae_kernels::extension::sparse::sparse_decode(coeffs.clone(), idx.clone(), rows.clone(), KernelPolicy::default()));
    assert!(max_rel(&got_decode, &f(decode)) <= parity(), "sparse_decode");
    let got_dots = host(sae_kernels::extension::sparse::gather_dot(x.clone(), idx.clone(), rows.clone(), KernelPolicy::default()));
    assert!(max_rel(&got_dots, &f(dots)) <= parity(), "gather_dot");
    let got_scatter = host(sae_kernels::extension::sparse::scatter_outer(coeffs.clone(), idx.clone(), x.clone(), m, KernelPolicy::default()));
    assert!(max_rel(&got_scatter, &f(scatter)) <= parity(), "scatter_outer");
    let again = host(sae_kernels::extension::sparse::scatter_outer(coeffs, idx, x, m, KernelPolicy::default()));
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
            (sae_kernels::extension::sparse::sparse_decode(coeffs.clone(), idx.clone(), rows.clone(), KernelPolicy::default()), sae_kernels::extension::sparse::gather_dot(x.clone(), idx.clone(), rows.clone(), KernelPolicy::default()))
        } else {
            let gathered = rows.clone().select(0, idx.clone().reshape([n * k])).reshape([n, k, d]);
            (sae_kernels::portable::sparse_decode(coeffs.clone(), idx.clone(), rows.clone()), (gathered * x.clone().reshape([n, 1, d])).sum_dim(2).reshape([n, k]))
        };
        let loss = decoded.powi_scalar(2).sum() + dots.sin().sum();
        let g = loss.backward();
        [host(coeffs.grad(&g).unwrap()), host(x.grad(&g).unwrap()), host(rows.grad(&g).unwrap())]
    };
    let (fast, portable) = (grads(true), grads(false));
    for (name, (a, b)) in ["coeffs", "x", "rows"].iter().zip(fast.iter().zip(&portable)) {
        assert!(b.iter().any(|v| *v != 0.0), "{name}: zero reference gradient");
        let err = max_rel(a, b);
        assert!(err <= parity(), "gradient of {name}: max relative difference {err}");
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
    let enc = sae_kernels::LinearEncoder { w_enc: w_enc.clone(), b_enc: b_enc.clone(), scale: Some(sae_kernels::row_norms(w_dec.clone())) };
    let ((values, indices), (aux_v, aux_i)) = if fused {
        let sel = sae_kernels::topk_encode(KernelPolicy::default(), xc.clone(), &enc, k, Some(sae_kernels::AuxSelect { dead: &dead, k: k_aux })).unwrap();
        ((sel.values, sel.indices), sel.aux.expect("aux selection"))
    } else {
        let pre = enc.pre(KernelPolicy::default(), xc.clone()).unwrap();
        let main = sae_kernels::portable::topk_relu(pre.clone(), k);
        (main, pre.mask_fill(dead.clone().bool_not().unsqueeze_dim(0), f32::NEG_INFINITY).topk_with_indices(k_aux, 1))
    };
    let recon = sae_kernels::sparse_decode(KernelPolicy::default(), values, indices, w_dec.clone()).unwrap();
    let aux = sae_kernels::sparse_decode(KernelPolicy::default(), aux_v, aux_i, w_dec.clone()).unwrap();
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
    assert!(max_rel(&loss_f, &loss_d) <= parity(), "loss {loss_f:?} vs {loss_d:?}");
    for (name, (f, d)) in ["xc", "W_enc", "b_enc", "W_dec"].iter().zip(grads_f.iter().zip(&grads_d)) {
        assert!(d.iter().any(|v| *v != 0.0), "{name}: the dense gradient is zero, the test would prove nothing");
        let err = max_rel(f, d);
        assert!(err <= parity(), "gradient of {name}: max relative difference {err}");
    }
    // Without autodiff the values come straight from the selection.
    let x = random(5, 7, 31, device);
    let enc = sae_kernels::LinearEncoder { w_enc: random(7, 30, 32, device), b_enc: random(1, 30, 33, device).reshape([30]), scale: None };
    let sel = sae_kernels::topk_encode(KernelPolicy::default(), x.clone(), &enc, 5, None).unwrap();
    let (v, i) = sae_kernels::portable::topk_relu(enc.pre(KernelPolicy::default(), x.clone()).unwrap(), 5);
    assert!(max_rel(&host(sel.values), &host(v)) <= parity());
    assert_eq!(sel.indices.into_data().try_into_vec_as::<i64>().unwrap(), i.into_data().try_into_vec_as::<i64>().unwrap());
    // Asking AuxK for more latents than are flagged: the extra slots are zero, the rest flagged.
    let dead = Tensor::<1>::from_data(TensorData::new((0..30).map(|j| (j == 3 || j == 17) as u8 as f32).collect::<Vec<f32>>(), [30]), device);
    let dead = dead.greater_elem(0.5);
    let sel = sae_kernels::topk_encode(KernelPolicy::default(), x, &enc, 5, Some(sae_kernels::AuxSelect { dead: &dead, k: 4 })).unwrap();
    let (v, i) = sel.aux.expect("aux selection");
    let (v, i) = (host(v), i.into_data().try_into_vec_as::<i64>().unwrap());
    for r in 0..5 {
        let mut first: Vec<i64> = i[r * 4..r * 4 + 2].to_vec();
        first.sort();
        assert_eq!(first, vec![3, 17], "row {r}: {:?}", &i[r * 4..r * 4 + 4]);
        assert_eq!(&v[r * 4 + 2..r * 4 + 4], &[0.0, 0.0], "row {r}");
    }
}

/// Which of the selection rules [`selection_loss_and_grads`] runs.
#[derive(Debug, Clone, Copy)]
enum Rule {
    BatchTopK(usize),
    GroupMax(usize),
}

/// Loss and gradients through a selection rule, fused (`sae_kernels::batch_topk_encode` /
/// `sae_kernels::groupmax_encode`, with an AuxK selection) or dense (`portable::batch_topk` / `portable::groupmax`
/// on the dense pre-activations, masked top-k for AuxK). Returns `(loss, [grad xc, grad W_enc,
/// grad b_enc, grad W_dec])`.
fn selection_loss_and_grads(device: &Device, rule: Rule, fused: bool) -> (Vec<f32>, Vec<Vec<f32>>) {
    let ad = device.clone().autodiff();
    let (n, d_in, d_sae, k_aux) = (7, 6, 24, 3);
    let xc = random(n, d_in, 61, &ad).require_grad();
    let w_enc = random(d_in, d_sae, 62, &ad).require_grad();
    let b_enc = random(1, d_sae, 63, &ad).reshape([d_sae]).require_grad();
    let w_dec = random(d_sae, d_in, 64, &ad).require_grad();
    let dead = Tensor::<1>::from_data(TensorData::new((0..d_sae).map(|j| (j % 4 == 3) as u8 as f32).collect::<Vec<f32>>(), [d_sae]), &ad).greater_elem(0.5);
    let enc = sae_kernels::LinearEncoder { w_enc: w_enc.clone(), b_enc: b_enc.clone(), scale: Some(sae_kernels::row_norms(w_dec.clone())) };
    let aux = Some(sae_kernels::AuxSelect { dead: &dead, k: k_aux });
    let (codes, (aux_v, aux_i)) = if fused {
        let sel = match rule {
            Rule::BatchTopK(k_total) => sae_kernels::batch_topk_encode(KernelPolicy::default(), xc.clone(), &enc, k_total, aux).unwrap(),
            Rule::GroupMax(k) => sae_kernels::groupmax_encode(KernelPolicy::default(), xc.clone(), &enc, k, aux).unwrap(),
        };
        (SparseCodes::topk(sel.values, sel.indices, d_sae), sel.aux.expect("aux selection"))
    } else {
        let pre = enc.pre(KernelPolicy::default(), xc.clone()).unwrap();
        let codes = match rule {
            Rule::BatchTopK(k_total) => SparseCodes::dense(sae_kernels::portable::batch_topk(pre.clone(), k_total)),
            Rule::GroupMax(k) => {
                let (v, i) = sae_kernels::portable::groupmax(pre.clone(), k);
                SparseCodes::topk(v, i, d_sae)
            }
        };
        (codes, pre.mask_fill(dead.clone().bool_not().unsqueeze_dim(0), f32::NEG_INFINITY).topk_with_indices(k_aux, 1))
    };
    let recon = sae_kernels::decode_codes(KernelPolicy::default(), &codes, w_dec.clone()).unwrap();
    let aux = sae_kernels::sparse_decode(KernelPolicy::default(), aux_v, aux_i, w_dec.clone()).unwrap();
    let loss = (recon - xc.clone()).powi_scalar(2).sum() + aux.powi_scalar(2).sum().mul_scalar(0.5);
    let g = loss.backward();
    let grads = vec![host(xc.grad(&g).unwrap()), host(w_enc.grad(&g).unwrap()), host(b_enc.grad(&g).unwrap()), host(w_dec.grad(&g).unwrap())];
    (host(loss.detach()), grads)
}

/// The fused BatchTopK and groupmax encoders (host selection on Flex/NdArray, burn ops on WGPU;
/// sparse backward everywhere) equal the dense rules: loss and the gradients of the input,
/// `W_enc`, `b_enc` and `W_dec`. BatchTopK keeps some rows fuller than others (`k_total` = 17
/// over 7 rows), and once more than there are positive pre-activations.
pub fn batch_topk_and_groupmax_encode_equal_dense_path(device: &Device) {
    for rule in [Rule::BatchTopK(17), Rule::BatchTopK(7 * 24), Rule::GroupMax(4)] {
        let (loss_f, grads_f) = selection_loss_and_grads(device, rule, true);
        let (loss_d, grads_d) = selection_loss_and_grads(device, rule, false);
        assert!(max_rel(&loss_f, &loss_d) <= parity(), "{rule:?}: loss {loss_f:?} vs {loss_d:?}");
        for (name, (f, d)) in ["xc", "W_enc", "b_enc", "W_dec"].iter().zip(grads_f.iter().zip(&grads_d)) {
            assert!(d.iter().any(|v| *v != 0.0), "{rule:?} {name}: the dense gradient is zero, the test would prove nothing");
            let err = max_rel(f, d);
            assert!(err <= parity(), "{rule:?}: gradient of {name}: max relative difference {err}");
        }
    }
    // Without autodiff: the same codes as the dense rule, winners first in each row, and
    // empty slots marked -1.
    let x = random(9, 6, 71, device);
    let enc = sae_kernels::LinearEncoder { w_enc: random(6, 40, 72, device), b_enc: random(1, 40, 73, device).reshape([40]), scale: None };
    let sel = sae_kernels::batch_topk_encode(KernelPolicy::default(), x.clone(), &enc, 20, None).unwrap();
    let dense = sae_kernels::portable::batch_topk(enc.pre(KernelPolicy::default(), x.clone()).unwrap(), 20);
    // Empty slots contribute nothing, in the kernels and in the portable ops alike.
    let w = random(40, 6, 74, device);
    let fast = host(sae_kernels::sparse_decode(KernelPolicy::default(), sel.values.clone(), sel.indices.clone(), w.clone()).unwrap());
    assert!(max_rel(&fast, &host(sae_kernels::portable::sparse_decode(sel.values.clone(), sel.indices.clone(), w))) <= one_product());
    let at = host(enc.pre_at(KernelPolicy::default(), x.clone(), sel.indices.clone()).unwrap());
    assert!(max_rel(&at, &host(enc.pre_at_portable(x, sel.indices.clone()))) <= one_product());
    assert!(max_rel(&at, &host(sel.values.clone())) <= parity(), "recomputed values differ from the selection's");
    let codes = SparseCodes::topk(sel.values.clone(), sel.indices.clone(), 40);
    assert!(max_rel(&host(codes.to_dense()), &host(dense)) <= one_product());
    let (v, i) = (host(sel.values), sel.indices.into_data().try_into_vec_as::<i64>().unwrap());
    assert_eq!(v.iter().filter(|x| **x > 0.0).count(), 20);
    assert!(v.iter().zip(&i).all(|(v, i)| (*v > 0.0) == (*i >= 0)), "a winner without a latent or an empty slot with a value");
}

/// The dense products of this backend (`sae_kernels::extension::dense`: the host GEMM on Flex/NdArray,
/// burn's matmul on WGPU) against burn's own ops: `op(a) · op(b)` for the four transpose
/// combinations and the fused ReLU encoder, forward and gradients of every operand, at odd
/// sizes.
pub fn dense_kernels_equal_burn_ops(device: &Device) {
    use sae_kernels::extension::dense::{linear_relu, matmul_t};
    let (n, k, m) = (9, 7, 11);
    let run = |fused: bool, ta: bool, tb: bool| {
        let ad = device.clone().autodiff();
        let a = if ta { random(k, n, 81, &ad) } else { random(n, k, 81, &ad) }.require_grad();
        let b = if tb { random(m, k, 82, &ad) } else { random(k, m, 82, &ad) }.require_grad();
        let out = if fused {
            matmul_t(a.clone(), b.clone(), ta, tb, KernelPolicy::default())
        } else {
            let x = if ta { a.clone().transpose() } else { a.clone() };
            let y = if tb { b.clone().transpose() } else { b.clone() };
            x.matmul(y)
        };
        let g = out.clone().sin().sum().backward();
        [host(out.detach()), host(a.grad(&g).unwrap()), host(b.grad(&g).unwrap())]
    };
    for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
        let (f, d) = (run(true, ta, tb), run(false, ta, tb));
        for (name, (x, y)) in ["product", "grad a", "grad b"].iter().zip(f.iter().zip(&d)) {
            assert!(max_rel(x, y) <= parity(), "matmul_t ta={ta} tb={tb}: {name} differs by {}", max_rel(x, y));
        }
    }
    let relu = |fused: bool| {
        let ad = device.clone().autodiff();
        let x = random(n, k, 83, &ad).require_grad();
        let w = random(k, m, 84, &ad).require_grad();
        let b = random(1, m, 85, &ad).reshape([m]).require_grad();
        let out = if fused { linear_relu(x.clone(), w.clone(), b.clone(), KernelPolicy::default()) } else { (x.clone().matmul(w.clone()) + b.clone().unsqueeze_dim(0)).clamp_min(0.0) };
        let g = (out.clone() * out.clone()).sum().backward();
        [host(out.detach()), host(x.grad(&g).unwrap()), host(w.grad(&g).unwrap()), host(b.grad(&g).unwrap())]
    };
    let (f, d) = (relu(true), relu(false));
    assert!(d[0].contains(&0.0) && d[0].iter().any(|v| *v > 0.0), "the ReLU must cut some entries and keep others");
    for (name, (x, y)) in ["acts", "grad x", "grad w", "grad b"].iter().zip(f.iter().zip(&d)) {
        assert!(max_rel(x, y) <= parity(), "linear_relu: {name} differs by {}", max_rel(x, y));
    }
    // A bias of the wrong length is burn's shape error, never a result with some columns
    // missing their bias (the host epilogue would zip it short).
    if sae_kernels::route(&KernelPolicy::default(), device) == sae_kernels::Route::Host {
        for autodiff in [false, true] {
            let dev = if autodiff { device.clone().autodiff() } else { device.clone() };
            let (x, w, b) = (random(n, k, 83, &dev), random(k, m, 84, &dev), random(1, m - 2, 85, &dev).reshape([m - 2]));
            let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| sae_kernels::dense_encode(KernelPolicy::default(), x, w, b, &sae_kernels::DenseActivation::Relu).unwrap().into_data()));
            assert!(encoded.is_err(), "a bias of {} for {m} latents was accepted (autodiff: {autodiff})", m - 2);
        }
    }
}
