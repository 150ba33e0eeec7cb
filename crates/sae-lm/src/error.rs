//! Typed errors of the language-model sources.

use std::path::PathBuf;

/// Everything that can go wrong loading or running a language model. Each variant says which
/// file, tensor or hook, and what to do where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum LmError {
    /// The model's assets are not in the cache.
    #[error(transparent)]
    Asset(#[from] sae_assets::AssetError),
    /// Writing an activation store failed.
    #[error(transparent)]
    Data(#[from] sae_data::DataError),
    /// Reading weights, or an intervention, failed in `sae-core`.
    #[error(transparent)]
    Core(#[from] sae_core::SaeError),
    /// A file the model needs is not in its asset directory.
    #[error("{path}: missing (the asset directory is incomplete; fetch it again with `sae assets fetch {asset}`)")]
    MissingFile {
        /// The file.
        path: PathBuf,
        /// The asset it belongs to.
        asset: &'static str,
    },
    /// A configuration or tokenizer file is malformed.
    #[error("{path}: {reason}")]
    BadFile {
        /// The file.
        path: PathBuf,
        /// What was wrong.
        reason: String,
    },
    /// No hook point has this name.
    #[error("unknown hook point `{name}` for {model}; valid hook points: {valid}")]
    UnknownHook {
        /// The name asked for.
        name: String,
        /// The model.
        model: &'static str,
        /// The valid names, with `{i}` for the layer index.
        valid: String,
    },
    /// The input cannot be run (empty text, too long, ...).
    #[error("bad input: {0}")]
    Input(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, LmError>;
