//! # sae-lm
//!
//! Real language models on burn, for training SAEs on their activations and for intervening
//! with them: all-MiniLM-L6-v2 (a BERT sentence encoder, [`minilm`]) and SmolLM2-135M-Instruct (a
//! LLaMA decoder read from GGUF, [`smollm2`]). Each model is a [`sae_core::HookedModel`] (hook
//! points named as in TransformerLens, `blocks.{i}.hook_resid_post`, `blocks.{i}.attn.hook_pattern`,
//! ..., and a forward pass that calls [`sae_core::hooks::Hooks`] at each of them, to read
//! activations or replace them) and a [`LanguageModel`] (its own tokenizer, framing, key/value
//! cache). Harvesting and interventions are the generic ones of `sae-hooked`; this crate adds
//! what is text-only: corpus windows ([`harvest`]), generation ([`generate`]) and the
//! next-token losses with an SAE spliced in ([`downstream`]). Weights come from the pinned
//! assets of [`assets`], never from a model hub; [`register`] puts the models into a catalog.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use sae_core::HookedModel;
//! use sae_core::hooks::{Capture, HookTensor};
//! use sae_assets::AssetCache;
//! use sae_lm::{LanguageModel, minilm::MiniLm};
//!
//! let model = MiniLm::from_cache(&AssetCache::from_env(), &Device::flex())?;
//! let ids = model.tokenize("A man is playing a guitar.")?;
//! let mut capture = Capture::new(["blocks.3.hook_resid_post"]);
//! model.forward(&[ids], &mut capture)?;
//! let acts: Option<&HookTensor> = capture.get("blocks.3.hook_resid_post");
//! assert_eq!(acts.map(|a| a.dims()[2]), Some(384));
//! # Ok::<(), sae_lm::LmError>(())
//! ```

#![warn(missing_docs)]

pub mod assets;
pub mod dequant;
pub mod downstream;
pub mod error;
pub mod first_letter;
pub mod generate;
pub mod gguf;
pub mod harvest;
pub mod layers;
pub mod minilm;
pub mod model;
pub mod norms;
pub mod smollm2;
pub mod tokenizer;
pub mod weights;

pub use error::{LmError, Result};
pub use model::{KvCache, LanguageModel};
pub use assets::register;
