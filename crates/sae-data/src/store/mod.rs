//! Sharded on-disk activation stores.
//!
//! A store is a directory of safetensors shards (tensor `activations`, `[rows, d_in]`, f32)
//! and a `metadata.json` ([`StoreMetadata`]). The [`StoreWriter`] commits a shard at a time,
//! each shard and then the metadata written atomically, so a killed writer leaves a valid,
//! resumable store. The [`ActivationStore`] reader memory-maps the shards and checks each
//! against the metadata.

mod metadata;
mod reader;
mod writer;

pub use metadata::{ACTIVATIONS_TENSOR, METADATA_FILE, STORE_FORMAT, ShardInfo, StoreMetadata};
pub use reader::ActivationStore;
pub use writer::StoreWriter;
