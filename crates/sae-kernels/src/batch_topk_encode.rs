//! The BatchTopK encoder as one operation: the `k_total` largest positive pre-activations of
//! the whole batch, as per-row slots (rows hold different numbers of winners; empty slots have
//! index `-1`), with gradients through the winners only.
//!
//! Like [`topk_encode`](crate::topk_encode), the selection runs on detached tensors and the
//! winners' values are recomputed from the weights ([`LinearEncoder::pre_at`]), so the
//! backward pass is sparse. On Flex and NdArray the selection is
//! `host::fused_batch_topk_encode`: no dense pre-activations and no sort of the batch.
//! Elsewhere it is [`batch_topk`](crate::portable::batch_topk) on the dense pre-activations,
//! then a per-row `topk` as wide as the fullest row.

use burn::tensor::Tensor;
use sae_core::{KernelPolicy, Result};

use crate::linear_encoder::LinearEncoder;
use crate::selection::{AuxSelect, TopKSelection, finish_selection};

/// Encodes `xc` `[n, d_in]` and keeps the `k_total` largest positive pre-activations of the
/// batch (plus the per-row AuxK selection when `aux` is given). `values` and `indices` are
/// `[n, w]`, `w` the largest number of winners in a row (at least 1): each row's winners in
/// descending order, then empty slots (index `-1`, value 0). Equal, up to the dropped zeros and
/// the ordering of ties at the threshold, to [`batch_topk`](crate::portable::batch_topk) of
/// [`LinearEncoder::pre`] (forward and gradients).
pub fn batch_topk_encode(policy: KernelPolicy, xc: Tensor<2>, enc: &LinearEncoder, k_total: usize, aux: Option<AuxSelect<'_>>) -> Result<TopKSelection> {
    let kernels = crate::kernels_for(policy, &xc.device());
    let selected = kernels.select_batch_topk(&xc, enc, k_total, aux)?;
    finish_selection(kernels.as_ref(), xc, enc, selected, aux)
}
