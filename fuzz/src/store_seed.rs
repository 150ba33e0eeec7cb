//! A small activation store with token metadata, written once into each store target's scratch
//! directory: its `metadata.json` and its shard are the seeds.

use std::path::Path;

use sae_core::{RowMeta, RowMetaKind};
use sae_data::store::StoreWriter;

/// Rows and width of the seed store.
const ROWS: usize = 12;
const D: usize = 3;

fn build(dir: &Path) {
    let mut w = StoreWriter::create_with_meta(dir, D, 64, serde_json::json!({"model": "fuzz"}), Some(RowMetaKind::Token)).expect("seed store");
    let rows: Vec<f32> = (0..ROWS * D).map(|i| i as f32 * 0.25).collect();
    let meta: Vec<RowMeta> = (0..ROWS as u32).map(|i| RowMeta::Token { id: i * 3, pos: i % 4, window: i / 4 }).collect();
    w.push_rows_with_meta(&rows, &meta).expect("seed rows");
    w.finish().expect("seed store");
}

/// Makes sure `dir` holds the seed store's shard (the targets overwrite one file of it).
pub fn ensure(dir: &Path) {
    if !dir.join("shard-000000.safetensors").exists() {
        let tmp = dir.join("seed");
        std::fs::remove_dir_all(&tmp).ok();
        build(&tmp);
        std::fs::copy(tmp.join("shard-000000.safetensors"), dir.join("shard-000000.safetensors")).expect("copying the seed shard");
    }
}

fn seed_file(name: &str) -> Vec<u8> {
    let dir = std::env::temp_dir().join(format!("sae-fuzz-seed-store-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    build(&dir);
    let bytes = std::fs::read(dir.join(name)).expect("reading the seed store");
    std::fs::remove_dir_all(&dir).ok();
    bytes
}

/// The seed store's `metadata.json` (built once per process).
pub fn metadata() -> Vec<u8> {
    static META: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    META.get_or_init(|| seed_file("metadata.json")).clone()
}

/// The seed store's shard.
pub fn shard() -> Vec<u8> {
    seed_file("shard-000000.safetensors")
}
