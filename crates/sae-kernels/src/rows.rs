//! Row-wise decoder updates: removing each row's component from its gradient, and rescaling
//! rows to unit norm. In place on the host (Flex, NdArray) when the tensor's buffer is not
//! shared, else in burn tensor ops.

use burn::tensor::Tensor;
use sae_core::{KernelPolicy, Result};

/// `g[i] − w[i] · ⟨g[i], w[i]⟩` for each row (the gradient without its component along a
/// unit-norm row). `g` and `w` `[r, c]`; neither may be on an autodiff device.
pub fn project_out_rows(policy: KernelPolicy, g: Tensor<2>, w: &Tensor<2>) -> Result<Tensor<2>> {
    crate::kernels_for(policy, &g.device()).project_out_rows(g, w)
}

/// `w[i] / (‖w[i]‖ + eps)` for each row. `w` must not be on an autodiff device.
pub fn normalize_rows(policy: KernelPolicy, w: Tensor<2>, eps: f32) -> Result<Tensor<2>> {
    crate::kernels_for(policy, &w.device()).normalize_rows(w, eps)
}
