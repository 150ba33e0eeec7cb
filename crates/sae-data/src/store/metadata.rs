//! The store's `metadata.json`: what the shards hold, written after every committed shard.

use std::path::Path;

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

/// One committed shard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShardInfo {
    /// File name inside the store directory.
    pub file: String,
    /// Rows in the shard.
    pub rows: usize,
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
    /// Whether each shard also holds the token id, position and window of every row
    /// ([`TOKEN_TENSORS`]); stores of model activations do, synthetic ones do not.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub tokens: bool,
}

impl StoreMetadata {
    /// Parses and checks metadata read from `path`.
    pub fn parse(text: &str, path: &Path) -> Result<Self> {
        let meta = parse_metadata(text, path)?;
        meta.validate(path)?;
        Ok(meta)
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
        Ok(())
    }

    /// Serialises to pretty JSON.
    pub fn to_json(&self) -> String {
        // Plain data: serialisation cannot fail.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }
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
