//! The store as an [`ActivationSource`]: what the trainer, the metrics and labeling read.

use sae_core::{ActivationSource, RowMeta, SaeError};

use super::ActivationStore;

/// A store error as the contract's error, keeping the typed [`DataError`](crate::DataError) as
/// its source.
fn source_error(store: &ActivationStore, e: crate::DataError) -> SaeError {
    SaeError::Source { name: store.dir().display().to_string(), source: Box::new(e) }
}

impl ActivationSource for ActivationStore {
    fn d_in(&self) -> usize {
        ActivationStore::d_in(self)
    }

    fn len(&self) -> u64 {
        ActivationStore::len(self)
    }

    fn read_rows(&self, start: u64, n: usize, out: &mut Vec<f32>) -> sae_core::Result<()> {
        out.clear();
        self.append_rows(start, n, out).map_err(|e| source_error(self, e))
    }

    fn read_meta(&self, start: u64, n: usize) -> sae_core::Result<Option<Vec<RowMeta>>> {
        self.row_meta(start, n).map_err(|e| source_error(self, e))
    }

    fn name(&self) -> String {
        self.dir().display().to_string()
    }
}
