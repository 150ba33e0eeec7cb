//! # sae-kernels
//!
//! The hot-path operations of the SAE workspace (top-k, BatchTopK and groupmax encoders, the
//! dense product and the ReLU/JumpReLU encoders, sparse decode, the decoder row updates, the
//! Adam step) on every burn backend, from three implementations:
//! - [`portable`]: burn tensor ops, every backend, under autodiff; the reference;
//! - `host`: threaded CPU kernels on the memory of Flex and NdArray tensors;
//! - `cube`: CubeCL kernels for WGPU and CUDA, one source compiled per runtime;
//!
//! and one place that chooses among them: [`kernels_for`] maps a [`KernelPolicy`] (from
//! `sae-core`) and the tensors' device to a [`Kernels`], whose methods have the portable version
//! as their default. The free functions below take the policy explicitly; nothing here reads the
//! environment.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use sae_core::{KernelPolicy, SparseCodes};
//!
//! let device = Device::flex();
//! let policy = KernelPolicy::default();
//! // Pre-activations of 2 rows over 4 latents; keep the top 2 of each row.
//! let pre = Tensor::<2>::from_floats([[0.5, -1.0, 2.0, 0.1], [-0.3, 0.4, 0.2, 1.5]], &device);
//! let (values, indices) = sae_kernels::portable::topk_relu(pre, 2);
//! let codes = SparseCodes::topk(values, indices, 4);
//! // Decode through a 4 × 3 dictionary without materialising the dense codes.
//! let w_dec = Tensor::<2>::from_floats(
//!     [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]],
//!     &device,
//! );
//! let recon = sae_kernels::decode_codes(policy, &codes, w_dec.clone()).unwrap();
//! let portable = sae_kernels::decode_codes(KernelPolicy::portable(), &codes, w_dec).unwrap();
//! assert_eq!(recon.into_data(), portable.into_data());
//! assert_eq!(sae_kernels::route(&policy, &device), sae_kernels::Route::Host);
//! ```

#![warn(missing_docs)]

pub mod adam;
mod batch_topk_encode;
mod choose;
#[cfg(any(feature = "wgpu", feature = "cuda"))]
pub mod cube;
#[cfg(any(feature = "flex", feature = "ndarray", feature = "wgpu", feature = "cuda"))]
pub mod extension;
mod groupmax_encode;
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub mod host;
mod linear_encoder;
mod matmul;
pub mod portable;
mod rows;
mod selection;
mod sparse_decode;
mod topk_encode;

pub use adam::{AdamCoefficients, AdamMoments, adam_update};
pub use batch_topk_encode::batch_topk_encode;
pub use choose::{Kernels, Portable, Route, kernels_for, route};
pub use groupmax_encode::groupmax_encode;
pub use linear_encoder::LinearEncoder;
pub use matmul::{DenseActivation, dense_encode, matmul};
pub use rows::{normalize_rows, project_out_rows};
pub use sae_core::KernelPolicy;
pub use selection::{AuxSelect, Selected, TopKSelection};
pub use sparse_decode::{decode_codes, sparse_decode};
pub use topk_encode::topk_encode;

use burn::tensor::Tensor;

/// Euclidean norm of each row of `w` `[r, c]`, as `[r]` (burn tensor ops: one reduction, no
/// faster kernel to choose).
pub fn row_norms(w: Tensor<2>) -> Tensor<1> {
    w.powi_scalar(2).sum_dim(1).sqrt().squeeze_dim(1)
}
