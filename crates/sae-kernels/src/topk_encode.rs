//! The TopK encoder as one operation: dense GEMM, bias, selection of the `k` largest
//! pre-activations per row (and, for AuxK, of the `k_aux` largest among dead latents), with
//! gradients that flow through the selected latents only.
//!
//! Why it is split the way it is: which latents win is not differentiable, so the selection runs
//! on detached tensors, where it costs one GEMM and no autodiff graph. The values of the winners
//! are then recomputed from the weights (`k` dot products per row, [`LinearEncoder::pre_at`]), so
//! the backward pass touches `n × k` encoder columns instead of running two more
//! `[n, d_in] × [d_in, d_sae]` GEMMs through a dense `[n, d_sae]` gradient, the cost that
//! dominates a naive TopK training step. On Flex and NdArray the selection is
//! `host::fused_topk_encode`: GEMM and top-k by row block on every core, no dense
//! pre-activations, no sort. Elsewhere it is burn's matmul and `topk`, in blocks of rows
//! ([`Kernels::select_topk`](crate::Kernels::select_topk)).

use burn::tensor::Tensor;
use sae_core::{KernelPolicy, Result};

use crate::linear_encoder::LinearEncoder;
use crate::selection::{AuxSelect, TopKSelection, finish_selection};

/// Encodes `xc` `[n, d_in]` and selects the top `k` latents per row (plus the AuxK selection
/// when `aux` is given), on the kernels [`crate::kernels_for`] picks for `xc`'s device under
/// `policy`. Equal to `topk(relu)` of [`LinearEncoder::pre`] (forward and gradients), without a
/// dense gradient; on Flex and NdArray without dense pre-activations.
pub fn topk_encode(policy: KernelPolicy, xc: Tensor<2>, enc: &LinearEncoder, k: usize, aux: Option<AuxSelect<'_>>) -> Result<TopKSelection> {
    let kernels = crate::kernels_for(policy, &xc.device());
    let k = k.min(enc.w_enc.dims()[1]);
    let selected = kernels.select_topk(&xc, enc, k, aux)?;
    finish_selection(kernels.as_ref(), xc, enc, selected, aux)
}
