//! The selections of the fused encoders by tensor ops, on detached tensors: dense
//! pre-activations in bounded blocks of rows, then burn's `topk`. The dense products go through
//! the caller's [`Kernels`], so that a backend with a fast GEMM but no fused selection still
//! uses its GEMM.

use burn::tensor::Tensor;
use sae_core::Result;

use crate::Kernels;
use crate::linear_encoder::LinearEncoder;
use crate::selection::{AuxSelect, Selected, aux_with_tensor_ops, in_row_chunks};

/// The `k` largest pre-activations of each row of `xc` (values raw), and the AuxK selection.
pub fn select_topk<K: Kernels + ?Sized>(kernels: &K, xc: &Tensor<2>, enc: &LinearEncoder, k: usize, aux: Option<AuxSelect<'_>>) -> Result<Selected> {
    let enc = enc.detached();
    in_row_chunks(&xc.clone().detach(), enc.w_enc.dims()[1], |rows| {
        let pre = enc.pre_with(kernels, rows)?;
        let aux = aux_with_tensor_ops(&pre, aux);
        let (values, indices) = pre.topk_with_indices(k, 1);
        Ok(Selected { values, indices, aux })
    })
}

/// The `k_total` largest positive pre-activations of the batch, as per-row slots as wide as the
/// fullest row (at least 1; empty slots hold index `-1`, value 0), and the AuxK selection.
pub fn select_batch_topk<K: Kernels + ?Sized>(kernels: &K, xc: &Tensor<2>, enc: &LinearEncoder, k_total: usize, aux: Option<AuxSelect<'_>>) -> Result<Selected> {
    let pre = enc.detached().pre_with(kernels, xc.clone().detach())?;
    let aux = aux_with_tensor_ops(&pre, aux);
    let kept = super::batch_topk(pre, k_total);
    let won = kept.clone().greater_elem(0.0);
    let width = (won.clone().int().sum_dim(1).max().into_scalar::<i64>().max(1) as usize).min(kept.dims()[1].max(1));
    let (values, indices) = kept.mask_fill(won.bool_not(), f32::NEG_INFINITY).topk_with_indices(width, 1);
    let empty = values.clone().equal_elem(f32::NEG_INFINITY);
    Ok(Selected { values: values.mask_fill(empty.clone(), 0.0), indices: indices.mask_fill(empty, -1), aux })
}

/// sparsify's groupmax rule (the largest ReLU'd pre-activation of each of `k` contiguous groups)
/// and the AuxK selection.
pub fn select_groupmax<K: Kernels + ?Sized>(kernels: &K, xc: &Tensor<2>, enc: &LinearEncoder, k: usize, aux: Option<AuxSelect<'_>>) -> Result<Selected> {
    let detached = enc.detached();
    in_row_chunks(&xc.clone().detach(), enc.w_enc.dims()[1], |rows| {
        let pre = detached.pre_with(kernels, rows)?;
        let aux = aux_with_tensor_ops(&pre, aux);
        let (values, indices) = super::groupmax(pre, k);
        Ok(Selected { values, indices, aux })
    })
}
