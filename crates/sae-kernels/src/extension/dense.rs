//! The dense product as a burn backend extension, so that training of the dense SAEs (ReLU,
//! JumpReLU, gated) runs its GEMMs, forward and backward, on the host GEMM of
//! `crate::host::gemm` on Flex and NdArray.
//!
//! Why: burn's Flex matmul hands each product to the `gemm` crate's own parallelism, which at
//! the SAE shapes runs at about half the rate of two threads that each multiply their own rows
//! (`docs/performance.md`), and its backward materialises transposed copies. Here one operation,
//! `matmul_t(a, b, ta, tb) = op(a) · op(b)` (`op` = transpose where the flag is set), covers the
//! product and both of its gradients, which are products with a transposed operand:
//!
//! | forward `op(a) · op(b)` | d/da | d/db |
//! |---|---|---|
//! | `a · b` | `g · bᵀ` | `aᵀ · g` |
//! | `aᵀ · b` | `b · gᵀ` | `a · g` |
//! | `a · bᵀ` | `g · b` | `gᵀ · a` |
//! | `aᵀ · bᵀ` | `bᵀ · gᵀ` | `gᵀ · aᵀ` |
//!
//! The host kernels read the stored matrices with their layout (`crate::host::gemm::Operand`),
//! so no transposed copy is made. The CubeCL backend runs burn's matmul on transposed views.

// NdArray is deprecated in burn 0.22 but still a supported backend of this workspace; the
// macro's generated routing names it.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, binary};
use burn::backend::tensor::FloatTensor;
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, backend_extension};
use burn::tensor::Tensor;
use sae_core::KernelPolicy;

use super::dims2;

/// The dense product as a backend operation (see the module docs).
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Autodiff
)]
pub trait DenseKernels: Backend {
    /// `op(a) · op(b)` for 2-d `a`, `b`, where `op` transposes the operand whose flag is set.
    fn matmul_t(a: FloatTensor<Self>, b: FloatTensor<Self>, ta: bool, tb: bool, policy: KernelPolicy) -> FloatTensor<Self>;
    /// The ReLU encoder `max(x · w + b, 0)` for `x [n, k]`, `w [k, m]`, `b [m]`: on the host the
    /// bias and ReLU run in the GEMM's epilogue; under autodiff the backward is
    /// [`DenseKernels::relu_mask`], the bias's column sums and two products.
    fn linear_relu(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, policy: KernelPolicy) -> FloatTensor<Self>;
    /// `g` where `acts > 0`, else 0: the gradient through a ReLU whose output is `acts`.
    fn relu_mask(g: FloatTensor<Self>, acts: FloatTensor<Self>, policy: KernelPolicy) -> FloatTensor<Self>;
}

/// Backward of `linear_relu(x, w, b)`; parents `[x, w, b]`, state `(x, w, acts)`.
#[derive(Debug)]
struct LinearReluBackward(KernelPolicy);

impl<B: Backend + DenseKernels> Backward<B, 3> for LinearReluBackward {
    type State = (FloatTensor<B>, FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let (x, w, acts) = ops.state;
        let (m, policy) = (dims2(&acts)[1], self.0);
        let dpre = B::relu_mask(grads.consume::<B>(&ops.node), acts, policy);
        let [px, pw, pb] = ops.parents;
        if let Some(node) = pb {
            let db = B::float_reshape(B::float_sum_dim(dpre.clone(), 0), burn::tensor::Shape::new([m]));
            grads.register::<B>(node.id, db);
        }
        if let Some(node) = pw {
            grads.register::<B>(node.id, B::matmul_t(x, dpre.clone(), true, false, policy));
        }
        if let Some(node) = px {
            grads.register::<B>(node.id, B::matmul_t(dpre, w, false, true, policy));
        }
    }
}

/// Backward of `matmul_t(a, b, ta, tb)`; parents `[a, b]`.
#[derive(Debug)]
struct MatmulBackward {
    ta: bool,
    tb: bool,
    policy: KernelPolicy,
}

impl<B: Backend + DenseKernels> Backward<B, 2> for MatmulBackward {
    type State = (FloatTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let (a, b) = ops.state;
        let (ta, tb, p) = (self.ta, self.tb, self.policy);
        binary::<B, _, _>(
            ops.parents,
            ops.node,
            grads,
            |g| if ta { B::matmul_t(b, g, tb, true, p) } else { B::matmul_t(g, b, false, !tb, p) },
            |g| if tb { B::matmul_t(g, a, true, ta, p) } else { B::matmul_t(a, g, !ta, false, p) },
        );
    }
}

impl<B: Backend + DenseKernels, C: CheckpointStrategy> DenseKernels for Autodiff<B, C> {
    fn linear_relu(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, policy: KernelPolicy) -> FloatTensor<Self> {
        let (xi, wi, bi) = (Self::inner(x.clone()), Self::inner(w.clone()), Self::inner(b.clone()));
        let out = B::linear_relu(xi.clone(), wi.clone(), bi, policy);
        match LinearReluBackward(policy).prepare::<C>([x.node(), w.node(), b.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((xi, wi, out.clone()), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn relu_mask(g: FloatTensor<Self>, acts: FloatTensor<Self>, policy: KernelPolicy) -> FloatTensor<Self> {
        Self::from_inner(B::relu_mask(Self::inner(g), Self::inner(acts), policy))
    }

    fn matmul_t(a: FloatTensor<Self>, b: FloatTensor<Self>, ta: bool, tb: bool, policy: KernelPolicy) -> FloatTensor<Self> {
        let (ai, bi) = (Self::inner(a.clone()), Self::inner(b.clone()));
        let out = B::matmul_t(ai.clone(), bi.clone(), ta, tb, policy);
        match (MatmulBackward { ta, tb, policy }).prepare::<C>([a.node(), b.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((ai, bi), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }
}

/// [`DenseKernels::matmul_t`] on tensors: `op(a) · op(b)`, on a backend that implements it
/// (Flex, NdArray, CubeCL, with or without autodiff).
pub fn matmul_t(a: Tensor<2>, b: Tensor<2>, ta: bool, tb: bool, policy: KernelPolicy) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as DenseKernels>::matmul_t(a.into_dispatch(), b.into_dispatch(), ta, tb, policy))
}

/// [`DenseKernels::linear_relu`] on tensors: `max(x · w + b, 0)`, on a backend that implements it.
pub fn linear_relu(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>, policy: KernelPolicy) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as DenseKernels>::linear_relu(x.into_dispatch(), w.into_dispatch(), b.into_dispatch(), policy))
}
