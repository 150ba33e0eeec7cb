//! Reconstruction and sparsity metrics accumulated over batches.
//!
//! Formulas (x the target, x̂ the reconstruction, f the codes, sums over all evaluated rows):
//! - `l0` = mean number of non-zero codes per row;
//! - `mse` = Σ‖x − x̂‖² / (rows · d), the per-element mean squared error;
//! - `fvu` = Σ‖x − x̂‖² / Σ‖x − x̄‖², with x̄ the mean row; `explained_variance` = 1 − fvu;
//! - `cosine` = mean over rows of cos(x, x̂); `l2_ratio` = mean of ‖x̂‖ / ‖x‖;
//! - `relative_reconstruction_bias` γ = Σ‖x̂‖² / Σ⟨x̂, x⟩ (Wright & Sharkey 2024: the γ minimising
//!   E‖x̂/γ − x‖²; below 1 means shrinkage);
//! - `dead_fraction` = latents that never fired; `dense_fraction` = latents firing on more than
//!   10 % of rows; `feature_density` = each latent's firing frequency.

use burn::tensor::Tensor;
use sae_core::SparseCodes;
use sae_core::params::host_f32;
use serde::Serialize;

/// Rows firing above this frequency make a latent "dense".
pub const DENSE_THRESHOLD: f64 = 0.1;

/// Running sums for [`ReconstructionMetrics`].
#[derive(Debug, Clone, Default)]
pub struct ReconstructionAccumulator {
    rows: u64,
    d: usize,
    sq_err: f64,
    sum_x: Vec<f64>,
    sum_x_sq: f64,
    cos_sum: f64,
    ratio_sum: f64,
    recon_sq: f64,
    recon_dot: f64,
    l0_sum: f64,
    fires: Vec<f64>,
}

/// The metrics, as written to JSON by `sae eval`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReconstructionMetrics {
    /// Rows evaluated.
    pub rows: u64,
    /// Mean active latents per row.
    pub l0: f64,
    /// Per-element mean squared error.
    pub mse: f64,
    /// Fraction of variance unexplained.
    pub fvu: f64,
    /// 1 − fvu.
    pub explained_variance: f64,
    /// Mean cosine similarity between input and reconstruction.
    pub cosine: f64,
    /// Mean ‖x̂‖ / ‖x‖.
    pub l2_ratio: f64,
    /// Σ‖x̂‖² / Σ⟨x̂, x⟩.
    pub relative_reconstruction_bias: f64,
    /// Fraction of latents that never fired.
    pub dead_fraction: f64,
    /// Fraction of latents firing on more than [`DENSE_THRESHOLD`] of rows.
    pub dense_fraction: f64,
    /// Firing frequency of each latent.
    #[serde(skip)]
    pub feature_density: Vec<f64>,
}

fn vec1(t: Tensor<1>) -> sae_core::Result<Vec<f64>> {
    Ok(host_f32(t.into_data())?.into_iter().map(f64::from).collect())
}

impl ReconstructionAccumulator {
    /// Adds a batch: target `x` `[n, d]`, reconstruction `recon` `[n, d]`, and its codes. A
    /// tensor that cannot be read back is an error (nothing is added).
    pub fn update(&mut self, x: Tensor<2>, recon: Tensor<2>, codes: &SparseCodes) -> sae_core::Result<()> {
        let [n, d] = x.dims();
        if self.d == 0 {
            self.d = d;
            self.sum_x = vec![0.0; d];
        }
        let x = x.detach();
        let recon = recon.detach();
        let err = (x.clone() - recon.clone()).powi_scalar(2).sum_dim(1).reshape([n]);
        let x_norm = x.clone().powi_scalar(2).sum_dim(1).reshape([n]).sqrt();
        let r_norm = recon.clone().powi_scalar(2).sum_dim(1).reshape([n]).sqrt();
        let dot = (x.clone() * recon.clone()).sum_dim(1).reshape([n]);
        let (err, x_norm, r_norm, dot) = (vec1(err)?, vec1(x_norm)?, vec1(r_norm)?, vec1(dot)?);
        let sum_x = vec1(x.sum_dim(0).reshape([d]))?;
        let active = codes.to_dense().detach().greater_elem(0.0).float();
        let l0 = vec1(active.clone().sum())?.iter().sum::<f64>();
        let fires = vec1(active.sum_dim(0).reshape([codes.d_sae]))?;
        for i in 0..n {
            self.sq_err += err[i];
            self.sum_x_sq += x_norm[i] * x_norm[i];
            self.recon_sq += r_norm[i] * r_norm[i];
            self.recon_dot += dot[i];
            if x_norm[i] > 0.0 && r_norm[i] > 0.0 {
                self.cos_sum += dot[i] / (x_norm[i] * r_norm[i]);
            }
            if x_norm[i] > 0.0 {
                self.ratio_sum += r_norm[i] / x_norm[i];
            }
        }
        for (s, v) in self.sum_x.iter_mut().zip(sum_x) {
            *s += v;
        }
        self.l0_sum += l0;
        if self.fires.is_empty() {
            self.fires = vec![0.0; fires.len()];
        }
        for (a, b) in self.fires.iter_mut().zip(fires) {
            *a += b;
        }
        self.rows += n as u64;
        Ok(())
    }

    /// The metrics of everything added so far.
    pub fn finish(&self) -> ReconstructionMetrics {
        let n = self.rows.max(1) as f64;
        let mean_sq_norm_of_mean = self.sum_x.iter().map(|s| (s / n).powi(2)).sum::<f64>();
        let total_var = self.sum_x_sq - n * mean_sq_norm_of_mean;
        let fvu = if total_var > 0.0 { self.sq_err / total_var } else { f64::NAN };
        let density: Vec<f64> = self.fires.iter().map(|f| f / n).collect();
        let d_sae = density.len().max(1) as f64;
        ReconstructionMetrics {
            rows: self.rows,
            l0: self.l0_sum / n,
            mse: self.sq_err / (n * self.d.max(1) as f64),
            fvu,
            explained_variance: 1.0 - fvu,
            cosine: self.cos_sum / n,
            l2_ratio: self.ratio_sum / n,
            relative_reconstruction_bias: if self.recon_dot != 0.0 { self.recon_sq / self.recon_dot } else { f64::NAN },
            dead_fraction: density.iter().filter(|f| **f == 0.0).count() as f64 / d_sae,
            dense_fraction: density.iter().filter(|f| **f > DENSE_THRESHOLD).count() as f64 / d_sae,
            feature_density: density,
        }
    }
}
