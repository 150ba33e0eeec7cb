//! Sparse decode: `Σ_j values[i, j] · w_dec[indices[i, j]]`, without a dense `[n, d_sae]` code.

use burn::tensor::{Int, Tensor};
use sae_core::codes::CodeValues;
use sae_core::{KernelPolicy, Result, SparseCodes};

/// Sparse decode of top-k codes: `values [n, k]`, `indices [n, k]`, `w_dec [d_sae, d_out]` →
/// `[n, d_out]` (no bias). A negative index is an empty slot and contributes nothing.
/// Differentiable in `values` and `w_dec`. On Flex, NdArray and the CubeCL backends (WGPU,
/// CUDA) this is the backend's own kernel with its sparse backward; elsewhere
/// [`portable::sparse_decode`](crate::portable::sparse_decode).
pub fn sparse_decode(policy: KernelPolicy, values: Tensor<2>, indices: Tensor<2, Int>, w_dec: Tensor<2>) -> Result<Tensor<2>> {
    crate::kernels_for(policy, &w_dec.device()).sparse_decode(values, indices, w_dec)
}

/// `codes @ w_dec` (no bias): the sparse decode for top-k codes, the GEMM for dense ones.
pub fn decode_codes(policy: KernelPolicy, codes: &SparseCodes, w_dec: Tensor<2>) -> Result<Tensor<2>> {
    let kernels = crate::kernels_for(policy, &w_dec.device());
    match &codes.values {
        CodeValues::TopK { values, indices } => kernels.sparse_decode(values.clone(), indices.clone(), w_dec),
        CodeValues::Dense(acts) => kernels.matmul(acts.clone(), w_dec),
    }
}
