//! sparsify's groupmax encoder as one operation: the largest ReLU'd pre-activation of each of
//! `k` contiguous latent groups, with gradients through the `k` winners only.
//!
//! The selection runs on detached dense pre-activations (one GEMM without an autodiff graph, in
//! blocks of rows of at most 2²⁵ pre-activations);
//! the winners' values are recomputed from the weights ([`LinearEncoder::pre_at`]), so the
//! backward pass is sparse instead of two GEMMs through a dense `[n, d_sae]` gradient.

use burn::tensor::Tensor;
use sae_core::{KernelPolicy, Result};

use crate::linear_encoder::LinearEncoder;
use crate::selection::{AuxSelect, TopKSelection, finish_selection};

/// Encodes `xc` `[n, d_in]` with the groupmax rule (`d_sae` divisible by `k`; see
/// [`groupmax`](crate::portable::groupmax)), plus the AuxK selection when `aux` is given. Equal
/// to [`groupmax`](crate::portable::groupmax) of [`LinearEncoder::pre`], forward and gradients.
pub fn groupmax_encode(policy: KernelPolicy, xc: Tensor<2>, enc: &LinearEncoder, k: usize, aux: Option<AuxSelect<'_>>) -> Result<TopKSelection> {
    let kernels = crate::kernels_for(policy, &xc.device());
    let selected = crate::portable::select_groupmax(kernels.as_ref(), &xc, enc, k, aux)?;
    finish_selection(kernels.as_ref(), xc, enc, selected, aux)
}
