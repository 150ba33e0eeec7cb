//! The sparse products of [`super::sparse`] as a burn backend extension, so that they run inside
//! ordinary tensor code and under autodiff with a hand-written backward pass.
//!
//! burn 0.22's `#[backend_extension]` generates the routing from a `Tensor` to the backend that
//! holds it. The Flex and NdArray implementations read the operands to host slices, run the
//! threaded kernels and wrap the result; the `Autodiff<B, C>` implementation records the
//! operation with its backward, which is made of the same three kernels:
//!
//! | forward | d/d coefficients or input | d/d rows |
//! |---|---|---|
//! | `sparse_decode(c, idx, rows)` | `gather_dot(grad, idx, rows)` | `scatter_outer(c, idx, grad)` |
//! | `gather_dot(x, idx, rows)` | `sparse_decode(grad, idx, rows)` | `scatter_outer(grad, idx, x)` |
//!
//! Nothing in the backward is `n × d_sae`: this is what replaces the two dense GEMMs through a
//! dense code gradient that autodiff of the portable ops would run.

// NdArray is deprecated in burn 0.22 but still a supported backend of this workspace; the
// macro's generated routing names it, so the allowance covers the whole module.
#![allow(deprecated)]

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{Backward, Ops, OpsKind, binary};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Autodiff, AutodiffBackend, Backend, Dispatch, TensorMetadata, backend_extension};
use burn::tensor::{Int, Tensor, TensorData, read_sync};

use super::{sparse, threads};

/// The sparse products as backend operations (see the module docs for the formulas).
#[backend_extension(Flex: cfg(feature = "flex"), NdArray: cfg(feature = "ndarray"), Autodiff)]
pub trait SparseKernels: Backend {
    /// `out [n, d] = Σ_j coeffs[r, j] · rows[indices[r, j]]`, with `rows` `[m, d]`.
    fn sparse_decode(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `out [n, k] = ⟨x[r], rows[indices[r, j]]⟩`.
    fn gather_dot(x: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>) -> FloatTensor<Self>;
    /// `out [m, d]` with `out[indices[r, j]] += coeffs[r, j] · x[r]`.
    fn scatter_outer(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, x: FloatTensor<Self>, m: usize) -> FloatTensor<Self>;
}

/// Host values of a float primitive (`len` zeros if the backend cannot be read, which a CPU
/// backend never fails to do).
fn floats<B: Backend>(t: FloatTensor<B>, len: usize) -> Vec<f32> {
    read_sync(B::float_into_data(t)).ok().and_then(|d| d.try_into_vec_as::<f32>().ok()).filter(|v| v.len() == len).unwrap_or_else(|| vec![0.0; len])
}

/// Host values of an int primitive (`-1`, which selects nothing, if unreadable).
fn ints<B: Backend>(t: IntTensor<B>, len: usize) -> Vec<i64> {
    read_sync(B::int_into_data(t)).ok().and_then(|d| d.try_into_vec_as::<i64>().ok()).filter(|v| v.len() == len).unwrap_or_else(|| vec![-1; len])
}

fn dims2<T: TensorMetadata>(t: &T) -> [usize; 2] {
    let s = t.shape();
    let d = s.as_slice();
    [d.first().copied().unwrap_or(0), d.get(1).copied().unwrap_or(1)]
}

/// The kernels' result, or zeros of `len`: the operands were read with exactly the lengths their
/// shapes give ([`floats`], [`ints`]), so the kernels' length checks cannot fail here.
fn or_zeros(r: crate::Result<Vec<f32>>, len: usize) -> Vec<f32> {
    r.unwrap_or_else(|_| vec![0.0; len])
}

fn host_sparse_decode<B: Backend>(coeffs: FloatTensor<B>, indices: IntTensor<B>, rows: FloatTensor<B>) -> FloatTensor<B> {
    let ([n, k], [m, d], device) = (dims2(&coeffs), dims2(&rows), rows.device());
    let out = or_zeros(sparse::sparse_decode(&floats::<B>(coeffs, n * k), &ints::<B>(indices, n * k), &floats::<B>(rows, m * d), n, k, d, threads()), n * d);
    B::float_from_data(TensorData::new(out, [n, d]), &device)
}

fn host_gather_dot<B: Backend>(x: FloatTensor<B>, indices: IntTensor<B>, rows: FloatTensor<B>) -> FloatTensor<B> {
    let ([n, k], [m, d], device) = (dims2(&indices), dims2(&rows), rows.device());
    let out = or_zeros(sparse::gather_dot(&floats::<B>(x, n * d), &ints::<B>(indices, n * k), &floats::<B>(rows, m * d), n, k, d, threads()), n * k);
    B::float_from_data(TensorData::new(out, [n, k]), &device)
}

fn host_scatter_outer<B: Backend>(coeffs: FloatTensor<B>, indices: IntTensor<B>, x: FloatTensor<B>, m: usize) -> FloatTensor<B> {
    let ([n, k], [_, d], device) = (dims2(&coeffs), dims2(&x), x.device());
    let out = or_zeros(sparse::scatter_outer(&floats::<B>(coeffs, n * k), &ints::<B>(indices, n * k), &floats::<B>(x, n * d), n, k, d, m, threads()), m * d);
    B::float_from_data(TensorData::new(out, [m, d]), &device)
}

macro_rules! host_impl {
    ($backend:ty) => {
        impl SparseKernels for $backend {
            fn sparse_decode(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>) -> FloatTensor<Self> {
                host_sparse_decode::<Self>(coeffs, indices, rows)
            }
            fn gather_dot(x: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>) -> FloatTensor<Self> {
                host_gather_dot::<Self>(x, indices, rows)
            }
            fn scatter_outer(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, x: FloatTensor<Self>, m: usize) -> FloatTensor<Self> {
                host_scatter_outer::<Self>(coeffs, indices, x, m)
            }
        }
    };
}

#[cfg(feature = "flex")]
host_impl!(burn::backend::Flex);
#[cfg(feature = "ndarray")]
host_impl!(burn::backend::NdArray);

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
/// Only for tensors on Flex or NdArray (see [`super::is_host`]).
pub fn sparse_decode(coeffs: Tensor<2>, indices: Tensor<2, Int>, rows: Tensor<2>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as SparseKernels>::sparse_decode(coeffs.into_dispatch(), indices.into_dispatch(), rows.into_dispatch()))
}

/// [`SparseKernels::gather_dot`] on tensors: `[n, d]`, `[n, k]`, `[m, d]` → `[n, k]`. Only for
/// tensors on Flex or NdArray.
pub fn gather_dot(x: Tensor<2>, indices: Tensor<2, Int>, rows: Tensor<2>) -> Tensor<2> {
    Tensor::from_dispatch(<Dispatch as SparseKernels>::gather_dot(x.into_dispatch(), indices.into_dispatch(), rows.into_dispatch()))
}
