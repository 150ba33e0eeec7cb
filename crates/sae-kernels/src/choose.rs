//! The one place that chooses an implementation: [`kernels_for`] maps a [`KernelPolicy`] and the
//! tensors' device to a [`Kernels`], whose methods are every fast path of the workspace, each
//! with the portable burn-op version as its default. A backend that has faster kernels overrides
//! the methods it has them for ([`HostKernels`](crate::host::HostKernels) on Flex and NdArray,
//! `CubeKernels` on WGPU and CUDA); everything else runs the defaults. Nothing below this module
//! asks which backend it is on.

use burn::tensor::{Device, Int, Tensor};
use sae_core::{KernelPolicy, ParamTensor, Result};

use crate::adam::{AdamCoefficients, AdamMoments};
use crate::linear_encoder::LinearEncoder;
use crate::matmul::DenseActivation;
use crate::portable;
use crate::selection::{AuxSelect, Selected};

/// Which implementation runs for a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// burn tensor ops (every backend, and any backend when the policy asks for them).
    Portable,
    /// The CPU kernels, on tensors in host memory (Flex, NdArray).
    Host,
    /// The CubeCL kernels (WGPU, CUDA).
    Cube,
}

/// The route for tensors on `device` (with or without autodiff) under `policy`.
pub fn route(policy: &KernelPolicy, device: &Device) -> Route {
    if !policy.is_fast() {
        return Route::Portable;
    }
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if crate::host::is_host(device) {
        return Route::Host;
    }
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    if crate::cube::is_cube(device) {
        return Route::Cube;
    }
    let _ = device;
    Route::Portable
}

/// The implementation of the hot-path operations for tensors on `device` under `policy`.
pub fn kernels_for(policy: KernelPolicy, device: &Device) -> Box<dyn Kernels> {
    #[allow(unreachable_patterns)]
    match route(&policy, device) {
        #[cfg(any(feature = "flex", feature = "ndarray"))]
        Route::Host => Box::new(crate::host::HostKernels::new(policy)),
        #[cfg(any(feature = "wgpu", feature = "cuda"))]
        Route::Cube => Box::new(crate::cube::CubeKernels::new(policy)),
        _ => Box::new(Portable),
    }
}

/// The hot-path operations. Every method has the portable burn-op version as its default, so an
/// implementation overrides only what it has a faster kernel for, and must match the default
/// (forward and gradients, within the error model of `sae_core::tolerance`). A host read that
/// fails is an error, never zeros.
pub trait Kernels: std::fmt::Debug {
    /// Which implementation this is.
    fn route(&self) -> Route;

    /// `a [m, k] · b [k, n]`, differentiable.
    fn matmul(&self, a: Tensor<2>, b: Tensor<2>) -> Result<Tensor<2>> {
        Ok(a.matmul(b))
    }

    /// `activation(x · w + b)` `[m, n]` for the dense (ReLU-family) encoders, differentiable.
    fn dense_encode(&self, x: Tensor<2>, w: Tensor<2>, b: Tensor<1>, activation: &DenseActivation) -> Result<Tensor<2>> {
        Ok(portable::dense_activation(self.matmul(x, w)? + b.unsqueeze_dim(0), activation))
    }

    /// `Σ_j values[i, j] · w_dec[indices[i, j]]` `[n, d_out]`; a negative index contributes
    /// nothing. Differentiable in `values` and `w_dec`.
    fn sparse_decode(&self, values: Tensor<2>, indices: Tensor<2, Int>, w_dec: Tensor<2>) -> Result<Tensor<2>> {
        Ok(portable::sparse_decode(values, indices, w_dec))
    }

    /// The pre-activations of `enc` at `indices` only, `[n, k]` (0 at a negative index),
    /// differentiable in `xc` and every weight.
    fn gather_pre(&self, enc: &LinearEncoder, xc: Tensor<2>, indices: Tensor<2, Int>) -> Result<Tensor<2>> {
        Ok(enc.pre_at_portable(xc, indices))
    }

    /// On detached tensors: the `k` largest pre-activations of each row of `xc` (and the AuxK
    /// selection), values raw.
    fn select_topk(&self, xc: &Tensor<2>, enc: &LinearEncoder, k: usize, aux: Option<AuxSelect<'_>>) -> Result<Selected> {
        portable::select_topk(self, xc, enc, k, aux)
    }

    /// On detached tensors: the `k_total` largest positive pre-activations of the batch as
    /// per-row slots (empty slots `-1`), and the per-row AuxK selection.
    fn select_batch_topk(&self, xc: &Tensor<2>, enc: &LinearEncoder, k_total: usize, aux: Option<AuxSelect<'_>>) -> Result<Selected> {
        portable::select_batch_topk(self, xc, enc, k_total, aux)
    }

    /// `g[i] − w[i] · ⟨g[i], w[i]⟩` for each row (neither on an autodiff device).
    fn project_out_rows(&self, g: Tensor<2>, w: &Tensor<2>) -> Result<Tensor<2>> {
        Ok(portable::project_out_rows(g, w))
    }

    /// `w[i] / (‖w[i]‖ + eps)` for each row (not on an autodiff device).
    fn normalize_rows(&self, w: Tensor<2>, eps: f32) -> Result<Tensor<2>> {
        Ok(portable::normalize_rows(w, eps))
    }

    /// One Adam update of parameter `p` with gradient `g` and moments `m`, `v` (zeros when
    /// `None`): the updated parameter and moments.
    fn adam_update(&self, p: ParamTensor, g: ParamTensor, m: Option<ParamTensor>, v: Option<ParamTensor>, c: AdamCoefficients) -> Result<AdamMoments> {
        portable::adam_update(p, g, m, v, c)
    }
}

/// The portable burn-op version of every operation (every default of [`Kernels`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Portable;

impl Kernels for Portable {
    fn route(&self) -> Route {
        Route::Portable
    }
}
