//! Dead-latent bookkeeping in tokens: a latent is dead once it has not fired for a set number
//! of tokens (sparsify's `dead_feature_threshold`).

use burn::tensor::{Bool, Device, Tensor, TensorData};

/// Tokens since each latent last fired.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadTracker {
    /// Per latent.
    pub since_fired: Vec<u64>,
    /// Tokens without firing after which a latent counts as dead.
    pub threshold: u64,
}

impl DeadTracker {
    /// Every latent starts alive.
    pub fn new(d_sae: usize, threshold: u64) -> Self {
        Self { since_fired: vec![0; d_sae], threshold }
    }

    /// Records a batch of `tokens` rows in which latent `i` fired `fires[i]` times.
    pub fn update(&mut self, fires: &[f32], tokens: u64) {
        for (s, f) in self.since_fired.iter_mut().zip(fires) {
            *s = if *f > 0.0 { 0 } else { s.saturating_add(tokens) };
        }
    }

    /// Records the codes of one batch: counts per latent how many rows it fired on, updates
    /// the counters, and returns those counts (`[d_sae]`, read back to the host).
    pub fn record(&mut self, codes: &sae_core::SparseCodes) -> sae_core::Result<Vec<f32>> {
        let fires = codes.firing_counts()?;
        self.update(&fires, codes.n_rows() as u64);
        Ok(fires)
    }

    /// Number of dead latents.
    pub fn n_dead(&self) -> usize {
        self.since_fired.iter().filter(|s| **s >= self.threshold).count()
    }

    /// The dead mask `[d_sae]` on `device`, or `None` when no latent is dead.
    pub fn mask(&self, device: &Device) -> Option<Tensor<1, Bool>> {
        if self.n_dead() == 0 {
            return None;
        }
        let v: Vec<f32> = self.since_fired.iter().map(|s| (*s >= self.threshold) as u8 as f32).collect();
        let n = v.len();
        Some(Tensor::<1>::from_data(TensorData::new(v, [n]), device).greater_elem(0.5))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_counts_firing_rows_and_ages_the_silent_latents() {
        let device = Device::flex();
        // Three rows, four latents: latent 0 fires twice, latent 2 once, latents 1 and 3 never.
        let acts = Tensor::<2>::from_data(TensorData::new(vec![1.0f32, 0.0, 0.0, 0.0, 2.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.0, 0.0], [3, 4]), &device);
        let mut t = DeadTracker::new(4, 5);
        t.since_fired = vec![4, 4, 4, 0];
        let fires = t.record(&sae_core::SparseCodes::dense(acts)).unwrap();
        assert_eq!(fires, vec![2.0, 0.0, 1.0, 0.0]);
        assert_eq!(t.since_fired, vec![0, 7, 0, 3]);
        assert_eq!(t.n_dead(), 1);
        assert!(t.mask(&device).is_some());
    }
}
