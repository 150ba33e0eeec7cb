//! Typed errors of feature labelling and reports.

/// What can go wrong building examples or a report.
#[derive(Debug, thiserror::Error)]
pub enum LabelError {
    /// Running the SAE failed.
    #[error(transparent)]
    Core(#[from] sae_core::SaeError),
    /// Reading the activation store failed.
    #[error(transparent)]
    Data(#[from] sae_data::DataError),
    /// The inputs do not fit together (widths, a store without tokens, ...).
    #[error("{0}")]
    Input(String),
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, LabelError>;
