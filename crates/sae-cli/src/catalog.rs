//! The models and assets the `sae` binary knows: each model crate registers its own, with one
//! call here; no command names a model.

use sae_assets::Asset;
use sae_hooked::ModelCatalog;
use sae_lm::LanguageModel;

/// The language models (`--model` of `sae harvest`, `run`, `generate`, `eval`, `report`).
pub fn text_models() -> ModelCatalog<dyn LanguageModel> {
    let mut catalog = ModelCatalog::new();
    sae_lm::register(&mut catalog);
    catalog
}

/// Every asset of every registered model crate, for `sae assets`.
pub fn assets() -> Vec<Asset> {
    text_models().assets().to_vec()
}
