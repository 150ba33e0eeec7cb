//! Sparse decode in burn tensor ops: a gather of the selected decoder rows, in bounded blocks.

use burn::tensor::{Int, Tensor};

/// Largest number of gathered decoder elements (`rows × k × d_out`) held at once.
const GATHER_BUDGET: usize = 1 << 24;

/// `Σ_j values[i, j] · w_dec[indices[i, j]]`, `[n, k]`, `[n, k]`, `[d_sae, d_out]` → `[n, d_out]`
/// (no bias); a negative index is an empty slot and contributes nothing. Works in row chunks so
/// that the gathered rows never exceed 2²⁴ floats (64 MiB) at a time. Differentiable in `values`
/// and `w_dec`.
pub fn sparse_decode(values: Tensor<2>, indices: Tensor<2, Int>, w_dec: Tensor<2>) -> Tensor<2> {
    let [n, k] = values.dims();
    let d_out = w_dec.dims()[1];
    if n == 0 || k == 0 {
        return Tensor::zeros([n, d_out], &w_dec.device());
    }
    let chunk = (GATHER_BUDGET / (k * d_out).max(1)).clamp(1, n);
    let mut parts = Vec::with_capacity(n.div_ceil(chunk));
    let mut start = 0;
    while start < n {
        let end = (start + chunk).min(n);
        let rows = end - start;
        let idx = indices.clone().slice([start..end, 0..k]);
        let empty = idx.clone().lower_elem(0);
        let gathered = w_dec.clone().select(0, idx.clamp_min(0).reshape([rows * k])).reshape([rows, k, d_out]);
        let vals = values.clone().slice([start..end, 0..k]).mask_fill(empty, 0.0).reshape([rows, k, 1]);
        parts.push((gathered * vals).sum_dim(1).reshape([rows, d_out]));
        start = end;
    }
    match parts.len() {
        1 => parts.remove(0),
        _ => Tensor::cat(parts, 0),
    }
}
