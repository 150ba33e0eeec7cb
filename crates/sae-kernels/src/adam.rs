//! One Adam step of one parameter (Kingma & Ba 2015, with bias correction, as
//! `torch.optim.Adam`), on the fastest implementation for the parameter's device: the same f32
//! operations in the same order everywhere, so the host kernel and the portable version agree
//! bit for bit.
//!
//! `m ← β₁·m + (1−β₁)·g`, `v ← β₂·v + (1−β₂)·g²`, `p ← p − lr · (m / c₁) / (√(v / c₂) + ε)`,
//! where `c₁ = 1 − β₁ᵗ` and `c₂ = 1 − β₂ᵗ` are the bias corrections.

use sae_core::{KernelPolicy, ParamTensor, Result};

/// Adam's coefficients for one step, already in the f32 the update computes with (a scalar
/// given to a burn tensor operation is converted to the tensor's f32 the same way).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AdamCoefficients {
    /// β₁.
    pub beta1: f32,
    /// 1 − β₁ (computed in f64, then rounded).
    pub one_minus_beta1: f32,
    /// β₂.
    pub beta2: f32,
    /// 1 − β₂ (computed in f64, then rounded).
    pub one_minus_beta2: f32,
    /// Bias correction of the first moment, 1 − β₁ᵗ.
    pub correction1: f32,
    /// Bias correction of the second moment, 1 − β₂ᵗ.
    pub correction2: f32,
    /// ε.
    pub eps: f32,
    /// Learning rate.
    pub lr: f32,
}

impl AdamCoefficients {
    /// The coefficients of step `t` (1-based) from the f64 hyperparameters.
    pub fn at_step(beta1: f64, beta2: f64, eps: f64, lr: f64, t: u64) -> Self {
        let t = i32::try_from(t).unwrap_or(i32::MAX);
        Self {
            beta1: beta1 as f32,
            one_minus_beta1: (1.0 - beta1) as f32,
            beta2: beta2 as f32,
            one_minus_beta2: (1.0 - beta2) as f32,
            correction1: (1.0 - beta1.powi(t)) as f32,
            correction2: (1.0 - beta2.powi(t)) as f32,
            eps: eps as f32,
            lr: lr as f32,
        }
    }
}

/// A parameter and its two moments after an update.
#[derive(Debug, Clone)]
pub struct AdamMoments {
    /// The updated parameter.
    pub param: ParamTensor,
    /// The first moment.
    pub m: ParamTensor,
    /// The second moment.
    pub v: ParamTensor,
}

/// One Adam update of `p` with gradient `g` (same rank and shape) and moments `m`, `v` (zeros
/// when `None`), on the implementation [`crate::kernels_for`] picks for `p`'s device. On Flex and
/// NdArray it runs in place in the tensors' buffers when nothing else holds them.
pub fn adam_update(policy: KernelPolicy, p: ParamTensor, g: ParamTensor, m: Option<ParamTensor>, v: Option<ParamTensor>, c: AdamCoefficients) -> Result<AdamMoments> {
    let device = match &p {
        ParamTensor::Matrix(t) => t.device(),
        ParamTensor::Vector(t) => t.device(),
    };
    crate::kernels_for(policy, &device).adam_update(p, g, m, v, c)
}
