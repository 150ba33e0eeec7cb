//! # sae-core
//!
//! The contract of the SAE workspace: the [`Sae`] and [`Architecture`] traits, [`SparseCodes`],
//! the [`Registry`] that maps an `architecture` name to its code, [`hooks`] and the
//! [`HookedModel`] a model source implements, the [`ActivationSource`] activations are read from, the
//! [`KernelPolicy`] that says how the hot-path operations run, the [`format`]s people already
//! use (SAELens, sparsify, Gemma Scope), and typed errors. Library code takes a burn
//! [`Device`](burn::tensor::Device) and never chooses one.
//!
//! This crate has no backend features and no kernels: the operations themselves (selections,
//! GEMMs, sparse products on every backend) are `sae-kernels`, built on this contract. A crate
//! that implements an architecture or an activation source needs this crate and burn only.
//!
//! ```
//! use burn::tensor::{Device, Int, Tensor};
//! use sae_core::SparseCodes;
//!
//! let device = Device::flex();
//! // Two rows of top-2 codes over 4 latents: values and their latent indices.
//! let values = Tensor::<2>::from_floats([[2.0, 0.5], [1.5, 0.4]], &device);
//! let indices = Tensor::<2, Int>::from_ints([[2, 0], [3, 1]], &device);
//! let codes = SparseCodes::topk(values, indices, 4);
//! let l0: Vec<f32> = codes.l0_per_row().into_data().try_into_vec_as().unwrap();
//! assert_eq!(l0, vec![2.0, 2.0]);
//! let dense: Vec<f32> = codes.to_dense().into_data().try_into_vec_as().unwrap();
//! assert_eq!(dense, vec![0.5, 0.0, 2.0, 0.0, 0.0, 0.4, 0.0, 1.5]);
//! ```

#![warn(missing_docs)]

pub mod codes;
pub mod config;
pub mod error;
pub mod format;
pub mod hooks;
pub mod model;
pub mod params;
pub mod policy;
pub mod registry;
pub mod rng;
pub mod sae;
pub mod source;
pub mod tolerance;
pub mod validate;

pub use codes::{CodeValues, RowNorm, SparseCodes};
pub use config::{Normalization, SaeConfig};
pub use error::{Result, SaeError};
pub use params::{ParamSet, ParamTensor};
pub use policy::{HostGemm, KernelChoice, KernelPolicy};
pub use model::HookedModel;
pub use registry::Registry;
pub use source::{ActivationSource, InMemorySource, RowMeta, RowMetaKind};
pub use sae::{Architecture, BuildOrigin, Forward, Schema, TypedArchitecture, LossTerm, Sae, TrainBatch, TrainContext, TrainOutput, loss_terms};
