//! The operations that must run inside burn's autodiff with a hand-written backward (the sparse
//! products and the dense product with its fused ReLU), as burn backend extensions: burn routes
//! a tensor to the backend that holds it, and `Autodiff<B>` records the backward, made of the
//! same operations of the inner backend. Each backend that has kernels implements them (`host`
//! for Flex and NdArray, `cube` for the CubeCL runtimes); [`crate::kernels_for`] decides whether
//! they run at all.

// NdArray is deprecated in burn 0.22 but still a supported backend of this workspace; the
// macro's generated routing names it.
#![allow(deprecated)]

pub mod dense;
pub mod sparse;

pub use dense::DenseKernels;
pub use sparse::SparseKernels;

use burn::backend::TensorMetadata;

/// `[rows, cols]` of a 2-d primitive (`cols` = 1 for a 1-d one).
pub(crate) fn dims2<T: TensorMetadata>(t: &T) -> [usize; 2] {
    let s = t.shape();
    let d = s.as_slice();
    [d.first().copied().unwrap_or(0), d.get(1).copied().unwrap_or(1)]
}
