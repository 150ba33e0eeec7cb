//! The sparse products as a burn backend extension, so that they run inside ordinary tensor
//! code, on the backend that holds the tensors, and under autodiff with a hand-written backward.
//!
//! burn 0.22's `#[backend_extension]` generates the routing from a `Tensor` to the backend that
//! holds it. Each backend implements the three operations once:
//! - Flex and NdArray (`crate::host`): the operands are read to host slices and the threaded
//!   kernels of `crate::host::sparse` run on them;
//! - the CubeCL backend (WGPU, CUDA; `crate::cube`): one CubeCL kernel source per operation,
//!   compiled for whichever runtime the tensors' device names;
//! - `Autodiff<B, C>` (here): records the operation with its backward, which is made of the same
//!   three operations of the inner backend:
//!
//! | forward | d/d coefficients or input | d/d rows |
//! |---|---|---|
//! | `sparse_decode(c, idx, rows)` | `gather_dot(grad, idx, rows)` | `scatter_outer(c, idx, grad)` |
//! | `gather_dot(x, idx, rows)` | `sparse_decode(grad, idx, rows)` | `scatter_outer(grad, idx, x)` |
//!
//! Nothing in the backward is `n × d_sae`: this is what replaces the two dense GEMMs through a
//! dense code gradient that autodiff of the portable ops would run. An index outside
//! `0..rows` (e.g. `-1`) contributes nothing, on every backend. Every operation takes the
//! [`KernelPolicy`] (the host's thread count), which the backward passes on.

// NdArray is deprecated in burn 0.22 but still a supported backend of this workspace; the
// macro's generated routing names it, so the allowance covers the whole module.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, binary};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, backend_extension};

use super::dims2;
use burn::tensor::{Int, Tensor};
use sae_core::KernelPolicy;

/// The sparse products as backend operations (see the module docs for the formulas and which
/// backends implement them).
#[backend_extension(
    Flex: cfg(feature = "flex"),
    NdArray: cfg(feature = "ndarray"),
    Cube: cfg(any(feature = "wgpu", feature = "cuda")),
    Autodiff
)]
pub trait SparseKernels: Backend {
    /// `out [n, d] = Σ_j coeffs[r, j] · rows[indices[r, j]]`, with `rows` `[m, d]`.
    fn sparse_decode(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>, policy: KernelPolicy) -> FloatTensor<Self>;
    /// `out [n, k] = ⟨x[r], rows[indices[r, j]]⟩`.
    fn gather_dot(x: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>, policy: KernelPolicy) -> FloatTensor<Self>;
    /// `out [m, d]` with `out[indices[r, j]] += coeffs[r, j] · x[r]`.
    fn scatter_outer(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, x: FloatTensor<Self>, m: usize, policy: KernelPolicy) -> FloatTensor<Self>;
}

/// Backward of `sparse_decode(coeffs, indices, rows)`; parents `[coeffs, rows]`.
#[derive(Debug)]
struct SparseDecodeBackward(KernelPolicy);

impl<B: Backend + SparseKernels> Backward<B, 2> for SparseDecodeBackward {
    type State = (FloatTensor<B>, IntTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let (coeffs, indices, rows) = ops.state;
        let (m, policy) = (dims2(&rows)[0], self.0);
        let idx = indices.clone();
        binary::<B, _, _>(ops.parents, ops.node, grads, |grad| B::gather_dot(grad, idx, rows, policy), |grad| B::scatter_outer(coeffs, indices, grad, m, policy));
    }
}

/// Backward of `gather_dot(x, indices, rows)`; parents `[x, rows]`.
#[derive(Debug)]
struct GatherDotBackward(KernelPolicy);

impl<B: Backend + SparseKernels> Backward<B, 2> for GatherDotBackward {
    type State = (FloatTensor<B>, IntTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let (x, indices, rows) = ops.state;
        let (m, policy) = (dims2(&rows)[0], self.0);
        let idx = indices.clone();
        binary::<B, _, _>(
            ops.parents,
            ops.node,
            grads,
            |grad| B::sparse_decode(grad, idx, rows, policy),
            |grad| B::scatter_outer(grad, indices, x, m, policy),
        );
    }
}

impl<B: Backend + SparseKernels, C: CheckpointStrategy> SparseKernels for Autodiff<B, C> {
    fn sparse_decode(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>, policy: KernelPolicy) -> FloatTensor<Self> {
        let (c, r) = (Self::inner(coeffs.clone()), Self::inner(rows.clone()));
        let out = B::sparse_decode(c.clone(), indices.clone(), r.clone(), policy);
        match SparseDecodeBackward(policy).prepare::<C>([coeffs.node(), rows.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((c, indices, r), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn gather_dot(x: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>, policy: KernelPolicy) -> FloatTensor<Self> {
        let (xi, r) = (Self::inner(x.clone()), Self::inner(rows.clone()));
        let out = B::gather_dot(xi.clone(), indices.clone(), r.clone(), policy);
        match GatherDotBackward(policy).prepare::<C>([x.node(), rows.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((xi, indices, r), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn scatter_outer(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, x: FloatTensor<Self>, m: usize, policy: KernelPolicy) -> FloatTensor<Self> {
        Self::from_inner(B::scatter_outer(Self::inner(coeffs), indices, Self::inner(x), m, policy))
    }
}

/// [`SparseKernels::sparse_decode`] on tensors: `[n, k]`, `[n, k]`, `[m, d]` → `[n, d]`.
/// Only for tensors on a backend that implements the kernels ([`crate::Route::Host`] or
/// [`crate::Route::Cube`]).
pub fn sparse_decode(coeffs: Tensor<2>, indices: Tensor<2, Int>, rows: Tensor<2>, policy: KernelPolicy) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as SparseKernels>::sparse_decode(coeffs.into_dispatch(), indices.into_dispatch(), rows.into_dispatch(), policy))
}

/// [`SparseKernels::gather_dot`] on tensors: `[n, d]`, `[n, k]`, `[m, d]` → `[n, k]`, on a
/// backend that implements the kernels.
pub fn gather_dot(x: Tensor<2>, indices: Tensor<2, Int>, rows: Tensor<2>, policy: KernelPolicy) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as SparseKernels>::gather_dot(x.into_dispatch(), indices.into_dispatch(), rows.into_dispatch(), policy))
}

/// [`SparseKernels::scatter_outer`] on tensors: `[n, k]`, `[n, k]`, `[n, d]` → `[m, d]`, on a
/// backend that implements the kernels.
pub fn scatter_outer(coeffs: Tensor<2>, indices: Tensor<2, Int>, x: Tensor<2>, m: usize, policy: KernelPolicy) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as SparseKernels>::scatter_outer(coeffs.into_dispatch(), indices.into_dispatch(), x.into_dispatch(), m, policy))
}
