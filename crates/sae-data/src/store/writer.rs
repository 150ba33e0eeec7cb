//! Writing a store shard by shard, atomically, resumably.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, tensor::TensorView};
use sae_core::format::atomic::write_atomic;
use sae_core::format::lock::DirLock;
use sae_core::{RowMeta, RowMetaKind};

use super::metadata::{ACTIVATIONS_TENSOR, METADATA_FILE, ResumePoint, ShardInfo, StoreMetadata, meta_tensors, shard_file};
use crate::error::{DataError, Result};

/// Appends activation rows to a store, committing one full shard at a time.
///
/// Rows pushed since the last committed shard live in memory only: after a crash,
/// [`StoreWriter::resume`] reopens the store at [`StoreWriter::committed_rows`] and the producer
/// regenerates from there. A producer whose rows cannot be regenerated from a row count alone
/// (a harvest, whose filters drop rows) calls [`StoreWriter::set_cursor`] before each push; the
/// metadata of every commit then records where it stood ([`ResumePoint`]).
#[derive(Debug)]
pub struct StoreWriter {
    dir: PathBuf,
    meta: StoreMetadata,
    pending: Vec<f32>,
    pending_meta: Vec<RowMeta>,
    /// The producer's cursor for the rows pushed since it was set.
    cursor: Option<ResumePoint>,
    /// Held while writing: a second writer of the same store is refused.
    _lock: DirLock,
}

impl StoreWriter {
    /// Starts a new store in `dir` (created if needed) whose rows carry no metadata. Fails if
    /// `dir` already holds a store.
    pub fn create(dir: &Path, d_in: usize, shard_rows: usize, source: serde_json::Value) -> Result<Self> {
        Self::create_with_meta(dir, d_in, shard_rows, source, None)
    }

    /// Starts a new store whose rows carry metadata of `kind` ([`StoreWriter::push_rows_with_meta`]);
    /// `None` is [`StoreWriter::create`].
    pub fn create_with_meta(dir: &Path, d_in: usize, shard_rows: usize, source: serde_json::Value, kind: Option<RowMetaKind>) -> Result<Self> {
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
        let lock = DirLock::acquire(dir)?;
        // Checked again under the lock: another writer may have created the store meanwhile.
        if meta_path.exists() {
            return Err(DataError::Metadata { path: meta_path, field: "-".into(), reason: "a store already exists here; resume it or choose another directory".into() });
        }
        let meta = StoreMetadata::new(d_in, shard_rows, source, kind);
        let writer = Self { dir: dir.to_path_buf(), meta, pending: Vec::new(), pending_meta: Vec::new(), cursor: None, _lock: lock };
        writer.write_metadata()?;
        Ok(writer)
    }

    /// Reopens an incomplete store to append after its committed rows.
    pub fn resume(dir: &Path) -> Result<Self> {
        let lock = DirLock::acquire(dir)?;
        let store = super::ActivationStore::open(dir)?;
        let meta = store.metadata().clone();
        if meta.complete {
            return Err(DataError::Metadata {
                path: dir.join(METADATA_FILE),
                field: "complete".into(),
                reason: "a complete store already exists here and is never overwritten; choose another directory".into(),
            });
        }
        Ok(Self { dir: dir.to_path_buf(), meta, pending: Vec::new(), pending_meta: Vec::new(), cursor: None, _lock: lock })
    }

    /// Where the producer stood at the last commit, if it said ([`StoreWriter::set_cursor`]).
    pub fn resume_point(&self) -> Option<&ResumePoint> {
        self.meta.resume.as_ref()
    }

    /// The store's metadata as committed so far.
    pub fn metadata(&self) -> &StoreMetadata {
        &self.meta
    }

    /// Records the producer's state before its next push: the next committed shard's metadata
    /// keeps it with the row count at this call, so that a resumed producer can restart there.
    pub fn set_cursor(&mut self, cursor: serde_json::Value) {
        self.cursor = Some(ResumePoint { cursor, rows_before: self.rows_written() });
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

    /// Appends rows with where each came from (a store made by
    /// [`StoreWriter::create_with_meta`]); `meta` has one entry per row, all of the store's kind.
    pub fn push_rows_with_meta(&mut self, rows: &[f32], meta: &[RowMeta]) -> Result<()> {
        let Some(kind) = self.meta.row_meta else {
            return Err(DataError::invalid("row metadata", "this store was created without row metadata; use push_rows"));
        };
        if meta.len() * self.meta.d_in != rows.len() {
            return Err(DataError::invalid("row metadata", format!("{} entries for {} values of width {}", meta.len(), rows.len(), self.meta.d_in)));
        }
        if let Some(other) = meta.iter().find(|m| m.kind() != kind) {
            return Err(DataError::invalid("row metadata", format!("the store keeps {kind:?} metadata, got {other:?}")));
        }
        self.push(rows, meta)
    }

    /// Appends rows (row-major, a multiple of `d_in` values), committing full shards.
    pub fn push_rows(&mut self, rows: &[f32]) -> Result<()> {
        if let Some(kind) = self.meta.row_meta {
            return Err(DataError::invalid("row metadata", format!("this store keeps the {kind:?} metadata of every row; use push_rows_with_meta")));
        }
        self.push(rows, &[])
    }

    fn push(&mut self, rows: &[f32], meta: &[RowMeta]) -> Result<()> {
        if rows.len() % self.meta.d_in != 0 {
            return Err(DataError::invalid("rows", format!("{} values is not a whole number of rows of width {}", rows.len(), self.meta.d_in)));
        }
        let shard_len = self.meta.shard_rows * self.meta.d_in;
        let d = self.meta.d_in;
        let mut rest = rows;
        let mut rest_meta = meta;
        while !rest.is_empty() {
            let take = (shard_len - self.pending.len()).min(rest.len());
            self.pending.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.meta.row_meta.is_some() {
                self.pending_meta.extend_from_slice(&rest_meta[..take / d]);
                rest_meta = &rest_meta[take / d..];
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
        self.meta.resume = None;
        self.write_metadata()?;
        Ok(self.meta)
    }

    fn commit_shard(&mut self) -> Result<()> {
        let rows = self.pending.len() / self.meta.d_in;
        let file = shard_file(self.meta.shards.len());
        let path = self.dir.join(&file);
        let bytes: Vec<u8> = self.pending.iter().flat_map(|v| v.to_le_bytes()).collect();
        let bad = |e: safetensors::SafeTensorError| DataError::Shard { path: path.clone(), reason: e.to_string() };
        let view = TensorView::new(Dtype::F32, vec![rows, self.meta.d_in], &bytes).map_err(bad)?;
        // One little-endian u32 column per field of the kind.
        let names: &[&str] = self.meta.row_meta.map_or(&[], meta_tensors);
        let mut columns = vec![Vec::with_capacity(rows * 4); names.len()];
        for m in &self.pending_meta {
            for (col, v) in columns.iter_mut().zip(m.fields()) {
                col.extend_from_slice(&v.to_le_bytes());
            }
        }
        let mut views = vec![(ACTIVATIONS_TENSOR, view)];
        for (name, col) in names.iter().zip(&columns) {
            views.push((name, TensorView::new(Dtype::U32, vec![rows], col).map_err(bad)?));
        }
        let serialized = safetensors::serialize(views, None).map_err(bad)?;
        // Shard first, then the metadata that points at it: a crash in between leaves an
        // orphan file that the next commit overwrites.
        write_atomic(&path, &serialized)?;
        self.meta.shards.push(ShardInfo { file, rows });
        self.meta.count += rows as u64;
        if self.cursor.is_some() {
            self.meta.resume.clone_from(&self.cursor);
        }
        self.pending.clear();
        self.pending_meta.clear();
        self.write_metadata()
    }

    fn write_metadata(&self) -> Result<()> {
        write_atomic(&self.dir.join(METADATA_FILE), self.meta.to_json().as_bytes())?;
        Ok(())
    }
}
