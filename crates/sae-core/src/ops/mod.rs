//! Portable hot-path operations written in burn tensor ops: they run on every backend and under
//! autodiff. Faster per-backend kernels ([`host`] for the CPU backends) must match these
//! (forward and gradients); [`topk_encode`] picks the fastest one for the tensors' device.

#[cfg(any(feature = "flex", feature = "ndarray"))]
pub mod host;
mod matmul;
mod select;
mod sparse_decode;
mod topk_encode;

pub use matmul::{DenseActivation, dense_encode, matmul};
pub use select::{batch_topk, groupmax, topk_relu};
pub use sparse_decode::{sparse_decode, sparse_decode_portable};
pub use topk_encode::{AuxSelect, LinearEncoder, TopKSelection, topk_encode};

use burn::tensor::Tensor;

/// Euclidean norm of each row of `w` `[r, c]`, as `[r]`.
pub fn row_norms(w: Tensor<2>) -> Tensor<1> {
    w.powi_scalar(2).sum_dim(1).sqrt().squeeze_dim(1)
}
