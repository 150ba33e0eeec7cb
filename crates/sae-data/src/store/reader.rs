//! Reading a store: memory-mapped shards, checked against the metadata.

use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::{Dtype, SafeTensors};
use sae_core::{RowMeta, RowMetaKind};

use super::metadata::{ACTIVATIONS_TENSOR, METADATA_FILE, StoreMetadata, meta_tensors};
use crate::error::{DataError, Result};

#[derive(Debug)]
struct MappedShard {
    path: PathBuf,
    map: Mmap,
    /// Byte offset of the activation data inside the file.
    data_start: usize,
    /// Byte offsets of the row-metadata tensors ([`meta_tensors`]), one per field; empty when
    /// the store keeps none.
    meta_starts: Vec<usize>,
    rows: usize,
    /// Index of the shard's first row in the store.
    first_row: u64,
}

/// A store opened for reading. Shards are memory-mapped, so opening costs no reads of the data.
#[derive(Debug)]
pub struct ActivationStore {
    dir: PathBuf,
    meta: StoreMetadata,
    shards: Vec<MappedShard>,
}

impl ActivationStore {
    /// Opens the store in `dir`, checking every shard's header against the metadata: a missing,
    /// truncated or mis-shaped shard is an error naming the file.
    pub fn open(dir: &Path) -> Result<Self> {
        let meta_path = dir.join(METADATA_FILE);
        let text = std::fs::read_to_string(&meta_path).map_err(|e| DataError::io("reading store metadata", &meta_path, e))?;
        let meta = StoreMetadata::parse(&text, &meta_path)?;
        let mut shards = Vec::with_capacity(meta.shards.len());
        let mut first_row = 0u64;
        for info in &meta.shards {
            let path = dir.join(&info.file);
            let file = File::open(&path).map_err(|e| DataError::io("opening shard", &path, e))?;
            // SAFETY: the map is read-only; shards are written once (atomically, by rename) and
            // never modified in place, so the mapped bytes do not change under us.
            let map = unsafe { Mmap::map(&file) }.map_err(|e| DataError::io("mapping shard", &path, e))?;
            let (data_start, meta_starts) = check_shard(&map, &path, info.rows, meta.d_in, meta.row_meta)?;
            shards.push(MappedShard { path, map, data_start, meta_starts, rows: info.rows, first_row });
            first_row += info.rows as u64;
        }
        Ok(Self { dir: dir.to_path_buf(), meta, shards })
    }

    /// `Ok` if the writer finished the store; an incomplete store (a harvest or `sae synth` that
    /// was killed) is an error saying so, for readers that want all the data (training,
    /// evaluation) rather than what happens to be committed.
    pub fn require_complete(&self) -> Result<()> {
        if self.meta.complete {
            return Ok(());
        }
        Err(DataError::Metadata {
            path: self.dir.join(METADATA_FILE),
            field: "complete".into(),
            reason: format!("the store is incomplete: {} rows committed by a writer that did not finish (a killed harvest or synth); write it again, or continue it with the command's --resume where it has one", self.meta.count),
        })
    }

    /// The metadata.
    pub fn metadata(&self) -> &StoreMetadata {
        &self.meta
    }

    /// The store directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Number of rows.
    pub fn len(&self) -> u64 {
        self.meta.count
    }

    /// Whether the store has no rows.
    pub fn is_empty(&self) -> bool {
        self.meta.count == 0
    }

    /// Width of each row.
    pub fn d_in(&self) -> usize {
        self.meta.d_in
    }

    /// Appends rows `start .. start + n` (row-major) to `out`. Rows may span shards. (The
    /// [`ActivationSource`](sae_core::ActivationSource) method `read_rows` replaces instead.)
    pub fn append_rows(&self, start: u64, n: usize, out: &mut Vec<f32>) -> Result<()> {
        let d = self.meta.d_in;
        out.reserve(n * d);
        self.for_each_piece(start, n, |shard, local, take| {
            let begin = shard.data_start + local * d * 4;
            let bytes = &shard.map[begin..begin + take * d * 4];
            out.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            Ok(())
        })
    }

    /// Calls `f(shard, first local row, rows)` for the consecutive pieces of rows
    /// `start .. start + n`, one per shard they fall in; rows beyond the store are an error.
    fn for_each_piece(&self, start: u64, n: usize, mut f: impl FnMut(&MappedShard, usize, usize) -> Result<()>) -> Result<()> {
        let end = start.checked_add(n as u64).filter(|end| *end <= self.meta.count);
        let Some(end) = end else {
            return Err(DataError::invalid("rows", format!("rows {start}..{start}+{n} are beyond the store's {} rows ({})", self.meta.count, self.dir.display())));
        };
        let mut row = start;
        while row < end {
            let idx = self.shards.partition_point(|s| s.first_row + s.rows as u64 <= row);
            let shard = &self.shards[idx];
            let local = (row - shard.first_row) as usize;
            let take = ((end - row) as usize).min(shard.rows - local);
            f(shard, local, take)?;
            row += take as u64;
        }
        Ok(())
    }

    /// The metadata of rows `start .. start + n`, or `None` if the store keeps none.
    pub fn row_meta(&self, start: u64, n: usize) -> Result<Option<Vec<RowMeta>>> {
        let Some(kind) = self.meta.row_meta else {
            return Ok(None);
        };
        let mut out = Vec::with_capacity(n);
        let mut fields = Vec::with_capacity(4);
        self.for_each_piece(start, n, |shard, local, take| {
            for r in local..local + take {
                fields.clear();
                fields.extend(shard.meta_starts.iter().map(|&at| {
                    let b = at + r * 4;
                    u32::from_le_bytes([shard.map[b], shard.map[b + 1], shard.map[b + 2], shard.map[b + 3]])
                }));
                // The shard's tensors were checked against the kind on open.
                let m = kind.from_fields(&fields).ok_or_else(|| DataError::Shard { path: shard.path.clone(), reason: format!("row {r} has no {kind:?} metadata") })?;
                out.push(m);
            }
            Ok(())
        })?;
        Ok(Some(out))
    }

    /// Reads one row into `out` (replacing its contents).
    pub fn read_row(&self, index: u64, out: &mut Vec<f32>) -> Result<()> {
        out.clear();
        self.append_rows(index, 1, out)
    }

    /// The shard files, in order.
    pub fn shard_paths(&self) -> Vec<&Path> {
        self.shards.iter().map(|s| s.path.as_path()).collect()
    }
}

/// Validates a shard's safetensors header and size; returns the offsets of the activation data
/// and of the row-metadata tensors of `kind`.
fn check_shard(map: &[u8], path: &Path, rows: usize, d_in: usize, kind: Option<RowMetaKind>) -> Result<(usize, Vec<usize>)> {
    let bad = |reason: String| DataError::Shard { path: path.to_path_buf(), reason };
    let tensors = SafeTensors::deserialize(map).map_err(|e| bad(format!("not a valid safetensors file ({e}); it may be truncated")))?;
    let view = tensors.tensor(ACTIVATIONS_TENSOR).map_err(|_| bad(format!("no `{ACTIVATIONS_TENSOR}` tensor")))?;
    if view.dtype() != Dtype::F32 {
        return Err(bad(format!("`{ACTIVATIONS_TENSOR}` is {:?}, the store says float32", view.dtype())));
    }
    if view.shape() != [rows, d_in] {
        return Err(bad(format!("`{ACTIVATIONS_TENSOR}` has shape {:?}, the metadata says [{rows}, {d_in}]", view.shape())));
    }
    let start = view.data().as_ptr() as usize - map.as_ptr() as usize;
    let Some(kind) = kind else {
        return Ok((start, Vec::new()));
    };
    let mut starts = Vec::with_capacity(4);
    for name in meta_tensors(kind) {
        let t = tensors.tensor(name).map_err(|_| bad(format!("no `{name}` tensor, the metadata says the store keeps {kind:?} metadata")))?;
        if t.dtype() != Dtype::U32 || t.shape() != [rows] {
            return Err(bad(format!("`{name}` is {:?} {:?}, expected U32 [{rows}]", t.dtype(), t.shape())));
        }
        starts.push(t.data().as_ptr() as usize - map.as_ptr() as usize);
    }
    Ok((start, starts))
}
