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
    /// Reading weights, a hook, or an intervention failed in `sae-core`.
    #[error(transparent)]
    Core(sae_core::SaeError),
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
    /// The input cannot be run (empty text, too long, ...).
    #[error("bad input: {0}")]
    Input(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, LmError>;

/// A language model's error through the contract ([`sae_core::HookedModel`] returns
/// [`SaeError`](sae_core::SaeError)): a `sae-core` error as itself, any other as
/// [`SaeError::Model`](sae_core::SaeError::Model) holding it, so that the way back
/// ([`From<SaeError>`] for [`LmError`]) recovers the typed error.
impl From<LmError> for sae_core::SaeError {
    fn from(e: LmError) -> Self {
        match e {
            LmError::Core(e) => e,
            other => sae_core::SaeError::Model { name: "language model".into(), source: Box::new(other) },
        }
    }
}

impl From<sae_core::SaeError> for LmError {
    fn from(e: sae_core::SaeError) -> Self {
        match e {
            sae_core::SaeError::Model { name, source } => match source.downcast::<LmError>() {
                Ok(lm) => *lm,
                Err(source) => LmError::Core(sae_core::SaeError::Model { name, source }),
            },
            other => LmError::Core(other),
        }
    }
}
