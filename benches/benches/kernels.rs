//! Kernels on every enabled backend: the encoder GEMM, top-k selection (burn's sort-based `topk`
//! against the fused `sae_kernels::topk_encode`, which is the host kernel on Flex/NdArray), the TopK
//! encoder's training forward + backward (fused vs dense), sparse decode vs the dense GEMM path,
//! the three sparse products of `sae_kernels::extension::sparse` (host threads on Flex/NdArray, CubeCL on WGPU)
//! against their portable burn-op versions (and `scatter_outer` on the AuxK pattern), and a full
//! TopK forward; BatchTopK's fused selection and the dense ReLU encoder's fused forward +
//! backward against burn's ops. Shapes: d_in 384, d_sae 6144, k 32 (the shape), batch 512 so
//! that one run fits a 2-core machine. Run: `cargo bench -p sae-benches [--features wgpu]`.

use criterion::{Criterion, criterion_group, criterion_main};
use sae_core::{KernelPolicy, SaeConfig, SparseCodes};
use sae_kernels::portable;
use sae_benches::{devices, normal};

const D_IN: usize = 384;
const D_SAE: usize = 6144;
const K: usize = 32;
const BATCH: usize = 512;

/// The default policy: the fastest kernels on every core.
const P: KernelPolicy = KernelPolicy { choice: sae_core::KernelChoice::Fast, threads: None, gemm: sae_core::HostGemm::Auto };

fn kernels(c: &mut Criterion) {
    for (name, device) in devices() {
        let x = normal(BATCH, D_IN, 1, &device);
        let w_enc = normal(D_IN, D_SAE, 2, &device);
        let w_dec = normal(D_SAE, D_IN, 3, &device);
        let pre = x.clone().matmul(w_enc.clone());
        let (values, indices) = portable::topk_relu(pre.clone(), K);
        let codes = SparseCodes::topk(values, indices, D_SAE);
        let mut group = c.benchmark_group(format!("{name}/kernels"));
        group.sample_size(10);
        group.bench_function("encode_gemm", |b| b.iter(|| x.clone().matmul(w_enc.clone()).into_data()));
        // `sae_kernels::matmul`: the host GEMM on Flex/NdArray (packed AVX2 kernel where the CPU has it),
        // burn's matmul elsewhere.
        group.bench_function("encode_gemm_ops", |b| b.iter(|| sae_kernels::matmul(P, x.clone(), w_enc.clone()).unwrap().into_data()));
        group.bench_function("topk_select", |b| b.iter(|| portable::topk_relu(pre.clone(), K).0.into_data()));
        let enc = sae_kernels::LinearEncoder { w_enc: w_enc.clone(), b_enc: normal(1, D_SAE, 5, &device).reshape([D_SAE]), scale: None };
        group.bench_function("topk_encode_fused", |b| b.iter(|| sae_kernels::topk_encode(P, x.clone(), &enc, K, None).unwrap().values.into_data()));
        let train_enc = || sae_kernels::LinearEncoder {
            w_enc: enc.w_enc.clone().autodiff().require_grad(),
            b_enc: enc.b_enc.clone().autodiff().require_grad(),
            scale: None,
        };
        let xa = x.clone().autodiff();
        group.bench_function("topk_encode_backward_fused", |b| {
            b.iter(|| {
                let e = train_enc();
                let sel = sae_kernels::topk_encode(P, xa.clone(), &e, K, None).unwrap();
                let g = sel.values.sum().backward();
                e.w_enc.grad(&g).map(|t| t.into_data())
            })
        });
        group.bench_function("topk_encode_backward_dense", |b| {
            b.iter(|| {
                let e = train_enc();
                let (values, _) = portable::topk_relu(e.pre(P, xa.clone()).unwrap(), K);
                let g = values.sum().backward();
                e.w_enc.grad(&g).map(|t| t.into_data())
            })
        });
        // BatchTopK: the fused selection (host candidates + threshold on Flex/NdArray) against
        // burn's top-k over the flattened batch.
        group.bench_function("batch_topk_encode_fused", |b| b.iter(|| sae_kernels::batch_topk_encode(P, x.clone(), &enc, K * BATCH, None).unwrap().values.into_data()));
        group.bench_function("batch_topk_dense", |b| b.iter(|| portable::batch_topk(enc.pre(P, x.clone()).unwrap(), K * BATCH).into_data()));
        group.bench_function("batch_topk_encode_backward_fused", |b| {
            b.iter(|| {
                let e = train_enc();
                let sel = sae_kernels::batch_topk_encode(P, xa.clone(), &e, K * BATCH, None).unwrap();
                let g = sel.values.sum().backward();
                e.w_enc.grad(&g).map(|t| t.into_data())
            })
        });
        // The dense ReLU encoder under autodiff, forward + backward: the fused operation
        // (`sae_kernels::extension::dense::linear_relu`: host GEMM, bias and ReLU in its epilogue, masked
        // backward) against burn's matmul, add and clamp.
        group.bench_function("linear_relu_backward_fused", |b| {
            b.iter(|| {
                let e = train_enc();
                let acts = sae_kernels::extension::dense::linear_relu(xa.clone(), e.w_enc.clone(), e.b_enc.clone(), P);
                let g = acts.sum().backward();
                e.w_enc.grad(&g).map(|t| t.into_data())
            })
        });
        group.bench_function("linear_relu_backward_burn", |b| {
            b.iter(|| {
                let e = train_enc();
                let acts = (xa.clone().matmul(e.w_enc.clone()) + e.b_enc.clone().unsqueeze_dim(0)).clamp_min(0.0);
                let g = acts.sum().backward();
                e.w_enc.grad(&g).map(|t| t.into_data())
            })
        });
        group.bench_function("sparse_decode", |b| b.iter(|| sae_kernels::decode_codes(P, &codes, w_dec.clone()).unwrap().into_data()));
        group.bench_function("dense_decode", |b| b.iter(|| codes.to_dense().matmul(w_dec.clone()).into_data()));
        let (values, indices) = portable::topk_relu(pre.clone(), K);
        group.bench_function("sparse_decode_kernel", |b| b.iter(|| sae_kernels::extension::sparse::sparse_decode(values.clone(), indices.clone(), w_dec.clone(), P).into_data()));
        group.bench_function("sparse_decode_portable", |b| b.iter(|| portable::sparse_decode(values.clone(), indices.clone(), w_dec.clone()).into_data()));
        group.bench_function("gather_dot_kernel", |b| b.iter(|| sae_kernels::extension::sparse::gather_dot(x.clone(), indices.clone(), w_dec.clone(), P).into_data()));
        group.bench_function("gather_dot_portable", |b| {
            b.iter(|| {
                let gathered = w_dec.clone().select(0, indices.clone().reshape([BATCH * K])).reshape([BATCH, K, D_IN]);
                (gathered * x.clone().reshape([BATCH, 1, D_IN])).sum_dim(2).into_data()
            })
        });
        group.bench_function("scatter_outer_kernel", |b| b.iter(|| sae_kernels::extension::sparse::scatter_outer(values.clone(), indices.clone(), x.clone(), D_SAE, P).into_data()));
        // The AuxK pattern: 192 of 1 536 latents per row, each selected many times per block.
        let aux_idx = portable::topk_relu(normal(BATCH, D_SAE / 4, 7, &device), 192).1.mul_scalar(4);
        let aux_c = normal(BATCH, 192, 8, &device);
        group.bench_function("scatter_outer_kernel_auxk", |b| b.iter(|| sae_kernels::extension::sparse::scatter_outer(aux_c.clone(), aux_idx.clone(), x.clone(), D_SAE, P).into_data()));
        group.bench_function("scatter_outer_dense", |b| b.iter(|| codes.to_dense().transpose().matmul(x.clone()).into_data()));
        let sae = sae_arch::registry().init(SaeConfig::new("topk", D_IN, D_SAE).with("k", K), &device, 4).unwrap_or_else(|e| panic!("{e}"));
        group.bench_function("topk_forward", |b| b.iter(|| sae.forward(x.clone()).map(|f| f.output.into_data())));
        group.finish();
    }
}

criterion_group!(benches, kernels);
criterion_main!(benches);
