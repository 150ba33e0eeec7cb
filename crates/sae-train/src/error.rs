//! Typed errors of training.

use std::path::PathBuf;

/// Everything that can stop a training run. Each variant names the file and field involved.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The training config is malformed or has an impossible value.
    #[error("invalid training config {path}: field `{field}`: {reason}")]
    Config {
        /// The config file (`<flags>` for command-line settings).
        path: PathBuf,
        /// The offending field.
        field: String,
        /// Why.
        reason: String,
    },
    /// A checkpoint is missing, corrupt, or was written for another config.
    #[error("checkpoint {path}: {reason}")]
    Checkpoint {
        /// The checkpoint directory or file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A plot could not be drawn.
    #[error("drawing {path}: {reason}")]
    Plot {
        /// The input or output file.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// An activation-store error.
    #[error(transparent)]
    Data(#[from] sae_data::DataError),
    /// An SAE error (architecture, config, formats).
    #[error(transparent)]
    Sae(#[from] sae_core::SaeError),
}

impl TrainError {
    /// Builds a [`TrainError::Config`].
    pub fn config(path: impl Into<PathBuf>, field: impl Into<String>, reason: impl Into<String>) -> Self {
        TrainError::Config { path: path.into(), field: field.into(), reason: reason.into() }
    }
}

/// Result alias for this crate.
pub type Result<T> = std::result::Result<T, TrainError>;
