//! Ground-truth recovery: how well an SAE's decoder rows match known feature directions.
//!
//! Each true feature is matched to a distinct latent by the Hungarian algorithm on |cosine|
//! (maximising the total); the **MCC** is the mean matched |cosine| (as in the synthetic-data
//! evaluations of Sharkey et al. 2022 and SAEBench's toy settings), and `recovered_frac` the
//! fraction of true features whose match exceeds a threshold (0.9).

use serde::Serialize;

use crate::hungarian::assign_min_cost;

/// Result of matching decoder rows to true features.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recovery {
    /// Mean |cosine| over the matched pairs.
    pub mcc: f64,
    /// Fraction of true features matched above `threshold`.
    pub recovered_frac: f64,
    /// The threshold used.
    pub threshold: f64,
    /// Matched latent of each true feature.
    pub matched_latent: Vec<usize>,
    /// |cosine| of each matched pair.
    pub matched_cos: Vec<f64>,
}

fn normalized_rows(rows: &[f32], d: usize) -> Vec<f64> {
    rows.chunks_exact(d)
        .flat_map(|r| {
            let n = r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt().max(1e-12);
            r.iter().map(move |v| *v as f64 / n)
        })
        .collect()
}

/// Matches `n_true` true features `[n_true, d]` to latents' decoder rows `[n_latents, d]`.
/// With fewer latents than features, latents are matched to features instead (and the MCC is
/// over the latents). Returns `None` when `d` is 0 or the inputs are not whole rows.
pub fn feature_recovery(true_features: &[f32], decoder: &[f32], d: usize, threshold: f64) -> Option<Recovery> {
    if d == 0 || true_features.len() % d != 0 || decoder.len() % d != 0 {
        return None;
    }
    let t = normalized_rows(true_features, d);
    let w = normalized_rows(decoder, d);
    let (n_t, n_w) = (t.len() / d, w.len() / d);
    let abs_cos = |i: usize, j: usize| t[i * d..(i + 1) * d].iter().zip(&w[j * d..(j + 1) * d]).map(|(a, b)| a * b).sum::<f64>().abs();
    let (rows, cols, transposed) = if n_t <= n_w { (n_t, n_w, false) } else { (n_w, n_t, true) };
    let mut cost = vec![0f64; rows * cols];
    for r in 0..rows {
        for c in 0..cols {
            cost[r * cols + c] = -if transposed { abs_cos(c, r) } else { abs_cos(r, c) };
        }
    }
    let assignment = assign_min_cost(&cost, rows, cols)?;
    let matched_cos: Vec<f64> = assignment.iter().enumerate().map(|(r, c)| -cost[r * cols + c]).collect();
    // Means over the true features: with fewer latents, unmatched features count as 0.
    let mcc = if n_t == 0 { 0.0 } else { matched_cos.iter().sum::<f64>() / n_t as f64 };
    let recovered = matched_cos.iter().filter(|c| **c > threshold).count();
    Some(Recovery {
        mcc,
        recovered_frac: if n_t == 0 { 0.0 } else { recovered as f64 / n_t as f64 },
        threshold,
        matched_latent: if transposed { Vec::new() } else { assignment },
        matched_cos,
    })
}
