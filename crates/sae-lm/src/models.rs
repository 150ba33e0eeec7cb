//! The models by name, for command lines and configuration files.

use burn::tensor::Device;
use sae_assets::AssetCache;

use crate::error::{LmError, Result};
use crate::model::LanguageModel;

/// Names of the models this crate implements.
pub const MODEL_NAMES: [&str; 2] = ["minilm", "smollm2"];

/// Loads the model called `name` from the asset cache.
pub fn load_model(name: &str, cache: &AssetCache, device: &Device) -> Result<Box<dyn LanguageModel>> {
    match name {
        "minilm" => Ok(Box::new(crate::minilm::MiniLm::from_cache(cache, device)?)),
        "smollm2" => Ok(Box::new(crate::smollm2::SmolLm2::from_cache(cache, device)?)),
        other => Err(LmError::Input(format!("unknown model `{other}`; models: {}", MODEL_NAMES.join(", ")))),
    }
}
