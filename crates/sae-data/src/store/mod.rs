//! Sharded on-disk activation stores.
//!
//! A store is a directory of safetensors shards (tensor `activations`, `[rows, d_in]`, f32)
//! and a `metadata.json` ([`StoreMetadata`]). The [`StoreWriter`] commits a shard at a time,
//! each shard and then the metadata written atomically, so a killed writer leaves a valid,
//! resumable store. The [`ActivationStore`] reader memory-maps the shards and checks each
//! against the metadata. Stores of model activations also keep, per row, the token it came from
//! ([`TokenRef`]: id, position, window), for top-activating examples. The reader is the
//! workspace's [`ActivationSource`](sae_core::ActivationSource) on disk.

mod metadata;
mod reader;
mod source;
mod writer;

pub use metadata::{ACTIVATIONS_TENSOR, METADATA_FILE, STORE_FORMAT, ShardInfo, StoreMetadata, TOKEN_TENSORS};
pub use reader::ActivationStore;
pub use writer::StoreWriter;

/// Where one activation row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TokenRef {
    /// Token id in the model's vocabulary.
    pub id: u32,
    /// Position in its context window.
    pub pos: u32,
    /// Index of the context window in the harvest.
    pub seq: u32,
}
