//! Portable hot-path operations written in burn tensor ops: they run on every backend and under
//! autodiff. Faster per-backend kernels must match these (forward and gradients).

mod select;
mod sparse_decode;

pub use select::{batch_topk, groupmax, topk_relu};
pub use sparse_decode::sparse_decode;

use burn::tensor::Tensor;

/// Euclidean norm of each row of `w` `[r, c]`, as `[r]`.
pub fn row_norms(w: Tensor<2>) -> Tensor<1> {
    w.powi_scalar(2).sum_dim(1).sqrt().squeeze_dim(1)
}
