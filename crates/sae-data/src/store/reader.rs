//! Reading a store: shards opened and checked against the metadata, rows read by position.
//!
//! Shards are read with positional reads (`pread`), not memory-mapped: a shard truncated or
//! replaced while a run reads it is then an I/O error naming the file, where a mapping would
//! kill the process with SIGBUS.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use sae_core::{RowMeta, RowMetaKind};

use super::metadata::{ACTIVATIONS_TENSOR, METADATA_FILE, StoreMetadata, meta_tensors};
use crate::error::{DataError, Result};

#[derive(Debug)]
struct ShardFile {
    path: PathBuf,
    file: File,
    /// Byte offset of the activation data inside the file.
    data_start: u64,
    /// Byte offsets of the row-metadata tensors ([`meta_tensors`]), one per field; empty when
    /// the store keeps none.
    meta_starts: Vec<u64>,
    rows: usize,
    /// Index of the shard's first row in the store.
    first_row: u64,
}

impl ShardFile {
    /// Reads `len` bytes at `offset` into `buf` (replacing its contents).
    fn read_at(&self, offset: u64, len: usize, buf: &mut Vec<u8>) -> Result<()> {
        buf.clear();
        buf.resize(len, 0);
        self.file.read_exact_at(buf, offset).map_err(|e| DataError::io("reading shard (was it truncated or replaced?)", &self.path, e))
    }
}

/// A store opened for reading. Opening reads only the shards' headers.
#[derive(Debug)]
pub struct ActivationStore {
    dir: PathBuf,
    meta: StoreMetadata,
    shards: Vec<ShardFile>,
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
            let (data_start, meta_starts) = check_shard(&file, &path, info.rows, meta.d_in, meta.row_meta)?;
            shards.push(ShardFile { path, file, data_start, meta_starts, rows: info.rows, first_row });
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
        let mut bytes = Vec::new();
        self.for_each_piece(start, n, |shard, local, take| {
            shard.read_at(shard.data_start + (local * d * 4) as u64, take * d * 4, &mut bytes)?;
            out.extend(bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])));
            Ok(())
        })
    }

    /// Calls `f(shard, first local row, rows)` for the consecutive pieces of rows
    /// `start .. start + n`, one per shard they fall in; rows beyond the store are an error.
    fn for_each_piece(&self, start: u64, n: usize, mut f: impl FnMut(&ShardFile, usize, usize) -> Result<()>) -> Result<()> {
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
        let (mut bytes, mut columns, mut fields) = (Vec::new(), Vec::new(), Vec::with_capacity(4));
        self.for_each_piece(start, n, |shard, local, take| {
            // One read per field column, then the rows across them.
            columns.clear();
            for &at in &shard.meta_starts {
                shard.read_at(at + (local * 4) as u64, take * 4, &mut bytes)?;
                columns.push(bytes.chunks_exact(4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect::<Vec<u32>>());
            }
            for r in 0..take {
                fields.clear();
                fields.extend(columns.iter().map(|c| c[r]));
                // The shard's tensors were checked against the kind on open.
                let m = kind.from_fields(&fields).ok_or_else(|| DataError::Shard { path: shard.path.clone(), reason: format!("row {} has no {kind:?} metadata", local + r) })?;
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

/// One tensor of a shard's safetensors header.
#[derive(serde::Deserialize)]
struct HeaderEntry {
    dtype: String,
    shape: Vec<usize>,
    data_offsets: [u64; 2],
}

/// The largest shard header read (safetensors' own limit is 100 MB; ours hold a few tensors).
const MAX_HEADER_BYTES: u64 = 1 << 20;

/// Validates a shard's safetensors header against the file's size and the metadata; returns the
/// absolute offsets of the activation data and of the row-metadata tensors of `kind`.
fn check_shard(file: &File, path: &Path, rows: usize, d_in: usize, kind: Option<RowMetaKind>) -> Result<(u64, Vec<u64>)> {
    let bad = |reason: String| DataError::Shard { path: path.to_path_buf(), reason };
    let len = file.metadata().map_err(|e| DataError::io("reading the size of", path, e))?.len();
    let mut n = [0u8; 8];
    file.read_exact_at(&mut n, 0).map_err(|_| bad("not a valid safetensors file (shorter than its header length); it may be truncated".into()))?;
    let n = u64::from_le_bytes(n);
    if n > MAX_HEADER_BYTES || n.checked_add(8).is_none_or(|end| end > len) {
        return Err(bad(format!("not a valid safetensors file (a {n}-byte header in a {len}-byte file); it may be truncated")));
    }
    let mut header = vec![0u8; n as usize];
    file.read_exact_at(&mut header, 8).map_err(|e| DataError::io("reading the header of", path, e))?;
    let mut entries: std::collections::BTreeMap<String, serde_json::Value> =
        serde_json::from_slice(&header).map_err(|e| bad(format!("not a valid safetensors header ({e})")))?;
    entries.remove("__metadata__");
    let data_start = 8 + n;
    // Every tensor within the data, none overlapping, and the data exactly filling the file.
    let mut spans: Vec<(u64, u64, String)> = Vec::new();
    let mut tensors = std::collections::BTreeMap::new();
    for (name, v) in entries {
        let e: HeaderEntry = serde_json::from_value(v).map_err(|err| bad(format!("tensor `{name}`: {err}")))?;
        let width = match e.dtype.as_str() {
            "F32" | "U32" | "I32" => 4,
            "F16" | "BF16" => 2,
            other => return Err(bad(format!("tensor `{name}` has dtype {other}"))),
        };
        let bytes = e.shape.iter().try_fold(width as u64, |acc, d| acc.checked_mul(*d as u64)).ok_or_else(|| bad(format!("tensor `{name}`: shape {:?} overflows", e.shape)))?;
        let [a, b] = e.data_offsets;
        if b < a || b - a != bytes {
            return Err(bad(format!("tensor `{name}`: offsets {a}..{b} do not hold shape {:?} of {}", e.shape, e.dtype)));
        }
        spans.push((a, b, name.clone()));
        tensors.insert(name, e);
    }
    spans.sort();
    let mut end = 0u64;
    for (a, b, name) in &spans {
        if *a != end {
            return Err(bad(format!("tensor `{name}` starts at {a}, expected {end} (overlapping or gapped data)")));
        }
        end = *b;
    }
    if data_start + end != len {
        return Err(bad(format!("the header describes {} bytes of data, the file holds {}; it may be truncated", end, len - data_start)));
    }
    let view = tensors.get(ACTIVATIONS_TENSOR).ok_or_else(|| bad(format!("no `{ACTIVATIONS_TENSOR}` tensor")))?;
    if view.dtype != "F32" {
        return Err(bad(format!("`{ACTIVATIONS_TENSOR}` is {}, the store says float32", view.dtype)));
    }
    if view.shape != [rows, d_in] {
        return Err(bad(format!("`{ACTIVATIONS_TENSOR}` has shape {:?}, the metadata says [{rows}, {d_in}]", view.shape)));
    }
    let start = data_start + view.data_offsets[0];
    let Some(kind) = kind else {
        return Ok((start, Vec::new()));
    };
    let mut starts = Vec::with_capacity(4);
    for name in meta_tensors(kind) {
        let t = tensors.get(*name).ok_or_else(|| bad(format!("no `{name}` tensor, the metadata says the store keeps {kind:?} metadata")))?;
        if t.dtype != "U32" || t.shape != [rows] {
            return Err(bad(format!("`{name}` is {} {:?}, expected U32 [{rows}]", t.dtype, t.shape)));
        }
        starts.push(data_start + t.data_offsets[0]);
    }
    Ok((start, starts))
}
