//! Learning-rate and sparsity-coefficient schedules.

use serde::{Deserialize, Serialize};

/// How the learning rate decays after warm-up.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LrDecay {
    /// Constant after warm-up.
    #[default]
    None,
    /// Linear to zero over the decay window.
    Linear,
    /// Half-cosine to zero over the decay window.
    Cosine,
}

/// The learning-rate schedule: linear warm-up over `warmup_steps`, then constant, then decay to
/// zero over the last `decay_fraction` of `total_steps`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LrSchedule {
    /// Peak learning rate.
    pub lr: f64,
    /// Warm-up steps (0: none).
    pub warmup_steps: u64,
    /// Decay shape.
    pub decay: LrDecay,
    /// Fraction of the run, at its end, over which the rate decays.
    pub decay_fraction: f64,
    /// Total steps of the run.
    pub total_steps: u64,
}

impl LrSchedule {
    /// The learning rate at `step` (0-based).
    pub fn at(&self, step: u64) -> f64 {
        let warm = if self.warmup_steps > 0 { ((step + 1) as f64 / self.warmup_steps as f64).min(1.0) } else { 1.0 };
        let decay_steps = (self.total_steps as f64 * self.decay_fraction).round() as u64;
        let decay_start = self.total_steps.saturating_sub(decay_steps);
        let decay = if self.decay == LrDecay::None || decay_steps == 0 || step < decay_start {
            1.0
        } else {
            let t = ((step - decay_start) as f64 / decay_steps as f64).min(1.0);
            match self.decay {
                LrDecay::Linear => 1.0 - t,
                LrDecay::Cosine => 0.5 * (1.0 + (std::f64::consts::PI * t).cos()),
                LrDecay::None => 1.0,
            }
        };
        self.lr * warm * decay
    }
}

/// The sparsity-coefficient multiplier at `step`: linear from 1/warmup to 1 over `warmup` steps.
pub fn sparsity_scale(step: u64, warmup: u64) -> f32 {
    if warmup == 0 { 1.0 } else { ((step + 1) as f64 / warmup as f64).min(1.0) as f32 }
}
