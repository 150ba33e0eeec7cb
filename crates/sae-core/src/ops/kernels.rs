//! The sparse products as a burn backend extension, so that they run inside ordinary tensor
//! code, on the backend that holds the tensors, and under autodiff with a hand-written backward.
//!
//! burn 0.22's `#[backend_extension]` generates the routing from a `Tensor` to the backend that
//! holds it. Each backend implements the three operations once:
//! - Flex and NdArray ([`super::host`]): the operands are read to host slices and the threaded
//!   kernels of [`super::host::sparse`] run on them;
//! - the CubeCL backend (WGPU, CUDA; [`super::cube`]): one CubeCL kernel source per operation,
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
//! `0..rows` (e.g. `-1`) contributes nothing, on every backend.

// NdArray is deprecated in burn 0.22 but still a supported backend of this workspace; the
// macro's generated routing names it, so the allowance covers the whole module.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, binary};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::tensor::{Device, Int, Tensor};

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
    fn sparse_decode(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `out [n, k] = ⟨x[r], rows[indices[r, j]]⟩`.
    fn gather_dot(x: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `out [m, d]` with `out[indices[r, j]] += coeffs[r, j] · x[r]`.
    fn scatter_outer(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, x: FloatTensor<Self>, m: usize) -> FloatTensor<Self>;
}



/// `[rows, cols]` of a 2-d primitive (`cols` = 1 for a 1-d one).
pub(crate) fn dims2<T: TensorMetadata>(t: &T) -> [usize; 2] {
    let s = t.shape();
    let d = s.as_slice();
    [d.first().copied().unwrap_or(0), d.get(1).copied().unwrap_or(1)]
}

/// Backward of `sparse_decode(coeffs, indices, rows)`; parents `[coeffs, rows]`.
#[derive(Debug)]
struct SparseDecodeBackward;

impl<B: Backend + SparseKernels> Backward<B, 2> for SparseDecodeBackward {
    type State = (FloatTensor<B>, IntTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let (coeffs, indices, rows) = ops.state;
        let m = dims2(&rows)[0];
        let idx = indices.clone();
        binary::<B, _, _>(ops.parents, ops.node, grads, |grad| B::gather_dot(grad, idx, rows), |grad| B::scatter_outer(coeffs, indices, grad, m));
    }
}

/// Backward of `gather_dot(x, indices, rows)`; parents `[x, rows]`.
#[derive(Debug)]
struct GatherDotBackward;

impl<B: Backend + SparseKernels> Backward<B, 2> for GatherDotBackward {
    type State = (FloatTensor<B>, IntTensor<B>, FloatTensor<B>);

    fn backward(self, ops: Ops<Self::State, 2>, grads: &mut Gradients, _checkpointer: &mut Checkpointer) {
        let (x, indices, rows) = ops.state;
        let m = dims2(&rows)[0];
        let idx = indices.clone();
        binary::<B, _, _>(
            ops.parents,
            ops.node,
            grads,
            |grad| B::sparse_decode(grad, idx, rows),
            |grad| B::scatter_outer(grad, indices, x, m),
        );
    }
}

impl<B: Backend + SparseKernels, C: CheckpointStrategy> SparseKernels for Autodiff<B, C> {
    fn sparse_decode(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>) -> FloatTensor<Self> {
        let (c, r) = (Self::inner(coeffs.clone()), Self::inner(rows.clone()));
        let out = B::sparse_decode(c.clone(), indices.clone(), r.clone());
        match SparseDecodeBackward.prepare::<C>([coeffs.node(), rows.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((c, indices, r), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn gather_dot(x: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>) -> FloatTensor<Self> {
        let (xi, r) = (Self::inner(x.clone()), Self::inner(rows.clone()));
        let out = B::gather_dot(xi.clone(), indices.clone(), r.clone());
        match GatherDotBackward.prepare::<C>([x.node(), rows.node()]).compute_bound().stateful() {
            OpsKind::Tracked(prep) => prep.finish((xi, indices, r), out),
            OpsKind::UnTracked(prep) => prep.finish(out),
        }
    }

    fn scatter_outer(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, x: FloatTensor<Self>, m: usize) -> FloatTensor<Self> {
        Self::from_inner(B::scatter_outer(Self::inner(coeffs), indices, Self::inner(x), m))
    }
}

/// [`SparseKernels::sparse_decode`] on tensors: `[n, k]`, `[n, k]`, `[m, d]` → `[n, d]`.
/// Only for tensors on a backend that implements the kernels (see [`available`]).
pub fn sparse_decode(coeffs: Tensor<2>, indices: Tensor<2, Int>, rows: Tensor<2>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as SparseKernels>::sparse_decode(coeffs.into_dispatch(), indices.into_dispatch(), rows.into_dispatch()))
}

/// [`SparseKernels::gather_dot`] on tensors: `[n, d]`, `[n, k]`, `[m, d]` → `[n, k]`. Only for
/// tensors on a backend that implements the kernels (see [`available`]).
pub fn gather_dot(x: Tensor<2>, indices: Tensor<2, Int>, rows: Tensor<2>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as SparseKernels>::gather_dot(x.into_dispatch(), indices.into_dispatch(), rows.into_dispatch()))
}

/// [`SparseKernels::scatter_outer`] on tensors: `[n, k]`, `[n, k]`, `[n, d]` → `[m, d]`. Only
/// for tensors on a backend that implements the kernels (see [`available`]).
pub fn scatter_outer(coeffs: Tensor<2>, indices: Tensor<2, Int>, x: Tensor<2>, m: usize) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as SparseKernels>::scatter_outer(coeffs.into_dispatch(), indices.into_dispatch(), x.into_dispatch(), m))
}

/// Whether tensors on `device` (with or without autodiff) use these kernels: Flex, NdArray or a
/// CubeCL runtime (WGPU, CUDA), where compiled in, unless [`super::portable_only`].
pub fn available(device: &Device) -> bool {
    if super::portable_only() {
        return false;
    }
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if super::host::is_host(device) {
        return true;
    }
    #[cfg(any(feature = "wgpu", feature = "cuda"))]
    if super::cube::is_cube(device) {
        return true;
    }
    let _ = device;
    false
}
