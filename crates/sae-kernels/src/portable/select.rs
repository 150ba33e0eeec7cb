//! Sparse selections over pre-activations.

use burn::tensor::{IndexingUpdateOp, Int, Tensor};

/// Top-k over each row of `pre` `[n, d]`, then ReLU on the selected values.
///
/// Returns `(values [n, k], indices [n, k])`. Equal to SAELens's `TopK` (top-k, then ReLU) and to
/// sparsify's fused encoder (ReLU, then top-k) on the dense codes they produce. Gradients flow to
/// the selected positions only.
pub fn topk_relu(pre: Tensor<2>, k: usize) -> (Tensor<2>, Tensor<2, Int>) {
    let (values, indices) = pre.topk_with_indices(k, 1);
    (values.clamp_min(0.0), indices)
}

/// sparsify's "groupmax": ReLU, then the maximum of each of `k` contiguous groups of `d / k`
/// latents. Returns `(values [n, k], indices [n, k])`. `d` must be divisible by `k`.
pub fn groupmax(pre: Tensor<2>, k: usize) -> (Tensor<2>, Tensor<2, Int>) {
    let [n, d] = pre.dims();
    let group = d / k;
    let grouped = pre.clamp_min(0.0).reshape([n, k, group]);
    let (values, local) = grouped.max_dim_with_indices(2);
    let offsets = Tensor::<1, Int>::arange_step(0..(d as i64), group, &local.device())
        .reshape([1, k, 1]);
    let indices = (local + offsets).reshape([n, k]);
    (values.reshape([n, k]), indices)
}

/// BatchTopK: ReLU, then keep the `k_total` largest activations of the whole batch (flattened);
/// everything else is zero. Returns dense activations `[n, d]`. Ties at the boundary are broken
/// by the backend's top-k, so exactly `k_total` entries are selected (some may be zero when
/// fewer than `k_total` activations are positive).
pub fn batch_topk(pre: Tensor<2>, k_total: usize) -> Tensor<2> {
    let [n, d] = pre.dims();
    let flat = pre.clamp_min(0.0).reshape([1, n * d]);
    let k_total = k_total.min(n * d);
    let (values, indices) = flat.clone().topk_with_indices(k_total, 1);
    flat.zeros_like().scatter(1, indices, values, IndexingUpdateOp::Add).reshape([n, d])
}
