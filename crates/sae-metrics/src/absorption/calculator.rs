//! Absorption of one word (SAEBench `FeatureAbsorptionCalculator.calculate_absorption`, after
//! Chanin et al. 2024, "A is for Absorption"). For a word on which the ground-truth probe fires,
//! with `x` its activation, `p` the unit probe direction, `a` its SAE codes and `cᵢ` the cosine of
//! latent i's decoder row with `p`, the projections are `P = x·p` (the model's) and `aᵢcᵢ` (each
//! latent's). With `M` the letter's main (split) latents:
//! - **absorption fraction**: the latents outside `M` with `cᵢ ≥ 0.1` and `aᵢcᵢ > 0`, at most 3
//!   of the largest, project `A` in total. It is 0 when `Σ_M aᵢcᵢ ≥ P` or `A/P < 0.4`, 1 when
//!   `Σ_M aᵢcᵢ ≤ 0`, and otherwise `min(A, P − Σ_M) / (min(A, P − Σ_M) + Σ_M)`.
//! - **full absorption**: every main latent is below 1e-8, the top-projecting latent has
//!   `c ≥ 0.025`, `P ≥ 0`, and that latent projects at least 0.4 of `P`.

use serde::Serialize;

/// The thresholds of the calculator (SAEBench's defaults in [`Default`]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct AbsorptionThresholds {
    /// Least probe cosine of the top latent for full absorption (0.025).
    pub full_absorption_cos: f32,
    /// Least probe cosine of a latent that may absorb (absorption fraction; 0.1).
    pub fraction_cos: f32,
    /// Least share of the probe projection the absorbing latents must carry (0.4).
    pub projection_share: f32,
    /// Most latents counted as absorbing one word (absorption fraction; 3).
    pub max_absorbing: usize,
    /// Latents reported per word, by projection (10).
    pub top_latents: usize,
}

impl Default for AbsorptionThresholds {
    fn default() -> Self {
        Self { full_absorption_cos: 0.025, fraction_cos: 0.1, projection_share: 0.4, max_absorbing: 3, top_latents: 10 }
    }
}

/// Activations below this count as silent (SAEBench's `EPS`).
pub const SILENT: f32 = 1e-8;

/// What the calculator finds for one word.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WordAbsorption {
    /// The model activation's projection on the unit probe direction.
    pub probe_projection: f32,
    /// The main latents' summed projection.
    pub main_projection: f32,
    /// The latents with the largest projections, largest first (up to `top_latents`).
    pub top_latents: Vec<u32>,
    /// Their projections `aᵢcᵢ`.
    pub top_projections: Vec<f32>,
    /// Absorption fraction in [0, 1].
    pub absorption_fraction: f32,
    /// Whether one latent fully absorbed the letter.
    pub full_absorption: bool,
}

/// Absorption of one word: `codes` its SAE codes (dense, `d_sae`), `cos` each latent's decoder
/// cosine with the probe, `probe_projection` the activation's projection on the unit probe.
pub fn word_absorption(codes: &[f32], cos: &[f32], probe_projection: f32, main: &[u32], t: &AbsorptionThresholds) -> WordAbsorption {
    let proj: Vec<f32> = codes.iter().zip(cos).map(|(a, c)| a * c).collect();
    let mut is_main = vec![false; proj.len()];
    main.iter().for_each(|&m| is_main[m as usize] = true);
    let main_projection: f32 = main.iter().map(|&m| proj[m as usize]).sum();
    let mut absorbers: Vec<f32> = (0..proj.len()).filter(|&i| !is_main[i] && cos[i] >= t.fraction_cos && proj[i] > 0.0).map(|i| proj[i]).collect();
    absorbers.sort_by(|a, b| b.total_cmp(a));
    let absorbed: f32 = absorbers.iter().take(t.max_absorbing).sum();
    let share = if probe_projection == 0.0 { 0.0 } else { absorbed / probe_projection };
    let absorption_fraction = if main_projection >= probe_projection || share < t.projection_share {
        0.0
    } else if main_projection <= 0.0 {
        1.0
    } else {
        let a = absorbed.min(probe_projection - main_projection);
        (a / (a + main_projection)).clamp(0.0, 1.0)
    };
    let mut order: Vec<usize> = (0..proj.len()).collect();
    // Largest projection first; equal projections by latent index, so the order is reproducible.
    order.sort_by(|&a, &b| proj[b].total_cmp(&proj[a]).then(a.cmp(&b)));
    order.truncate(t.top_latents.min(proj.len()));
    let full_absorption = match order.first() {
        Some(&top) => {
            main.iter().all(|&m| codes[m as usize] < SILENT)
                && cos[top] >= t.full_absorption_cos
                && probe_projection >= 0.0
                && probe_projection != 0.0
                && proj[top] / probe_projection >= t.projection_share
        }
        None => false,
    };
    WordAbsorption {
        probe_projection,
        main_projection,
        top_projections: order.iter().map(|&i| proj[i]).collect(),
        top_latents: order.iter().map(|&i| i as u32).collect(),
        absorption_fraction,
        full_absorption,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_cases() {
        let t = AbsorptionThresholds::default();
        // Latent 0 is the main one; latent 1 absorbs (cos 0.5), latent 2 is off-probe (cos 0.05).
        let cos = [0.9, 0.5, 0.05];
        // Main silent, latent 1 projects 0.5 · 2 = 1.0 of P = 1.2 → fraction 1, full absorption.
        let w = word_absorption(&[0.0, 2.0, 1.0], &cos, 1.2, &[0], &t);
        assert_eq!((w.absorption_fraction, w.full_absorption), (1.0, true));
        assert_eq!(w.top_latents, vec![1, 2, 0]);
        // Main projects 0.45, absorbers 1.0, P = 1.2: min(1.0, 0.75) / (0.75 + 0.45) = 0.625.
        let w = word_absorption(&[0.5, 2.0, 1.0], &cos, 1.2, &[0], &t);
        assert!((w.absorption_fraction - 0.625).abs() < 1e-6, "{}", w.absorption_fraction);
        assert!(!w.full_absorption);
        // The main latent explains the whole projection: no absorption.
        let w = word_absorption(&[2.0, 2.0, 1.0], &cos, 1.2, &[0], &t);
        assert_eq!(w.absorption_fraction, 0.0);
        // The absorbers carry under 40 % of P: no absorption.
        let w = word_absorption(&[0.0, 0.4, 0.0], &cos, 1.2, &[0], &t);
        assert_eq!((w.absorption_fraction, w.full_absorption), (0.0, false));
    }
}
