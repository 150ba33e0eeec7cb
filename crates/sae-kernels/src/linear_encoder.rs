//! The linear part of the TopK-family encoders and the pre-activations of selected latents only.

use burn::tensor::{Int, Tensor};
use sae_core::{KernelPolicy, Result};

use crate::Kernels;

/// Largest number of gathered encoder elements (`rows × k × d_in`) held at once by
/// [`LinearEncoder::pre_at`].
const GATHER_BUDGET: usize = 1 << 24;

/// The linear part of a TopK-family encoder: `pre = (xc · W_enc + b_enc) ⊙ scale`, where `xc`
/// is the already normalised and centred input.
#[derive(Debug, Clone)]
pub struct LinearEncoder {
    /// `W_enc` `[d_in, d_sae]`.
    pub w_enc: Tensor<2>,
    /// `b_enc` `[d_sae]`.
    pub b_enc: Tensor<1>,
    /// Per-latent multiplier `[d_sae]` (SAELens's decoder-norm rescaling), if any.
    pub scale: Option<Tensor<1>>,
}

impl LinearEncoder {
    /// Dense pre-activations `[n, d_sae]`, the product on the fastest GEMM for `xc`'s device
    /// under `policy`. Allocates `n × d_sae` floats.
    pub fn pre(&self, policy: KernelPolicy, xc: Tensor<2>) -> Result<Tensor<2>> {
        let kernels = crate::kernels_for(policy, &xc.device());
        self.pre_with(kernels.as_ref(), xc)
    }

    /// [`LinearEncoder::pre`] with the product of `kernels`.
    pub fn pre_with<K: Kernels + ?Sized>(&self, kernels: &K, xc: Tensor<2>) -> Result<Tensor<2>> {
        let pre = kernels.matmul(xc, self.w_enc.clone())? + self.b_enc.clone().unsqueeze_dim(0);
        Ok(match &self.scale {
            Some(s) => pre * s.clone().unsqueeze_dim(0),
            None => pre,
        })
    }

    /// The pre-activations at `indices` `[n, k]` only, `[n, k]`: one dot product per selected
    /// latent, differentiable in `xc` and every weight; a negative index (an empty slot) gives
    /// 0 ([`Kernels::gather_pre`] for `xc`'s device under `policy`).
    pub fn pre_at(&self, policy: KernelPolicy, xc: Tensor<2>, indices: Tensor<2, Int>) -> Result<Tensor<2>> {
        crate::kernels_for(policy, &xc.device()).gather_pre(self, xc, indices)
    }

    /// [`LinearEncoder::pre_at`] with the backend's sparse dot-product kernel and its sparse
    /// backward ([`crate::extension::sparse::gather_dot`]): for a backend that implements it.
    #[cfg(any(feature = "flex", feature = "ndarray", feature = "wgpu", feature = "cuda"))]
    pub(crate) fn pre_at_kernel(&self, xc: Tensor<2>, indices: Tensor<2, Int>, policy: KernelPolicy) -> Tensor<2> {
        let [n, k] = indices.dims();
        let empty = indices.clone().lower_elem(0);
        let columns = self.w_enc.clone().transpose(); // [d_sae, d_in]: one row per latent
        let flat = indices.clone().clamp_min(0).reshape([n * k]);
        let mut pre = crate::extension::sparse::gather_dot(xc, indices, columns, policy) + self.b_enc.clone().select(0, flat.clone()).reshape([n, k]);
        if let Some(s) = &self.scale {
            pre = pre * s.clone().select(0, flat).reshape([n, k]);
        }
        pre.mask_fill(empty, 0.0)
    }

    /// [`LinearEncoder::pre_at`] in burn tensor ops, for every backend: row chunks of at most
    /// 2²⁴ gathered floats (64 MiB).
    pub fn pre_at_portable(&self, xc: Tensor<2>, indices: Tensor<2, Int>) -> Tensor<2> {
        let empty = indices.clone().lower_elem(0);
        self.pre_at_in_range(xc, indices.clamp_min(0)).mask_fill(empty, 0.0)
    }

    /// [`LinearEncoder::pre_at_portable`] for indices that are all in range.
    fn pre_at_in_range(&self, xc: Tensor<2>, indices: Tensor<2, Int>) -> Tensor<2> {
        let [n, k] = indices.dims();
        let d_in = xc.dims()[1];
        if n == 0 || k == 0 {
            return Tensor::zeros([n, k], &xc.device());
        }
        let columns = self.w_enc.clone().transpose(); // [d_sae, d_in]: one row per latent
        let chunk = (GATHER_BUDGET / (k * d_in).max(1)).clamp(1, n);
        let mut parts = Vec::with_capacity(n.div_ceil(chunk));
        for start in (0..n).step_by(chunk) {
            let end = (start + chunk).min(n);
            let rows = end - start;
            let idx = indices.clone().slice([start..end, 0..k]).reshape([rows * k]);
            let w = columns.clone().select(0, idx.clone()).reshape([rows, k, d_in]);
            let x = xc.clone().slice([start..end, 0..d_in]).reshape([rows, 1, d_in]);
            let mut pre = (w * x).sum_dim(2).reshape([rows, k]) + self.b_enc.clone().select(0, idx.clone()).reshape([rows, k]);
            if let Some(s) = &self.scale {
                pre = pre * s.clone().select(0, idx).reshape([rows, k]);
            }
            parts.push(pre);
        }
        if parts.len() == 1 { parts.remove(0) } else { Tensor::cat(parts, 0) }
    }

    /// The same encoder with its weights detached from the autodiff graph (for selections).
    pub fn detached(&self) -> Self {
        Self { w_enc: self.w_enc.clone().detach(), b_enc: self.b_enc.clone().detach(), scale: self.scale.clone().map(|s| s.detach()) }
    }

    /// Whether the input or a weight is tracked by autodiff.
    pub fn tracks_gradients(&self, xc: &Tensor<2>) -> bool {
        xc.device().is_autodiff()
            || self.w_enc.device().is_autodiff()
            || self.b_enc.device().is_autodiff()
            || self.scale.as_ref().is_some_and(|s| s.device().is_autodiff())
    }
}
