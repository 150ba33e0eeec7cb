//! # sae-core
//!
//! The contract of the SAE workspace: the [`Sae`] and [`Architecture`] traits, [`SparseCodes`],
//! the [`Registry`] that maps an `architecture` name to its code, the portable hot-path
//! [`ops`] (top-k selection, sparse decode) written in burn tensor ops so they run on every
//! backend, the [`format`]s people already use (SAELens, sparsify, Gemma Scope), and typed
//! errors. Library code takes a burn [`Device`](burn::tensor::Device) and never chooses one.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use sae_core::{SparseCodes, ops};
//!
//! let device = Device::flex();
//! // Pre-activations of 2 rows over 4 latents; keep the top 2 of each row.
//! let pre = Tensor::<2>::from_floats([[0.5, -1.0, 2.0, 0.1], [-0.3, 0.4, 0.2, 1.5]], &device);
//! let (values, indices) = ops::topk_relu(pre, 2);
//! let codes = SparseCodes::topk(values, indices, 4);
//! // Decode through a 4 × 3 dictionary without materialising the dense codes.
//! let w_dec = Tensor::<2>::from_floats(
//!     [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]],
//!     &device,
//! );
//! let recon = codes.times_decoder(w_dec);
//! assert_eq!(recon.dims(), [2, 3]);
//! let l0: Vec<f32> = codes.l0_per_row().into_data().try_into_vec_as().unwrap();
//! assert_eq!(l0, vec![2.0, 2.0]);
//! ```

#![warn(missing_docs)]

pub mod affine;
pub mod codes;
pub mod config;
pub mod error;
pub mod format;
pub mod hooks;
pub mod ops;
pub mod params;
pub mod registry;
pub mod rng;
pub mod sae;
pub mod tolerance;
pub mod validate;

pub use codes::{CodeValues, RowNorm, SparseCodes};
pub use config::{Normalization, SaeConfig};
pub use error::{Result, SaeError};
pub use params::{ParamSet, ParamTensor};
pub use registry::Registry;
pub use sae::{Architecture, Forward, LossTerm, Sae, TrainBatch, TrainContext, TrainOutput};
