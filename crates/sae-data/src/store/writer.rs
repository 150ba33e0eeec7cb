//! Writing a store shard by shard, atomically, resumably.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, tensor::TensorView};
use sae_core::format::atomic::write_atomic;

use super::TokenRef;
use super::metadata::{ACTIVATIONS_TENSOR, METADATA_FILE, STORE_FORMAT, ShardInfo, StoreMetadata, TOKEN_TENSORS};
use crate::error::{DataError, Result};

/// Appends activation rows to a store, committing one full shard at a time.
///
/// Rows pushed since the last committed shard live in memory only: after a crash,
/// [`StoreWriter::resume`] reopens the store at [`StoreWriter::committed_rows`] and the producer
/// regenerates from there.
#[derive(Debug)]
pub struct StoreWriter {
    dir: PathBuf,
    meta: StoreMetadata,
    pending: Vec<f32>,
    pending_tokens: Vec<TokenRef>,
}

impl StoreWriter {
    /// Starts a new store in `dir` (created if needed). Fails if `dir` already holds a store.
    pub fn create(dir: &Path, d_in: usize, shard_rows: usize, source: serde_json::Value) -> Result<Self> {
        if d_in == 0 || shard_rows == 0 {
            return Err(DataError::invalid("d_in/shard_rows", "must be positive"));
        }
        let meta_path = dir.join(METADATA_FILE);
        if meta_path.exists() {
            return Err(DataError::Metadata {
                path: meta_path,
                field: "-".into(),
                reason: "a store already exists here; resume it or choose another directory".into(),
            });
        }
        std::fs::create_dir_all(dir).map_err(|e| DataError::io("creating", dir, e))?;
        let meta = StoreMetadata {
            format: STORE_FORMAT.into(),
            version: 1,
            d_in,
            dtype: "float32".into(),
            count: 0,
            shard_rows,
            shards: Vec::new(),
            complete: false,
            source,
            tokens: false,
        };
        let writer = Self { dir: dir.to_path_buf(), meta, pending: Vec::new(), pending_tokens: Vec::new() };
        writer.write_metadata()?;
        Ok(writer)
    }

    /// Reopens an incomplete store to append after its committed rows.
    pub fn resume(dir: &Path) -> Result<Self> {
        let store = super::ActivationStore::open(dir)?;
        let meta = store.metadata().clone();
        if meta.complete {
            return Err(DataError::Metadata {
                path: dir.join(METADATA_FILE),
                field: "complete".into(),
                reason: "the store is already complete".into(),
            });
        }
        Ok(Self { dir: dir.to_path_buf(), meta, pending: Vec::new(), pending_tokens: Vec::new() })
    }

    /// Rows safely on disk.
    pub fn committed_rows(&self) -> u64 {
        self.meta.count
    }

    /// Rows accepted so far (committed plus pending in memory).
    pub fn rows_written(&self) -> u64 {
        self.meta.count + (self.pending.len() / self.meta.d_in) as u64
    }

    /// The store's width.
    pub fn d_in(&self) -> usize {
        self.meta.d_in
    }

    /// Starts a new store whose rows carry their tokens ([`StoreWriter::push_rows_with_tokens`]).
    pub fn create_with_tokens(dir: &Path, d_in: usize, shard_rows: usize, source: serde_json::Value) -> Result<Self> {
        let mut w = Self::create(dir, d_in, shard_rows, source)?;
        w.meta.tokens = true;
        w.write_metadata()?;
        Ok(w)
    }

    /// Appends rows with the token each came from (a store made by
    /// [`StoreWriter::create_with_tokens`]); `tokens` has one entry per row.
    pub fn push_rows_with_tokens(&mut self, rows: &[f32], tokens: &[TokenRef]) -> Result<()> {
        if !self.meta.tokens {
            return Err(DataError::invalid("tokens", "this store was created without tokens; use push_rows"));
        }
        if tokens.len() * self.meta.d_in != rows.len() {
            return Err(DataError::invalid("tokens", format!("{} tokens for {} values of width {}", tokens.len(), rows.len(), self.meta.d_in)));
        }
        self.push(rows, tokens)
    }

    /// Appends rows (row-major, a multiple of `d_in` values), committing full shards.
    pub fn push_rows(&mut self, rows: &[f32]) -> Result<()> {
        if self.meta.tokens {
            return Err(DataError::invalid("tokens", "this store keeps the token of every row; use push_rows_with_tokens"));
        }
        self.push(rows, &[])
    }

    fn push(&mut self, rows: &[f32], tokens: &[TokenRef]) -> Result<()> {
        if rows.len() % self.meta.d_in != 0 {
            return Err(DataError::invalid("rows", format!("{} values is not a whole number of rows of width {}", rows.len(), self.meta.d_in)));
        }
        let shard_len = self.meta.shard_rows * self.meta.d_in;
        let d = self.meta.d_in;
        let mut rest = rows;
        let mut rest_tokens = tokens;
        while !rest.is_empty() {
            let take = (shard_len - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.meta.tokens {
                self.pending_tokens.extend_from_slice(&rest_tokens[..take / d]);
                rest_tokens = &rest_tokens[take / d..];
            }
            if self.pending.len() == shard_len {
                self.commit_shard()?;
            }
        }
        Ok(())
    }

    /// Commits the last partial shard and marks the store complete.
    pub fn finish(mut self) -> Result<StoreMetadata> {
        if !self.pending.is_empty() {
            self.commit_shard()?;
        }
        self.meta.complete = true;
        self.write_metadata()?;
        Ok(self.meta)
    }

    fn commit_shard(&mut self) -> Result<()> {
        let rows = self.pending.len() / self.meta.d_in;
        let file = format!("shard-{:06}.safetensors", self.meta.shards.len());
        let path = self.dir.join(&file);
        let bytes: Vec<u8> = self.pending.iter().flat_map(|v| v.to_le_bytes()).collect();
        let bad = |e: safetensors::SafeTensorError| DataError::Shard { path: path.clone(), reason: e.to_string() };
        let view = TensorView::new(Dtype::F32, vec![rows, self.meta.d_in], &bytes).map_err(bad)?;
        let columns: [Vec<u8>; 3] = if self.meta.tokens {
            let col = |f: fn(&TokenRef) -> u32| self.pending_tokens.iter().flat_map(|t| f(t).to_le_bytes()).collect::<Vec<u8>>();
            [col(|t| t.id), col(|t| t.pos), col(|t| t.seq)]
        } else {
            Default::default()
        };
        let mut views = vec![(ACTIVATIONS_TENSOR, view)];
        if self.meta.tokens {
            for (name, col) in TOKEN_TENSORS.iter().zip(&columns) {
                views.push((name, TensorView::new(Dtype::U32, vec![rows], col).map_err(bad)?));
            }
        }
        let serialized = safetensors::serialize(views, None).map_err(bad)?;
        // Shard first, then the metadata that points at it: a crash in between leaves an
        // orphan file that the next commit overwrites.
        write_atomic(&path, &serialized)?;
        self.meta.shards.push(ShardInfo { file, rows });
        self.meta.count += rows as u64;
        self.pending.clear();
        self.pending_tokens.clear();
        self.write_metadata()
    }

    fn write_metadata(&self) -> Result<()> {
        write_atomic(&self.dir.join(METADATA_FILE), self.meta.to_json().as_bytes())?;
        Ok(())
    }
}
