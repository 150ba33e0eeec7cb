//! Models and assets by name, for command lines and configuration files. Each model crate
//! registers what it has with one call (`sae_lm::register(&mut catalog)`); nothing else names a
//! model, so adding a model touches only its own crate and that one call.
//!
//! ```
//! use burn::tensor::Device;
//! use sae_assets::AssetCache;
//! use sae_hooked::catalog::{ModelCatalog, ModelEntry};
//!
//! trait Model {}
//! struct Tiny;
//! impl Model for Tiny {}
//!
//! let mut catalog: ModelCatalog<dyn Model> = ModelCatalog::new();
//! catalog.register(ModelEntry { name: "tiny", summary: "a model of nothing", assets: &[], load: |_, _| Ok(Box::new(Tiny)) });
//! assert_eq!(catalog.names(), vec!["tiny"]);
//! assert!(catalog.load("tiny", &AssetCache::new("/nonexistent"), &Device::flex()).is_ok());
//! assert!(catalog.load("huge", &AssetCache::new("/nonexistent"), &Device::flex()).is_err());
//! ```

use burn::tensor::Device;
use sae_assets::{Asset, AssetCache};

use crate::error::HookedError;

/// How a registered model is built from its fetched assets.
pub type LoadModel<M> = fn(&AssetCache, &Device) -> sae_core::Result<Box<M>>;

/// One model of a catalog.
pub struct ModelEntry<M: ?Sized + 'static> {
    /// The name used on the command line (`smollm2`).
    pub name: &'static str,
    /// What it is, for listings.
    pub summary: &'static str,
    /// The assets it is loaded from (fetched by `sae assets fetch`, located by `load`).
    pub assets: &'static [Asset],
    /// Builds it.
    pub load: LoadModel<M>,
}

impl<M: ?Sized> std::fmt::Debug for ModelEntry<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelEntry").field("name", &self.name).field("assets", &self.assets.iter().map(|a| a.name).collect::<Vec<_>>()).finish()
    }
}

/// Models of one kind (`dyn LanguageModel`, a vision model trait, ...) and every asset
/// registered with them or on their own (corpora, datasets).
pub struct ModelCatalog<M: ?Sized + 'static> {
    models: Vec<ModelEntry<M>>,
    assets: Vec<Asset>,
}

impl<M: ?Sized> Default for ModelCatalog<M> {
    fn default() -> Self {
        Self { models: Vec::new(), assets: Vec::new() }
    }
}

impl<M: ?Sized> std::fmt::Debug for ModelCatalog<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelCatalog").field("models", &self.names()).field("assets", &self.assets.iter().map(|a| a.name).collect::<Vec<_>>()).finish()
    }
}

impl<M: ?Sized> ModelCatalog<M> {
    /// An empty catalog.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a model and its assets; a later model of the same name replaces the earlier one.
    pub fn register(&mut self, entry: ModelEntry<M>) -> &mut Self {
        for a in entry.assets {
            self.register_asset(*a);
        }
        self.models.retain(|m| m.name != entry.name);
        self.models.push(entry);
        self
    }

    /// Adds an asset that is not a model's (a corpus, a dataset); one of the same name is
    /// replaced.
    pub fn register_asset(&mut self, asset: Asset) -> &mut Self {
        self.assets.retain(|a| a.name != asset.name);
        self.assets.push(asset);
        self
    }

    /// The models' names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.models.iter().map(|m| m.name).collect()
    }

    /// The model called `name`.
    pub fn get(&self, name: &str) -> Option<&ModelEntry<M>> {
        self.models.iter().find(|m| m.name == name)
    }

    /// Builds the model called `name` from `cache` on `device`; an unknown name is an error
    /// listing the known ones.
    pub fn load(&self, name: &str, cache: &AssetCache, device: &Device) -> Result<Box<M>, HookedError> {
        let entry = self.get(name).ok_or_else(|| HookedError::Unknown { what: "model", name: name.into(), known: self.names().join(", ") })?;
        Ok((entry.load)(cache, device)?)
    }

    /// Every registered asset, in registration order.
    pub fn assets(&self) -> &[Asset] {
        &self.assets
    }

    /// The asset called `name`, or an error listing the known ones.
    pub fn asset(&self, name: &str) -> Result<&Asset, HookedError> {
        self.assets.iter().find(|a| a.name == name).ok_or_else(|| HookedError::Unknown {
            what: "asset",
            name: name.into(),
            known: self.assets.iter().map(|a| a.name).collect::<Vec<_>>().join(", "),
        })
    }
}
