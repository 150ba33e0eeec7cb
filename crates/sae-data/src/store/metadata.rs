//! The store's `metadata.json`: what the shards hold, written after every committed shard.

use std::path::Path;

use sae_core::RowMetaKind;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// File name of the metadata inside a store directory.
pub const METADATA_FILE: &str = "metadata.json";
/// The `format` value of every store this crate writes.
pub const STORE_FORMAT: &str = "sae-rs.activations";
/// Name of the activation tensor inside each shard.
pub const ACTIVATIONS_TENSOR: &str = "activations";
/// Names of the per-row token tensors (`u32` `[rows]`) in the shards of a store with
/// [`StoreMetadata::tokens`]: the token id, its position in its context window, and the index
/// of that window.
pub const TOKEN_TENSORS: [&str; 3] = ["token_ids", "positions", "sequences"];
/// Names of the per-row tensors of a store of image patches: image index, patch row, patch column.
pub const PATCH_TENSORS: [&str; 3] = ["patch_images", "patch_rows", "patch_cols"];
/// Names of the per-row tensors of a store of diffusion activations: sample, denoising step,
/// row and column in the feature map.
pub const DIFFUSION_TENSORS: [&str; 4] = ["diffusion_samples", "diffusion_steps", "diffusion_ys", "diffusion_xs"];

/// The per-row tensors (`u32` `[rows]`, in the order of [`RowMetaKind::field_names`]) that a
/// store keeping `kind` metadata holds in every shard.
pub fn meta_tensors(kind: RowMetaKind) -> &'static [&'static str] {
    match kind {
        RowMetaKind::Token => &TOKEN_TENSORS,
        RowMetaKind::Patch => &PATCH_TENSORS,
        RowMetaKind::Diffusion => &DIFFUSION_TENSORS,
    }
}

/// One committed shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    /// File name inside the store directory.
    pub file: String,
    /// Rows in the shard.
    pub rows: usize,
}

/// Where the producer of an incomplete store stood when it pushed the rows that the last
/// committed shard ends in: its own `cursor` (the samples it had consumed, its counters) and the
/// rows the store held before that push. Resuming, the producer restarts at `cursor` and skips
/// the `count − rows_before` rows of that push already on disk.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResumePoint {
    /// The producer's state before the push, as it described it.
    pub cursor: serde_json::Value,
    /// Rows in the store (committed or pending) before the push.
    pub rows_before: u64,
}

/// Contents of `metadata.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreMetadata {
    /// Always [`STORE_FORMAT`].
    pub format: String,
    /// Layout version (1).
    pub version: u32,
    /// Width of each activation vector.
    pub d_in: usize,
    /// Storage dtype of the activations (`float32`).
    pub dtype: String,
    /// Rows committed, the sum of the shards' rows.
    pub count: u64,
    /// Rows per full shard.
    pub shard_rows: usize,
    /// Committed shards, in order.
    pub shards: Vec<ShardInfo>,
    /// Whether the writer finished (an incomplete store can be resumed).
    pub complete: bool,
    /// Free-form description of where the activations came from (model, hook, corpus, generator).
    pub source: serde_json::Value,
    /// What each shard also holds about every row ([`meta_tensors`]): the token of a text
    /// model's row, the patch of an image model's, the position of a diffusion model's; `None`
    /// for rows with no origin (synthetic data).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_meta: Option<RowMetaKind>,
    /// Where an incomplete store's producer can restart ([`ResumePoint`]); absent when the
    /// producer set none, before the first shard, and once the store is complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume: Option<ResumePoint>,
    /// How the first stores said [`RowMetaKind::Token`] (`"tokens": true`); read, never written.
    #[serde(default, skip_serializing)]
    tokens: bool,
}

impl StoreMetadata {
    /// Parses and checks metadata read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let mut meta = parse_metadata(text, path)?;
        if std::mem::take(&mut meta.tokens) {
            if meta.row_meta.is_some_and(|k| k != RowMetaKind::Token) {
                return Err(DataError::Metadata { path: path.to_path_buf(), field: "tokens".into(), reason: "`tokens: true` contradicts `row_meta`".into() });
            }
            meta.row_meta = Some(RowMetaKind::Token);
        }
        meta.validate(path)?;
        Ok(meta)
    }

    /// The metadata of a new, empty store.
    pub fn new(d_in: usize, shard_rows: usize, source: serde_json::Value, row_meta: Option<RowMetaKind>) -> Self {
        Self {
            format: STORE_FORMAT.into(),
            version: 1,
            d_in,
            dtype: "float32".into(),
            count: 0,
            shard_rows,
            shards: Vec::new(),
            complete: false,
            source,
            row_meta,
            resume: None,
            tokens: false,
        }
    }

    /// Checks internal consistency: the format tag, a positive width, a known dtype, and a count
    /// equal to the sum of the shard rows.
    pub fn validate(&self, path: &Path) -> Result<()> {
        let bad = |field: &str, reason: String| DataError::Metadata { path: path.to_path_buf(), field: field.into(), reason };
        if self.format != STORE_FORMAT {
            return Err(bad("format", format!("expected `{STORE_FORMAT}`, got `{}`", self.format)));
        }
        if self.version != 1 {
            return Err(bad("version", format!("unsupported version {}", self.version)));
        }
        if self.d_in == 0 {
            return Err(bad("d_in", "must be positive".into()));
        }
        if self.dtype != "float32" {
            return Err(bad("dtype", format!("unsupported dtype `{}` (stores hold float32)", self.dtype)));
        }
        if self.shard_rows == 0 {
            return Err(bad("shard_rows", "must be positive".into()));
        }
        let sum: u64 = self.shards.iter().map(|s| s.rows as u64).sum();
        if sum != self.count {
            return Err(bad("count", format!("says {} rows but the shards hold {sum}", self.count)));
        }
        if let Some(s) = self.shards.iter().find(|s| s.rows == 0 || s.rows > self.shard_rows) {
            return Err(bad("shards", format!("shard `{}` has {} rows (allowed 1..={})", s.file, s.rows, self.shard_rows)));
        }
        if let Some(s) = self.shards.iter().find(|s| s.file.contains('/') || s.file.contains('\\') || s.file.starts_with('.')) {
            return Err(bad("shards", format!("shard file `{}` must be a plain name inside the store", s.file)));
        }
        if let Some(r) = &self.resume {
            if r.rows_before > self.count || self.complete {
                return Err(bad("resume", format!("a resume point {} rows before the {} committed{}", r.rows_before, self.count, if self.complete { " of a complete store" } else { "" })));
            }
        }
        // The writer names shard i `shard-{i:06}.safetensors`: a file listed twice, or out of
        // order, would read rows twice or in another order without any other sign.
        if let Some((i, s)) = self.shards.iter().enumerate().find(|(i, s)| s.file != shard_file(*i)) {
            return Err(bad("shards", format!("entry {i} is `{}`, expected `{}` (shards listed twice, out of order or renamed)", s.file, shard_file(i))));
        }
        Ok(())
    }

    /// Serialises to pretty JSON.
    pub fn to_json(&self) -> String {
        // Plain data: serialisation cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
}

/// The file name of shard `index`.
pub fn shard_file(index: usize) -> String {
    format!("shard-{index:06}.safetensors")
}

fn parse_metadata(text: &str, path: &Path) -> Result<StoreMetadata> {
    let mut de = serde_json::Deserializer::from_str(text);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let at = e.path().to_string();
        let reason = e.inner().to_string();
        // Unknown and missing fields are named by serde in backticks.
        let field = if at == "." { reason.split('`').nth(1).filter(|_| reason.contains("field")).unwrap_or("-").to_string() } else { at };
        DataError::Metadata { path: path.to_path_buf(), field, reason }
    })
}
