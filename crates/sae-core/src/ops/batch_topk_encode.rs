//! The BatchTopK encoder as one operation: the `k_total` largest positive pre-activations of
//! the whole batch, as per-row slots (rows hold different numbers of winners; empty slots have
//! index `-1`), with gradients through the winners only.
//!
//! Like [`topk_encode`](super::topk_encode), the selection runs on detached tensors and the
//! winners' values are recomputed from the weights ([`LinearEncoder::pre_at`]), so the
//! backward pass is sparse. On Flex and NdArray the selection is
//! [`host::fused_batch_topk_encode`]: no dense pre-activations and no sort of the batch.
//! Elsewhere it is [`batch_topk`](super::batch_topk) on the dense pre-activations, then a
//! per-row `topk` as wide as the fullest row.

use burn::tensor::Tensor;

#[cfg(any(feature = "flex", feature = "ndarray"))]
use super::host;
use super::LinearEncoder;
use super::selection::{AuxSelect, Selected, TopKSelection, aux_with_tensor_ops, finish_selection};

/// Encodes `xc` `[n, d_in]` and keeps the `k_total` largest positive pre-activations of the
/// batch (plus the per-row AuxK selection when `aux` is given). `values` and `indices` are
/// `[n, w]`, `w` the largest number of winners in a row (at least 1): each row's winners in
/// descending order, then empty slots (index `-1`, value 0). Equal, up to the dropped zeros and
/// the ordering of ties at the threshold, to [`batch_topk`](super::batch_topk) of
/// [`LinearEncoder::pre`] (forward and gradients).
pub fn batch_topk_encode(xc: Tensor<2>, enc: &LinearEncoder, k_total: usize, aux: Option<AuxSelect<'_>>) -> TopKSelection {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    let on_host = host::is_host(&xc.device()) && !super::portable_only();
    #[cfg(not(any(feature = "flex", feature = "ndarray")))]
    let on_host = false;
    let selected = if on_host { select_on_host(&xc, enc, k_total, aux) } else { select_with_tensor_ops(&xc, enc, k_total, aux) };
    finish_selection(xc, enc, selected, aux)
}

fn select_with_tensor_ops(xc: &Tensor<2>, enc: &LinearEncoder, k_total: usize, aux: Option<AuxSelect<'_>>) -> Selected {
    let pre = enc.detached().pre(xc.clone().detach());
    let aux = aux_with_tensor_ops(&pre, aux);
    let kept = super::batch_topk(pre, k_total);
    let won = kept.clone().greater_elem(0.0);
    let width = (won.clone().int().sum_dim(1).max().into_scalar::<i64>().max(1) as usize).min(kept.dims()[1].max(1));
    let (values, indices) = kept.mask_fill(won.bool_not(), f32::NEG_INFINITY).topk_with_indices(width, 1);
    let empty = values.clone().equal_elem(f32::NEG_INFINITY);
    (values.mask_fill(empty.clone(), 0.0), indices.mask_fill(empty, -1), aux)
}

#[cfg(not(any(feature = "flex", feature = "ndarray")))]
fn select_on_host(xc: &Tensor<2>, enc: &LinearEncoder, k_total: usize, aux: Option<AuxSelect<'_>>) -> Selected {
    select_with_tensor_ops(xc, enc, k_total, aux)
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
fn select_on_host(xc: &Tensor<2>, enc: &LinearEncoder, k_total: usize, aux: Option<AuxSelect<'_>>) -> Selected {
    use super::selection::{host_selected, with_host_encoder};
    let n = xc.dims()[0];
    let sel = with_host_encoder(xc, enc, aux, |x, host_enc, host_aux| host::fused_batch_topk_encode(x, n, host_enc, k_total, host_aux, host::threads()));
    // A length error means a backend returned something unexpected: the portable path.
    let Ok(sel) = sel else {
        return select_with_tensor_ops(xc, enc, k_total, aux);
    };
    host_selected(&xc.device(), n, (sel.values, sel.indices, sel.width), (sel.aux_values, sel.aux_indices), aux)
}
