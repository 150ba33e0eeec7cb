//! Typed errors of activation stores and generators.

use std::path::PathBuf;

/// Everything that can go wrong reading or writing activations. Each variant names the file.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// An I/O operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file or directory.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The store's metadata is missing, malformed or contradicts itself.
    #[error("invalid store metadata {path}: field `{field}`: {reason}")]
    Metadata {
        /// The metadata file.
        path: PathBuf,
        /// The offending field (`-` for the whole file).
        field: String,
        /// Why.
        reason: String,
    },
    /// A shard is truncated, corrupt, or disagrees with the metadata.
    #[error("bad shard {path}: {reason}")]
    Shard {
        /// The shard file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// Activations contain NaN or infinity and the policy is to refuse them.
    #[error("{origin}: row {row} has a non-finite value ({value}) in column {column}")]
    NonFinite {
        /// Where the rows came from.
        origin: String,
        /// Row index within the batch or store.
        row: usize,
        /// Column of the first bad value.
        column: usize,
        /// The value.
        value: f32,
    },
    /// A generator or store setting is invalid.
    #[error("invalid setting `{field}`: {reason}")]
    Invalid {
        /// The setting.
        field: String,
        /// Why.
        reason: String,
    },
    /// An error from `sae-core` (safetensors I/O, atomic writes).
    #[error(transparent)]
    Core(#[from] sae_core::SaeError),
}

impl DataError {
    /// Builds a [`DataError::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        DataError::Io { action, path: path.into(), source }
    }

    /// Builds a [`DataError::Invalid`].
    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        DataError::Invalid { field: field.into(), reason: reason.into() }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, DataError>;
