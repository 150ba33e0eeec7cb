//! Normalisation statistics and robust centres of a sample of activations.

use crate::error::{DataError, Result};
use sae_core::ActivationSource;

/// Statistics for normalising activations so that E‖x‖ = √d_in (SAELens's
/// `expected_average_only_in`), estimated from a sample.
#[derive(Debug, Clone, PartialEq)]
pub struct NormStats {
    /// Per-dimension mean of the sample.
    pub mean: Vec<f32>,
    /// Mean Euclidean norm of the rows.
    pub mean_norm: f32,
    /// Rows the estimate used.
    pub rows: usize,
}

impl NormStats {
    /// The scalar `√d_in / E‖x‖` that rescales rows to the target norm.
    pub fn scale(&self) -> f32 {
        (self.mean.len() as f32).sqrt() / self.mean_norm.max(f32::MIN_POSITIVE)
    }

    /// Statistics of the `rows` (row-major, width `d`), skipping non-finite rows.
    pub fn from_rows(rows: &[f32], d: usize) -> Result<Self> {
        let mut mean = vec![0f64; d];
        let mut norm_sum = 0f64;
        let mut n = 0usize;
        for row in rows.chunks_exact(d).filter(|r| r.iter().all(|v| v.is_finite())) {
            for (m, v) in mean.iter_mut().zip(row) {
                *m += *v as f64;
            }
            norm_sum += row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
            n += 1;
        }
        if n == 0 {
            return Err(DataError::invalid("rows", "no finite rows to estimate statistics from"));
        }
        Ok(Self { mean: mean.iter().map(|m| (*m / n as f64) as f32).collect(), mean_norm: (norm_sum / n as f64) as f32, rows: n })
    }

    /// Statistics of up to `max_rows` rows spread evenly over the store.
    pub fn estimate(store: &dyn ActivationSource, max_rows: usize) -> Result<Self> {
        let rows = sample_rows(store, max_rows)?;
        Self::from_rows(&rows, store.d_in())
    }
}

/// Up to `max_rows` rows spread evenly over the store (in runs of up to 256 consecutive rows).
pub fn sample_rows(store: &dyn ActivationSource, max_rows: usize) -> Result<Vec<f32>> {
    let n = store.len();
    let want = (max_rows as u64).min(n) as usize;
    let mut out = Vec::with_capacity(want * store.d_in());
    if want == 0 {
        return Ok(out);
    }
    let run = 256.min(want);
    let runs = want.div_ceil(run);
    let stride = n / runs as u64;
    let (mut taken, mut piece) = (0, Vec::new());
    for i in 0..runs {
        let take = run.min(want - taken);
        store.read_rows(i as u64 * stride, take, &mut piece)?;
        out.extend_from_slice(&piece);
        taken += take;
    }
    Ok(out)
}

/// The per-dimension mean of finite rows.
pub fn mean(rows: &[f32], d: usize) -> Result<Vec<f32>> {
    Ok(NormStats::from_rows(rows, d)?.mean)
}

/// The geometric median (the point minimising the sum of Euclidean distances) of the finite
/// rows, by Weiszfeld's iteration from the mean, stopping when a step moves less than
/// `tol` (relative to the median's norm) or after `max_iter` steps.
pub fn geometric_median(rows: &[f32], d: usize, max_iter: usize, tol: f32) -> Result<Vec<f32>> {
    let finite: Vec<&[f32]> = rows.chunks_exact(d).filter(|r| r.iter().all(|v| v.is_finite())).collect();
    if finite.is_empty() {
        return Err(DataError::invalid("rows", "no finite rows for the geometric median"));
    }
    let mut y: Vec<f64> = mean(rows, d)?.iter().map(|v| *v as f64).collect();
    for _ in 0..max_iter {
        let mut num = vec![0f64; d];
        let mut den = 0f64;
        for r in &finite {
            let dist = r.iter().zip(&y).map(|(a, b)| (*a as f64 - b).powi(2)).sum::<f64>().sqrt().max(1e-12);
            let w = 1.0 / dist;
            for (n, v) in num.iter_mut().zip(r.iter()) {
                *n += w * *v as f64;
            }
            den += w;
        }
        let next: Vec<f64> = num.iter().map(|n| n / den).collect();
        let step = next.iter().zip(&y).map(|(a, b)| (a - b).powi(2)).sum::<f64>().sqrt();
        let scale = next.iter().map(|v| v * v).sum::<f64>().sqrt().max(1.0);
        y = next;
        if step <= tol as f64 * scale {
            break;
        }
    }
    Ok(y.iter().map(|v| *v as f32).collect())
}

/// What to do with rows holding NaN or infinity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonFinitePolicy {
    /// Drop the row and count it.
    #[default]
    Skip,
    /// Stop with an error naming the row.
    Error,
}

/// Applies `policy` to `rows` (width `d`) in place; returns how many rows were dropped.
/// `origin` and `first_row` name the rows in errors.
pub fn filter_nonfinite(rows: &mut Vec<f32>, d: usize, policy: NonFinitePolicy, origin: &str, first_row: u64) -> Result<usize> {
    let bad = rows.chunks_exact(d).position(|r| r.iter().any(|v| !v.is_finite()));
    let Some(first_bad) = bad else { return Ok(0) };
    if policy == NonFinitePolicy::Error {
        let row = &rows[first_bad * d..(first_bad + 1) * d];
        let column = row.iter().position(|v| !v.is_finite()).unwrap_or(0);
        return Err(DataError::NonFinite { origin: origin.to_string(), row: first_row as usize + first_bad, column, value: row[column] });
    }
    Ok(sae_core::validate::drop_nonfinite_rows(rows, d))
}
