//! # sae-hooked
//!
//! What every model with hook points ([`sae_core::HookedModel`]) gets without code of its own:
//! - [`harvest`]: batches of input through the model, the activations at one hook written to an
//!   activation store with where every row came from ([`sae_core::RowMeta`]);
//! - [`intervene`]: an SAE at a hook point (splice in its reconstruction, ablate or scale
//!   features, add steering vectors), as a [`sae_core::hooks::Hooks`] that any forward pass takes;
//! - [`catalog`]: models by name, each model crate registering its own with one call.
//!
//! A language model, a vision model and a diffusion model differ in their input and in what
//! their rows mean; everything here depends only on the contract.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use sae_core::hooks::{HookTensor, Hooks};
//! use sae_core::{HookedModel, RowMeta};
//! use sae_hooked::harvest::{HarvestSettings, harvest};
//!
//! /// `[batch, pos, 2]` in, the same out, one hook on the way.
//! struct Identity;
//! impl HookedModel for Identity {
//!     type Input = Tensor<3>;
//!     type Output = Tensor<3>;
//!     fn name(&self) -> &str { "identity" }
//!     fn hook_names(&self) -> Vec<String> { vec!["hook_x".into()] }
//!     fn hook_width(&self, _: &str) -> Option<usize> { Some(2) }
//!     fn forward(&self, x: &Tensor<3>, hooks: &mut dyn Hooks) -> sae_core::Result<Tensor<3>> {
//!         match hooks.at("hook_x", HookTensor::D3(x.clone()))? {
//!             HookTensor::D3(t) => Ok(t),
//!             HookTensor::D4(_) => unreachable!(),
//!         }
//!     }
//!     fn batch_len(&self, x: &Tensor<3>) -> usize { x.dims()[0] }
//!     fn row_meta(&self, x: &Tensor<3>, _: &str, first: u64) -> sae_core::Result<Vec<RowMeta>> {
//!         let [b, s, _] = x.dims();
//!         Ok((0..b * s).map(|r| RowMeta::Token { id: 0, pos: (r % s) as u32, window: first as u32 + (r / s) as u32 }).collect())
//!     }
//! }
//!
//! let device = Device::flex();
//! let batches = (0..3).map(|_| Ok::<_, sae_hooked::HookedError>(Tensor::<3>::ones([2, 4, 2], &device)));
//! let dir = tempfile::tempdir()?;
//! let settings = HarvestSettings { hook: "hook_x".into(), rows: 20, ..Default::default() };
//! let report = harvest(&Identity, batches, &settings, |_| true, &dir.path().join("store"), |_, _| {})?;
//! assert_eq!((report.rows, report.samples), (20, 6));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod catalog;
pub mod error;
pub mod harvest;
pub mod intervene;

pub use catalog::{ModelCatalog, ModelEntry};
pub use error::HookedError;
pub use intervene::{FeatureEdit, Intervention, Splice};
