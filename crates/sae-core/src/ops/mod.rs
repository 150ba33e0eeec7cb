//! Portable hot-path operations written in burn tensor ops: they run on every backend and under
//! autodiff. Faster per-backend kernels must match these (forward and gradients): `host` for the
//! CPU backends, `cube` (CubeCL) for WGPU and CUDA, joined behind one backend extension in
//! `kernels`; [`topk_encode`], [`batch_topk_encode`], [`groupmax_encode`] and [`sparse_decode`]
//! pick the fastest one for the tensors' device.

#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub mod cube;
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub mod host;
#[cfg(any(feature = "flex", feature = "ndarray", feature = "wgpu", feature = "cuda"))]
pub mod dense_kernels;
#[cfg(any(feature = "flex", feature = "ndarray", feature = "wgpu", feature = "cuda"))]
pub mod kernels;
mod batch_topk_encode;
mod groupmax_encode;
mod linear_encoder;
mod matmul;
mod rows;
mod select;
mod selection;
mod sparse_decode;
mod topk_encode;

pub use batch_topk_encode::batch_topk_encode;
pub use groupmax_encode::groupmax_encode;
pub use matmul::{DenseActivation, dense_encode, matmul};
pub use rows::{normalize_rows, normalize_rows_portable, project_out_rows, project_out_rows_portable};
pub use select::{batch_topk, groupmax, topk_relu};
pub use sparse_decode::{sparse_decode, sparse_decode_portable};
pub use linear_encoder::LinearEncoder;
pub use selection::{AuxSelect, TopKSelection};
pub use topk_encode::topk_encode;

use burn::tensor::Tensor;

/// Whether the environment variable `SAE_KERNELS=portable` asks for the portable burn-op
/// versions of every hot-path operation on every backend (read once per process): for measuring
/// what the kernels buy, and for ruling them out when debugging.
pub fn portable_only() -> bool {
    static PORTABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *PORTABLE.get_or_init(|| std::env::var("SAE_KERNELS").is_ok_and(|v| v == "portable"))
}

/// Euclidean norm of each row of `w` `[r, c]`, as `[r]`.
pub fn row_norms(w: Tensor<2>) -> Tensor<1> {
    w.powi_scalar(2).sum_dim(1).sqrt().squeeze_dim(1)
}
