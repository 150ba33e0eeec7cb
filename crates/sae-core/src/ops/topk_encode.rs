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
//! [`host::fused_topk_encode`](super::host::fused_topk_encode): GEMM and top-k by row block on
//! every core, no dense pre-activations, no sort. Elsewhere it is burn's matmul and `topk`, in
//! blocks of rows.

use burn::tensor::Tensor;

#[cfg(any(feature = "flex", feature = "ndarray"))]
use super::host;
use super::LinearEncoder;
use super::selection::{AuxSelect, Selected, TopKSelection, aux_with_tensor_ops, finish_selection, in_row_chunks};
#[cfg(any(feature = "flex", feature = "ndarray"))]
use super::selection::{host_selected, with_host_encoder};

/// Encodes `xc` `[n, d_in]` and selects the top `k` latents per row (plus the AuxK selection
/// when `aux` is given). Equal to `topk(relu)` of [`LinearEncoder::pre`] (forward and
/// gradients), without a dense gradient; on Flex and NdArray without dense pre-activations.
pub fn topk_encode(xc: Tensor<2>, enc: &LinearEncoder, k: usize, aux: Option<AuxSelect<'_>>) -> TopKSelection {
    let [n, _] = xc.dims();
    let k = k.min(enc.w_enc.dims()[1]);
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    let on_host = host::is_host(&xc.device()) && k > 0 && !super::portable_only();
    #[cfg(not(any(feature = "flex", feature = "ndarray")))]
    let on_host = false;
    let selected = if on_host { select_on_host(&xc, enc, k, aux) } else { select_with_tensor_ops(&xc, enc, k, aux) };
    let sel = finish_selection(xc, enc, selected, aux);
    debug_assert_eq!(sel.values.dims(), [n, k]);
    sel
}

fn select_with_tensor_ops(xc: &Tensor<2>, enc: &LinearEncoder, k: usize, aux: Option<AuxSelect<'_>>) -> Selected {
    let enc = enc.detached();
    in_row_chunks(&xc.clone().detach(), enc.w_enc.dims()[1], |rows| {
        let pre = enc.pre(rows);
        let aux = aux_with_tensor_ops(&pre, aux);
        let (values, indices) = pre.topk_with_indices(k, 1);
        (values, indices, aux)
    })
}

#[cfg(not(any(feature = "flex", feature = "ndarray")))]
fn select_on_host(xc: &Tensor<2>, enc: &LinearEncoder, k: usize, aux: Option<AuxSelect<'_>>) -> Selected {
    select_with_tensor_ops(xc, enc, k, aux)
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
fn select_on_host(xc: &Tensor<2>, enc: &LinearEncoder, k: usize, aux: Option<AuxSelect<'_>>) -> Selected {
    let n = xc.dims()[0];
    let sel = with_host_encoder(xc, enc, aux, |x, host_enc, host_aux| host::fused_topk_encode(x, n, host_enc, k, host_aux, host::threads()));
    // The slices were read from the tensors with their own shapes, so a length error means a
    // backend returned something unexpected: fall back to the portable path.
    let Ok(sel) = sel else {
        return select_with_tensor_ops(xc, enc, k, aux);
    };
    host_selected(&xc.device(), n, (sel.values, sel.indices, k), (sel.aux_values, sel.aux_indices), aux)
}
