//! Sharded on-disk activation stores.
//!
//! A store is a directory of safetensors shards (tensor `activations`, `[rows, d_in]`, f32)
//! and a `metadata.json` ([`StoreMetadata`]). The [`StoreWriter`] commits a shard at a time,
//! each shard and then the metadata written atomically, so a killed writer leaves a valid,
//! resumable store. The [`ActivationStore`] reader checks each shard's header
//! against the metadata and reads rows by position (a shard truncated under it is an error, not
//! a SIGBUS). Stores of model activations also keep, per row, where it came from
//! ([`RowMeta`](sae_core::RowMeta): the token of a text, the patch of an image, the position of a
//! diffusion step), for top-activating examples. The reader is the
//! workspace's [`ActivationSource`](sae_core::ActivationSource) on disk.

mod metadata;
mod reader;
mod source;
mod writer;

pub use metadata::{ACTIVATIONS_TENSOR, DIFFUSION_TENSORS, METADATA_FILE, PATCH_TENSORS, ResumePoint, STORE_FORMAT, ShardInfo, StoreMetadata, TOKEN_TENSORS, meta_tensors, shard_file};
pub use reader::ActivationStore;
pub use writer::StoreWriter;
