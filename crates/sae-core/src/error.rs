//! Typed errors for everything that can go wrong with user-supplied SAEs, configs and arrays.

use std::path::PathBuf;

/// Every failure `sae-core` reports. Each variant says what was wrong and where (file, field).
#[derive(Debug, thiserror::Error)]
pub enum SaeError {
    /// An I/O operation on `path` failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("reading", "writing", "renaming", ...).
        action: &'static str,
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A config file could not be parsed, or a field in it is invalid.
    #[error("invalid config {path}: field `{field}`: {reason}")]
    Config {
        /// The config file (or `<memory>` for an in-memory config).
        path: PathBuf,
        /// The offending field (`-` when the whole file is malformed).
        field: String,
        /// Why it is invalid.
        reason: String,
    },
    /// No architecture with this name is registered.
    #[error("unknown architecture `{name}`{}; known architectures: {known}", at_path(.path))]
    UnknownArchitecture {
        /// The name that was asked for.
        name: String,
        /// The config file that named it, if any.
        path: Option<PathBuf>,
        /// Comma-separated list of registered names.
        known: String,
    },
    /// A tensor the architecture needs is not in the weights file.
    #[error("{path}: missing tensor `{name}` (required by architecture `{architecture}`)")]
    MissingTensor {
        /// The weights file.
        path: PathBuf,
        /// Tensor name.
        name: String,
        /// Architecture that requires it.
        architecture: String,
    },
    /// A tensor has the wrong shape.
    #[error("{path}: tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    ShapeMismatch {
        /// The file the tensor came from (or `<memory>`).
        path: PathBuf,
        /// Tensor (or array) name.
        name: String,
        /// Shape found.
        actual: Vec<usize>,
        /// Shape required.
        expected: Vec<usize>,
    },
    /// A tensor or array has a dtype we cannot read.
    #[error("{path}: tensor `{name}` has unsupported dtype {dtype} (supported: {supported})")]
    UnsupportedDtype {
        /// File.
        path: PathBuf,
        /// Tensor or array name.
        name: String,
        /// The dtype found.
        dtype: String,
        /// What would have been accepted.
        supported: &'static str,
    },
    /// A file is truncated or not in the format it claims to be.
    #[error("{path}: corrupt or unreadable {format} file: {reason}")]
    CorruptFile {
        /// File.
        path: PathBuf,
        /// Expected format ("safetensors", "npy", "npz", "json").
        format: &'static str,
        /// What was wrong.
        reason: String,
    },
    /// Input activations contain NaN or infinite values.
    #[error("{source_name}: {count} non-finite value(s) (NaN or Inf); first at row {row}, column {col}")]
    NonFinite {
        /// Where the values came from (file path or `<memory>`).
        source_name: String,
        /// How many non-finite values.
        count: usize,
        /// Row of the first one.
        row: usize,
        /// Column of the first one.
        col: usize,
    },
    /// A directory is not an SAE directory of any known format.
    #[error("{path}: not an SAE directory: {reason}")]
    UnknownFormat {
        /// The directory.
        path: PathBuf,
        /// What was looked for.
        reason: String,
    },
    /// An operation is not possible for this SAE (e.g. saving an architecture in a format that
    /// cannot express it).
    #[error("{0}")]
    Unsupported(String),
    /// A tensor's values could not be read back to the host (a backend error, or a dtype that
    /// cannot be converted to the one asked for).
    #[error("could not read {what} back to the host: {reason}")]
    HostRead {
        /// Which tensor.
        what: String,
        /// The backend's or the conversion's message.
        reason: String,
    },
    /// A parameter that an architecture needs is absent or has the wrong rank: the
    /// architecture's own schema was not checked, or code changed the set behind its back.
    #[error("parameter `{name}` is {found}, expected a {expected}")]
    MissingParam {
        /// The parameter's name.
        name: String,
        /// `"absent"` or what it is instead.
        found: String,
        /// `"matrix"` or `"vector"`.
        expected: &'static str,
    },
    /// An activation source could not deliver rows (its own typed error is the source).
    #[error("activation source {name}: {source}")]
    Source {
        /// The source's name ([`ActivationSource::name`](crate::ActivationSource::name)).
        name: String,
        /// What went wrong, in the source's own error type.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// No hook point of a model has this name.
    #[error("unknown hook point `{name}` for {model}; valid hook points: {valid}")]
    UnknownHook {
        /// The name asked for.
        name: String,
        /// The model.
        model: String,
        /// The valid names, with `{i}` for the block index.
        valid: String,
    },
    /// A model could not load or run (its own typed error is the source).
    #[error("{name}: {source}")]
    Model {
        /// The model's name.
        name: String,
        /// What went wrong, in the model crate's own error type.
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Another run is writing this directory ([`DirLock`](crate::format::lock::DirLock)).
    #[error("{path} is being written by another process (it holds {path}/.sae-lock); wait for it to finish or choose another directory")]
    Locked {
        /// The directory.
        path: PathBuf,
    },
    /// Something this code relies on does not hold: a bug, reported instead of a panic.
    #[error("internal invariant violated: {0}")]
    Invariant(String),
}

fn at_path(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!(" in {}", p.display()),
        None => String::new(),
    }
}

impl SaeError {
    /// Builds an [`SaeError::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SaeError::Io { action, path: path.into(), source }
    }

    /// Builds an [`SaeError::Config`].
    pub fn config(path: impl Into<PathBuf>, field: impl Into<String>, reason: impl Into<String>) -> Self {
        SaeError::Config { path: path.into(), field: field.into(), reason: reason.into() }
    }

    /// Builds an [`SaeError::Invariant`].
    pub fn invariant(what: impl Into<String>) -> Self {
        SaeError::Invariant(what.into())
    }

    /// Builds an [`SaeError::HostRead`].
    pub fn host_read(what: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        SaeError::HostRead { what: what.into(), reason: reason.to_string() }
    }

    /// Builds an [`SaeError::CorruptFile`].
    pub fn corrupt(path: impl Into<PathBuf>, format: &'static str, reason: impl Into<String>) -> Self {
        SaeError::CorruptFile { path: path.into(), format, reason: reason.into() }
    }
}

/// Result alias used throughout the SAE crates.
pub type Result<T, E = SaeError> = std::result::Result<T, E>;
