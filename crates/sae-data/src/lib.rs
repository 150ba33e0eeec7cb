//! # sae-data
//!
//! Where activations live: sharded on-disk [stores](store) (atomic, resumable, locked while written),
//! a [shuffled batch stream](batches) whose order is a pure function of its position (so a
//! resumed run sees the same batches), [normalisation statistics and the geometric
//! median](stats), and a [synthetic generator](synthetic) of activations built from known
//! features, with Zipfian firing, a feature hierarchy and correlations. (Fetching the pinned real
//! models and corpora is `sae-assets`.)
//!
//! ```
//! use sae_data::synthetic::{SyntheticConfig, SyntheticGenerator};
//! use sae_data::batches::{BatchStream, ShuffleSettings};
//!
//! let dir = std::env::temp_dir().join(format!("sae-data-doc-{}", std::process::id()));
//! let cfg = SyntheticConfig { d_in: 8, n_features: 32, tokens: 5000, parents: 2, children_per_parent: 2, ..Default::default() };
//! let store = SyntheticGenerator::new(cfg)?.write_store(&dir, |_| {})?;
//! assert_eq!(store.len(), 5000);
//! let mut stream = BatchStream::new(&store, ShuffleSettings::default(), 0)?;
//! let batch = stream.next_batch(64)?;
//! assert_eq!(batch.len(), 64 * 8);
//! # std::fs::remove_dir_all(&dir).ok();
//! # Ok::<(), sae_data::DataError>(())
//! ```

#![warn(missing_docs)]

pub mod batches;
pub mod error;
pub mod stats;
pub mod store;
pub mod synthetic;

pub use error::{DataError, Result};
