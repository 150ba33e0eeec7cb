//! Resampling dead latents (Bricken et al. 2023, "Towards Monosemanticity", appendix on neuron
//! resampling), for the L1 family where latents die for good: each dead latent gets the
//! direction of an input the SAE reconstructs badly.
//!
//! For each dead latent i, an input row r is drawn with probability ∝ ‖x_r − x̂_r‖⁴ (the squared
//! squared-error, as in the paper), and with v = x_r / ‖x_r‖: `W_dec[i] ← v`,
//! `W_enc[:, i] ← 0.2 · mean‖W_enc[:, alive]‖ · v`, `b_enc[i] ← 0`, and the Adam moments of
//! those entries are zeroed. Deterministic in `seed`.

use burn::tensor::{Tensor, TensorData};
use sae_core::rng::SplitMix64;
use sae_core::{ParamSet, ParamTensor, Result, Sae};

use crate::adam::Adam;

fn host_matrix(set: &ParamSet, name: &str) -> Result<Option<(Vec<f32>, usize, usize)>> {
    Ok(match set.get(name) {
        Some(ParamTensor::Matrix(t)) => {
            let [r, c] = t.dims();
            Some((sae_core::params::host_f32(t.to_data())?, r, c))
        }
        _ => None,
    })
}

fn zero_entries(set: &mut ParamSet, name: &str, dead: &[usize], column: bool) -> Result<()> {
    let device = match set.get(name) {
        Some(ParamTensor::Matrix(t)) => t.device(),
        Some(ParamTensor::Vector(t)) => t.device(),
        None => return Ok(()),
    };
    match set.get(name).cloned() {
        Some(ParamTensor::Matrix(t)) => {
            let [r, c] = t.dims();
            let mut v = sae_core::params::host_f32(t.to_data())?;
            for &i in dead {
                if column {
                    (0..r).for_each(|row| v[row * c + i] = 0.0);
                } else {
                    v[i * c..(i + 1) * c].iter_mut().for_each(|x| *x = 0.0);
                }
            }
            set.set_matrix(name, Tensor::from_data(TensorData::new(v, [r, c]), &device));
        }
        Some(ParamTensor::Vector(t)) => {
            let [n] = t.dims();
            let mut v = sae_core::params::host_f32(t.to_data())?;
            dead.iter().for_each(|i| v[*i] = 0.0);
            set.set_vector(name, Tensor::from_data(TensorData::new(v, [n]), &device));
        }
        None => {}
    }
    Ok(())
}

/// Resamples the latents flagged in `dead` from the rows `x` (width `d`) and their
/// reconstructions `recon`. Returns how many latents were resampled (0 when the SAE lacks
/// `W_enc`/`W_dec`/`b_enc`, no latent is dead, or every row is reconstructed exactly); a weight
/// that cannot be read back is an error.
pub fn resample_dead_latents(sae: &mut dyn Sae, adam: &mut Adam, dead: &[bool], x: &[f32], recon: &[f32], d: usize, seed: u64) -> Result<usize> {
    let dead_ids: Vec<usize> = dead.iter().enumerate().filter(|(_, d)| **d).map(|(i, _)| i).collect();
    let params = sae.params();
    let (Some((mut w_enc, e_rows, e_cols)), Some((mut w_dec, d_rows, d_cols))) = (host_matrix(params, "W_enc")?, host_matrix(params, "W_dec")?) else { return Ok(0) };
    if dead_ids.is_empty() || e_rows != d || d_cols != d || e_cols != d_rows || !params.contains("b_enc") {
        return Ok(0);
    }
    let weights: Vec<f64> = x.chunks_exact(d).zip(recon.chunks_exact(d)).map(|(a, b)| a.iter().zip(b).map(|(p, q)| ((p - q) as f64).powi(2)).sum::<f64>().powi(2)).collect();
    let total: f64 = weights.iter().sum();
    if !(total > 0.0 && total.is_finite()) {
        return Ok(0);
    }
    let alive: Vec<usize> = (0..e_cols).filter(|i| !dead[*i]).collect();
    let enc_norm = |i: usize| (0..d).map(|r| (w_enc[r * e_cols + i] as f64).powi(2)).sum::<f64>().sqrt();
    let mean_alive = if alive.is_empty() { 1.0 } else { alive.iter().map(|i| enc_norm(*i)).sum::<f64>() / alive.len() as f64 };
    let mut rng = SplitMix64::new(seed);
    for &i in &dead_ids {
        let mut u = rng.next_f64() * total;
        let mut r = 0;
        while r + 1 < weights.len() && u >= weights[r] {
            u -= weights[r];
            r += 1;
        }
        let row = &x[r * d..(r + 1) * d];
        let norm = row.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt().max(1e-12);
        for j in 0..d {
            let v = (row[j] as f64 / norm) as f32;
            w_dec[i * d + j] = v;
            w_enc[j * e_cols + i] = (0.2 * mean_alive) as f32 * v;
        }
    }
    let device = sae.device();
    let params = sae.params_mut();
    params.set_matrix("W_enc", Tensor::from_data(TensorData::new(w_enc, [e_rows, e_cols]), &device));
    params.set_matrix("W_dec", Tensor::from_data(TensorData::new(w_dec, [d_rows, d_cols]), &device));
    zero_entries(params, "b_enc", &dead_ids, false)?;
    for set in [&mut adam.m, &mut adam.v] {
        zero_entries(set, "W_enc", &dead_ids, true)?;
        zero_entries(set, "W_dec", &dead_ids, false)?;
        zero_entries(set, "b_enc", &dead_ids, false)?;
    }
    Ok(dead_ids.len())
}
