//! One target per parser of untrusted input. A target takes the bytes of one file (the others
//! of its directory, where it needs some, come from a valid seed) and must return, with an
//! error or not, without panicking or hanging.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use sae_core::format::load_sae;

/// A parser under test.
pub struct Target {
    /// Name on the command line.
    pub name: &'static str,
    /// What it parses.
    pub what: &'static str,
    /// The seed inputs (valid files) the mutations start from.
    pub seeds: fn(&Path) -> Vec<Vec<u8>>,
    /// Parses one input; a scratch directory of its own is given.
    pub run: fn(&[u8], &Path),
}

fn read(path: PathBuf) -> Vec<u8> {
    std::fs::read(&path).unwrap_or_else(|e| panic!("seed {}: {e}", path.display()))
}

/// The reference fixtures of the repository, `fixtures/reference/<name>/<file>`.
fn fixture(root: &Path, dir: &str, file: &str) -> Vec<u8> {
    read(root.join("fixtures/reference").join(dir).join(file))
}

/// Writes the other files of a directory once (from `dir` of the fixtures), then `bytes` as
/// `file`, and loads the directory as an SAE.
fn load_dir(bytes: &[u8], scratch: &Path, file: &str) {
    std::fs::write(scratch.join(file), bytes).expect("writing the scratch file");
    let _ = load_sae(scratch, &sae_arch::registry(), &Device::flex());
}

fn prepare(root: &Path, scratch: &Path, dir: &str, files: &[&str]) {
    for f in files {
        if !scratch.join(f).exists() {
            std::fs::write(scratch.join(f), fixture(root, dir, f)).expect("writing a seed file");
        }
    }
}

/// Every target.
pub fn all() -> Vec<Target> {
    vec![
        Target { name: "npy", what: ".npy arrays", seeds: |r| vec![fixture(r, "saelens_topk", "x.npy"), fixture(r, "saelens_topk", "codes.npy")], run: |b, _| {
            let _ = sae_core::format::npy::parse_npy(b, Path::new("fuzz.npy"));
        } },
        Target { name: "cfg-json", what: "SAELens cfg.json, then the architecture's schema", seeds: |r| ["saelens_topk", "saelens_jumprelu", "saelens_gated", "saelens_matching_pursuit", "train_matryoshka", "saelens_standard_layer_norm"].iter().map(|d| fixture(r, d, "cfg.json")).collect(), run: |b, _| {
            if let Ok(cfg) = sae_core::SaeConfig::from_json_str(&String::from_utf8_lossy(b), Path::new("cfg.json"))
                && let Some(arch) = sae_arch::registry().get(&cfg.architecture)
            {
                let _ = arch.schema(&cfg, Path::new("cfg.json"));
                // Initialising allocates what the config asks for (the CLI checks that against
                // memory first): only small ones are built and run.
                if cfg.d_in.saturating_mul(cfg.d_sae).saturating_add(cfg.d_out().saturating_mul(cfg.d_in)) <= 1 << 16 {
                    let _ = arch.init(cfg, &Device::flex(), 0).map(|sae| sae.encode(burn::tensor::Tensor::<2>::ones([2, sae.config().d_in], &Device::flex())));
                }
            }
        } },
        Target { name: "saelens-weights", what: "SAELens sae_weights.safetensors beside a valid cfg.json", seeds: |r| vec![fixture(r, "saelens_topk", "sae_weights.safetensors")], run: |b, s| {
            prepare(&crate::repo_root(), s, "saelens_topk", &["cfg.json"]);
            load_dir(b, s, "sae_weights.safetensors");
        } },
        Target { name: "saelens-dir-cfg", what: "a SAELens cfg.json beside valid weights", seeds: |r| vec![fixture(r, "saelens_jumprelu", "cfg.json")], run: |b, s| {
            prepare(&crate::repo_root(), s, "saelens_jumprelu", &["sae_weights.safetensors"]);
            load_dir(b, s, "cfg.json");
        } },
        Target { name: "sparsify", what: "sparsify sae.safetensors beside a valid cfg.json", seeds: |r| vec![fixture(r, "sparsify_topk", "sae.safetensors")], run: |b, s| {
            prepare(&crate::repo_root(), s, "sparsify_topk", &["cfg.json"]);
            load_dir(b, s, "sae.safetensors");
        } },
        Target { name: "sparsify-cfg", what: "a sparsify cfg.json beside valid weights", seeds: |r| vec![fixture(r, "sparsify_topk", "cfg.json"), fixture(r, "sparsify_skip", "cfg.json")], run: |b, s| {
            prepare(&crate::repo_root(), s, "sparsify_topk", &["sae.safetensors"]);
            load_dir(b, s, "cfg.json");
        } },
        Target { name: "npz", what: "Gemma Scope params.npz", seeds: |r| vec![fixture(r, "gemma_scope", "params.npz"), fixture(r, "gemma_scope_compressed", "params.npz")], run: |b, s| load_dir(b, s, "params.npz") },
        Target { name: "gguf", what: "GGUF headers, metadata and tensors (dequantised), and the tokenizer from its metadata", seeds: |_| vec![crate::gguf_seed::tiny_llama()], run: |b, _| {
            if let Ok(g) = sae_lm::gguf::GgufFile::parse(Path::new("fuzz.gguf"), b.to_vec()) {
                let infos: Vec<(String, Vec<usize>)> = g.tensors.values().map(|t| (t.name.clone(), t.shape.clone())).collect();
                for (name, shape) in infos {
                    let _ = g.tensor_f32(&name, &shape);
                }
                let _ = sae_lm::tokenizer::TextTokenizer::from_gguf(&g);
            }
        } },
        Target { name: "store-metadata", what: "an activation store's metadata.json, then every row and its metadata", seeds: |_| vec![crate::store_seed::metadata()], run: |b, s| {
            crate::store_seed::ensure(s);
            std::fs::write(s.join("metadata.json"), b).expect("writing metadata");
            read_store(s);
        } },
        Target { name: "store-shard", what: "a store shard (safetensors with row metadata)", seeds: |_| vec![crate::store_seed::shard()], run: |b, s| {
            crate::store_seed::ensure(s);
            std::fs::write(s.join("metadata.json"), crate::store_seed::metadata()).expect("writing metadata");
            std::fs::write(s.join("shard-000000.safetensors"), b).expect("writing the shard");
            read_store(s);
        } },
        Target { name: "train-toml", what: "a training config (TOML), checked as the trainer checks it", seeds: |_| vec![crate::TRAIN_TOML.as_bytes().to_vec()], run: |b, _| {
            if let Ok(cfg) = sae_train::TrainConfig::from_toml(&String::from_utf8_lossy(b), Path::new("train.toml")) {
                let _ = cfg.validate(Path::new("train.toml"));
            }
        } },
    ]
}

fn read_store(dir: &Path) {
    use sae_core::ActivationSource;
    if let Ok(store) = sae_data::store::ActivationStore::open(dir) {
        let n = store.len().min(1 << 16) as usize;
        let mut out = Vec::new();
        let _ = store.read_rows(0, n, &mut out);
        let _ = store.read_meta(0, n);
    }
}
