//! Typed errors of fetching and locating assets.

use std::path::PathBuf;

/// Everything that can go wrong fetching, checking, unpacking or finding an asset. Each variant
/// says which asset or file, and what to do about it where there is something to do.
#[derive(Debug, thiserror::Error)]
pub enum AssetError {
    /// The asset has not been fetched into the cache.
    #[error("asset `{name}` is not in the cache {dir}; fetch it with `sae assets fetch {name}` (or `cargo xtask assets {name}`)")]
    Missing {
        /// The asset.
        name: String,
        /// Where it was looked for.
        dir: PathBuf,
    },
    /// The package client could not be started.
    #[error("cannot run `{program}` to fetch `{name}`: {source}; {hint}")]
    ClientMissing {
        /// The asset.
        name: String,
        /// The program that was not found or not runnable.
        program: String,
        /// What to install or set.
        hint: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The package client ran and failed.
    #[error("`{command}` failed ({status}) while fetching `{name}`: {stderr}")]
    ClientFailed {
        /// The asset.
        name: String,
        /// The command line.
        command: String,
        /// Its exit status.
        status: String,
        /// The end of what it printed on stderr.
        stderr: String,
    },
    /// The download is not the pinned file.
    #[error("SHA-256 of {path} is {actual}, expected {expected} (asset `{name}`): the file is corrupt, truncated or not the pinned version; it was not unpacked")]
    HashMismatch {
        /// The asset.
        name: String,
        /// The file checked.
        path: PathBuf,
        /// The pinned hash.
        expected: String,
        /// The hash found.
        actual: String,
    },
    /// The archive could not be read or holds something unsafe.
    #[error("cannot unpack {path} (asset `{name}`): {reason}")]
    Unpack {
        /// The asset.
        name: String,
        /// The archive.
        path: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file-system operation failed.
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
}

/// Shorthand for results of this module.
pub type AssetResult<T> = std::result::Result<T, AssetError>;

/// Maps an I/O error to [`AssetError::Io`] with the action and path.
pub(crate) fn io(action: &'static str, path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> AssetError {
    let path = path.into();
    move |source| AssetError::Io { action, path, source }
}
