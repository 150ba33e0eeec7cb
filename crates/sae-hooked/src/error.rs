//! The error of the generic harvest for callers without an error type of their own.

/// A harvest or catalog failure: the model or the SAE (`sae-core`), the store (`sae-data`), an
/// asset, or a name nobody registered. Model crates usually have their own error type with
/// `From` both [`sae_core::SaeError`] and [`sae_data::DataError`] and use that instead.
#[derive(Debug, thiserror::Error)]
pub enum HookedError {
    /// The model, its hooks or an SAE failed.
    #[error(transparent)]
    Core(#[from] sae_core::SaeError),
    /// Writing the activation store failed.
    #[error(transparent)]
    Data(#[from] sae_data::DataError),
    /// An asset could not be found or fetched.
    #[error(transparent)]
    Asset(#[from] sae_assets::AssetError),
    /// No model or asset of the catalog has this name.
    #[error("unknown {what} `{name}`; known: {known}")]
    Unknown {
        /// `"model"` or `"asset"`.
        what: &'static str,
        /// The name asked for.
        name: String,
        /// The registered names.
        known: String,
    },
}
