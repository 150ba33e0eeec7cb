//! A shuffled, endless stream of training batches that is a pure function of its position.
//!
//! Each epoch permutes the store's chunks (runs of [`ShuffleSettings::chunk_rows`] rows), groups
//! consecutive chunks into a buffer of about [`ShuffleSettings::buffer_rows`] rows, and shuffles
//! the rows inside each buffer. Because the order depends only on `(seed, epoch, buffer)`, the
//! stream can be restarted at any row position, which is what makes a resumed training run
//! identical to an uninterrupted one.

use sae_core::rng::SplitMix64;

use crate::error::{DataError, Result};
use sae_core::ActivationSource;

/// How the stream shuffles.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShuffleSettings {
    /// Rows per contiguous chunk read from disk.
    pub chunk_rows: usize,
    /// Rows held (and shuffled) at once.
    pub buffer_rows: usize,
    /// Seed of every permutation.
    pub seed: u64,
}

impl Default for ShuffleSettings {
    fn default() -> Self {
        Self { chunk_rows: 1024, buffer_rows: 1 << 18, seed: 0 }
    }
}

/// Shuffled batches over a store, starting at any row position of the endless stream.
pub struct BatchStream<'a> {
    store: &'a dyn ActivationSource,
    settings: ShuffleSettings,
    /// Position in the endless stream, in rows.
    position: u64,
    /// Epoch and buffer index currently loaded, with its first stream row and shuffled rows.
    loaded: Option<LoadedBuffer>,
}

impl std::fmt::Debug for BatchStream<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchStream").field("source", &self.store.name()).field("settings", &self.settings).field("position", &self.position).finish()
    }
}

#[derive(Debug)]
struct LoadedBuffer {
    epoch: u64,
    /// Stream position of the buffer's first row.
    start: u64,
    rows: Vec<f32>,
}

fn mix(a: u64, b: u64, c: u64) -> u64 {
    let mut r = SplitMix64::new(a ^ b.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ c.wrapping_mul(0xC2B2_AE3D_27D4_EB4F));
    r.next_u64()
}

fn shuffle<T>(items: &mut [T], rng: &mut SplitMix64) {
    for i in (1..items.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

impl<'a> BatchStream<'a> {
    /// A stream starting at row `position` (0 for a new run; the checkpointed value on resume).
    pub fn new(store: &'a dyn ActivationSource, settings: ShuffleSettings, position: u64) -> Result<Self> {
        if store.is_empty() {
            return Err(DataError::invalid("store", format!("{} holds no activations", store.name())));
        }
        if settings.chunk_rows == 0 || settings.buffer_rows == 0 {
            return Err(DataError::invalid("chunk_rows/buffer_rows", "must be positive"));
        }
        Ok(Self { store, settings, position, loaded: None })
    }

    /// Rows consumed so far (the value to checkpoint).
    pub fn position(&self) -> u64 {
        self.position
    }

    /// Completed passes over the store.
    pub fn epoch(&self) -> u64 {
        self.position / self.store.len()
    }

    /// Chunk `(start, rows)` of the store in the order of `epoch`.
    fn chunk_order(&self, epoch: u64) -> Vec<(u64, usize)> {
        let n = self.store.len();
        let c = self.settings.chunk_rows as u64;
        let mut chunks: Vec<(u64, usize)> = (0..n.div_ceil(c)).map(|i| (i * c, (n - i * c).min(c) as usize)).collect();
        shuffle(&mut chunks, &mut SplitMix64::new(mix(self.settings.seed, epoch, 1)));
        chunks
    }

    fn load(&mut self, epoch: u64, offset: u64) -> Result<()> {
        let chunks = self.chunk_order(epoch);
        let per_buffer = (self.settings.buffer_rows / self.settings.chunk_rows).max(1);
        // Find the buffer holding `offset` rows into the epoch.
        let mut start = 0u64;
        for (index, group) in chunks.chunks(per_buffer).enumerate() {
            let rows: u64 = group.iter().map(|c| c.1 as u64).sum();
            if offset < start + rows {
                let d = self.store.d_in();
                let (mut data, mut chunk) = (Vec::with_capacity(rows as usize * d), Vec::new());
                for &(first, n) in group {
                    self.store.read_rows(first, n, &mut chunk)?;
                    data.extend_from_slice(&chunk);
                }
                let mut order: Vec<usize> = (0..rows as usize).collect();
                shuffle(&mut order, &mut SplitMix64::new(mix(self.settings.seed, epoch, 2 + index as u64)));
                let mut shuffled = Vec::with_capacity(data.len());
                for &r in &order {
                    shuffled.extend_from_slice(&data[r * d..(r + 1) * d]);
                }
                let epoch_start = epoch * self.store.len();
                self.loaded = Some(LoadedBuffer { epoch, start: epoch_start + start, rows: shuffled });
                return Ok(());
            }
            start += rows;
        }
        Err(DataError::invalid("position", format!("offset {offset} is outside epoch {epoch}")))
    }

    /// The next `batch` rows (row-major), crossing buffers and epochs as needed.
    pub fn next_batch(&mut self, batch: usize) -> Result<Vec<f32>> {
        let d = self.store.d_in();
        let mut out = Vec::with_capacity(batch * d);
        while out.len() < batch * d {
            let n = self.store.len();
            let (epoch, offset) = (self.position / n, self.position % n);
            let hit = self.loaded.as_ref().is_some_and(|b| {
                b.epoch == epoch && self.position >= b.start && self.position < b.start + (b.rows.len() / d) as u64
            });
            if !hit {
                self.load(epoch, offset)?;
            }
            let buf = self.loaded.as_ref().ok_or_else(|| DataError::invalid("position", "no buffer loaded"))?;
            let local = (self.position - buf.start) as usize;
            let available = buf.rows.len() / d - local;
            let take = available.min(batch - out.len() / d);
            out.extend_from_slice(&buf.rows[local * d..(local + take) * d]);
            self.position += take as u64;
        }
        Ok(out)
    }
}
