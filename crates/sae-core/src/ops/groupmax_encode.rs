//! sparsify's groupmax encoder as one operation: the largest ReLU'd pre-activation of each of
//! `k` contiguous latent groups, with gradients through the `k` winners only.
//!
//! The selection runs on detached dense pre-activations (one GEMM without an autodiff graph, in
//! blocks of rows of at most 2²⁵ pre-activations);
//! the winners' values are recomputed from the weights ([`LinearEncoder::pre_at`]), so the
//! backward pass is sparse instead of two GEMMs through a dense `[n, d_sae]` gradient.

use burn::tensor::Tensor;

use super::LinearEncoder;
use super::selection::{AuxSelect, TopKSelection, aux_with_tensor_ops, finish_selection, in_row_chunks};

/// Encodes `xc` `[n, d_in]` with the groupmax rule (`d_sae` divisible by `k`; see
/// [`groupmax`](super::groupmax)), plus the AuxK selection when `aux` is given. Equal to
/// [`groupmax`](super::groupmax) of [`LinearEncoder::pre`], forward and gradients.
pub fn groupmax_encode(xc: Tensor<2>, enc: &LinearEncoder, k: usize, aux: Option<AuxSelect<'_>>) -> TopKSelection {
    let detached = enc.detached();
    let selected = in_row_chunks(&xc.clone().detach(), enc.w_enc.dims()[1], |rows| {
        let pre = detached.pre(rows);
        let aux_sel = aux_with_tensor_ops(&pre, aux);
        let (values, indices) = super::groupmax(pre, k);
        (values, indices, aux_sel)
    });
    finish_selection(xc, enc, selected, aux)
}
