//! The dense encoder/decoder product and the dense encoders (ReLU, JumpReLU), on the fastest
//! kernel for the tensors' device.

use burn::tensor::Tensor;
use sae_core::{KernelPolicy, Result};

/// `a [m, k] · b [k, n]`, differentiable ([`Kernels::matmul`](crate::Kernels::matmul) for `a`'s
/// device: on Flex and NdArray the threaded host GEMM, with or without autodiff; elsewhere
/// burn's `matmul`). Allocates `m × n`.
pub fn matmul(policy: KernelPolicy, a: Tensor<2>, b: Tensor<2>) -> Result<Tensor<2>> {
    crate::kernels_for(policy, &a.device()).matmul(a, b)
}

/// The activation of a dense encoder.
#[derive(Debug, Clone)]
pub enum DenseActivation {
    /// `max(pre, 0)`.
    Relu,
    /// `max(pre, 0) · [pre > threshold]`, with a per-latent threshold `[d_sae]`.
    JumpRelu(Tensor<1>),
}

/// `activation(x · w + b)`, `[m, n]`, for the dense (ReLU-family) encoders, differentiable. On
/// Flex and NdArray without autodiff the bias and activation run inside the threaded GEMM, block
/// by block; under autodiff there, ReLU is one operation with a fused backward; otherwise burn
/// tensor ops. Allocates `m × n`.
pub fn dense_encode(policy: KernelPolicy, x: Tensor<2>, w: Tensor<2>, b: Tensor<1>, activation: &DenseActivation) -> Result<Tensor<2>> {
    crate::kernels_for(policy, &x.device()).dense_encode(x, w, b, activation)
}
