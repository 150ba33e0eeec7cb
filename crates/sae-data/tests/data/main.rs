//! sae-data's integration tests, one binary (linking once, not once per file): pinned assets,
//! batches and shuffling, normalisation statistics, activation stores, synthetic ground truth.

mod batches;
mod stats;
mod store;
mod synthetic;
