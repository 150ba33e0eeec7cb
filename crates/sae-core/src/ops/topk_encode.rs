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
//! every core, no dense pre-activations, no sort. Elsewhere it is burn's matmul and `topk`.

use burn::tensor::{Bool, Int, Tensor};
#[cfg(any(feature = "flex", feature = "ndarray"))]
use burn::tensor::TensorData;

#[cfg(any(feature = "flex", feature = "ndarray"))]
use super::host;
#[cfg(any(feature = "flex", feature = "ndarray"))]
use crate::params::host_f32;

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
    /// Dense pre-activations `[n, d_sae]`. Allocates `n × d_sae` floats.
    pub fn pre(&self, xc: Tensor<2>) -> Tensor<2> {
        let pre = super::matmul(xc, self.w_enc.clone()) + self.b_enc.clone().unsqueeze_dim(0);
        match &self.scale {
            Some(s) => pre * s.clone().unsqueeze_dim(0),
            None => pre,
        }
    }

    /// The pre-activations at `indices` `[n, k]` only, `[n, k]`: one dot product per selected
    /// latent, differentiable in `xc` and every weight. On Flex, NdArray and the CubeCL backends
    /// the dot products are the backend's own kernel with its sparse backward
    /// (`kernels::gather_dot`); elsewhere [`LinearEncoder::pre_at_portable`].
    pub fn pre_at(&self, xc: Tensor<2>, indices: Tensor<2, Int>) -> Tensor<2> {
        #[cfg(any(feature = "flex", feature = "ndarray", feature = "wgpu", feature = "cuda"))]
        if super::kernels::available(&xc.device()) {
            let [n, k] = indices.dims();
            let columns = self.w_enc.clone().transpose(); // [d_sae, d_in]: one row per latent
            let flat = indices.clone().reshape([n * k]);
            let mut pre = super::kernels::gather_dot(xc, indices, columns) + self.b_enc.clone().select(0, flat.clone()).reshape([n, k]);
            if let Some(s) = &self.scale {
                pre = pre * s.clone().select(0, flat).reshape([n, k]);
            }
            return pre;
        }
        self.pre_at_portable(xc, indices)
    }

    /// [`LinearEncoder::pre_at`] in burn tensor ops, for every backend: row chunks of at most
    /// 2²⁴ gathered floats (64 MiB).
    pub fn pre_at_portable(&self, xc: Tensor<2>, indices: Tensor<2, Int>) -> Tensor<2> {
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

    fn detached(&self) -> Self {
        Self { w_enc: self.w_enc.clone().detach(), b_enc: self.b_enc.clone().detach(), scale: self.scale.clone().map(|s| s.detach()) }
    }

    fn tracks_gradients(&self, xc: &Tensor<2>) -> bool {
        xc.device().is_autodiff()
            || self.w_enc.device().is_autodiff()
            || self.b_enc.device().is_autodiff()
            || self.scale.as_ref().is_some_and(|s| s.device().is_autodiff())
    }
}

/// A second selection for AuxK: the `k` largest pre-activations among the latents flagged in
/// `dead` `[d_sae]`. When fewer than `k` latents are flagged, the extra slots hold value 0.
#[derive(Debug, Clone, Copy)]
pub struct AuxSelect<'a> {
    /// Latents that may be selected.
    pub dead: &'a Tensor<1, Bool>,
    /// How many per row; at most the number of flagged latents.
    pub k: usize,
}

/// What [`topk_encode`] selected.
#[derive(Debug, Clone)]
pub struct TopKSelection {
    /// ReLU of the `k` largest pre-activations per row, in descending order, `[n, k]`.
    pub values: Tensor<2>,
    /// Their latent indices, `[n, k]`.
    pub indices: Tensor<2, Int>,
    /// The auxiliary selection, when asked for: raw pre-activations (no ReLU) `[n, k_aux]` and
    /// their indices.
    pub aux: Option<(Tensor<2>, Tensor<2, Int>)>,
}

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
    let (values, indices, aux_sel) = if on_host { select_on_host(&xc, enc, k, aux) } else { select_with_tensor_ops(&xc, enc, k, aux) };
    let (values, aux_sel) = if enc.tracks_gradients(&xc) {
        let values = enc.pre_at(xc.clone(), indices.clone());
        let aux_sel = aux_sel.map(|(_, i)| (enc.pre_at(xc, i.clone()), i));
        (values, aux_sel)
    } else {
        (values, aux_sel)
    };
    // Slots beyond the number of flagged latents hold a latent that is not flagged: zero them.
    let aux = aux.zip(aux_sel).map(|(a, (v, i))| {
        let [rows, ka] = i.dims();
        let flagged = a.dead.clone().float().select(0, i.clone().reshape([rows * ka])).reshape([rows, ka]);
        (v.mask_fill(flagged.lower_elem(0.5), 0.0), i)
    });
    debug_assert_eq!(values.dims(), [n, k]);
    TopKSelection { values: values.clamp_min(0.0), indices, aux }
}

type Selected = (Tensor<2>, Tensor<2, Int>, Option<(Tensor<2>, Tensor<2, Int>)>);

fn select_with_tensor_ops(xc: &Tensor<2>, enc: &LinearEncoder, k: usize, aux: Option<AuxSelect<'_>>) -> Selected {
    let pre = enc.detached().pre(xc.clone().detach());
    let aux = aux.map(|a| {
        let masked = pre.clone().mask_fill(a.dead.clone().bool_not().unsqueeze_dim(0), f32::NEG_INFINITY);
        masked.topk_with_indices(a.k, 1)
    });
    let (values, indices) = pre.topk_with_indices(k, 1);
    (values, indices, aux)
}

#[cfg(not(any(feature = "flex", feature = "ndarray")))]
fn select_on_host(xc: &Tensor<2>, enc: &LinearEncoder, k: usize, aux: Option<AuxSelect<'_>>) -> Selected {
    select_with_tensor_ops(xc, enc, k, aux)
}

#[cfg(any(feature = "flex", feature = "ndarray"))]
fn select_on_host(xc: &Tensor<2>, enc: &LinearEncoder, k: usize, aux: Option<AuxSelect<'_>>) -> Selected {
    let [n, d_in] = xc.dims();
    let d_sae = enc.w_enc.dims()[1];
    let device = xc.device();
    let x = host::HostF32::of(xc);
    let w = host::HostF32::of(&enc.w_enc);
    let (x, w) = (x.as_slice(), w.as_slice());
    let b = host_f32(enc.b_enc.clone().detach().into_data());
    let s = enc.scale.as_ref().map(|s| host_f32(s.clone().detach().into_data()));
    let dead = aux.map(|a| host_f32(a.dead.clone().float().into_data()).into_iter().map(|v| v > 0.5).collect::<Vec<bool>>());
    let host_enc = host::HostEncoder { w_enc: w, b_enc: &b, scale: s.as_deref(), d_in, d_sae };
    let host_aux = aux.zip(dead.as_deref()).map(|(a, eligible)| host::HostAuxSelect { eligible, k: a.k });
    // The slices were read from the tensors with their own shapes, so a length error means a
    // backend returned something unexpected: fall back to the portable path.
    let Ok(sel) = host::fused_topk_encode(x, n, &host_enc, k, host_aux, host::threads()) else {
        return select_with_tensor_ops(xc, enc, k, aux);
    };
    let float = |v: Vec<f32>, cols: usize| Tensor::<2>::from_data(TensorData::new(v, [n, cols]), &device);
    let int = |v: Vec<i64>, cols: usize| Tensor::<2, Int>::from_data(TensorData::new(v, [n, cols]), &device);
    let aux = aux.map(|a| (float(sel.aux_values, a.k), int(sel.aux_indices, a.k)));
    (float(sel.values, k), int(sel.indices, k), aux)
}
