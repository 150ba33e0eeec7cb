//! Building blocks shared by the linear-encoder/linear-decoder architectures: input
//! normalisation and centring, decoding, the reconstruction loss, AuxK, and initialisation.
//! Downstream architectures use these too, so that they behave like the built-in ones. The
//! operations with a fast path take the SAE's [`KernelPolicy`].

use burn::tensor::{Bool, Device, Tensor};
use sae_core::codes::{RowNorm, SparseCodes};
use sae_core::config::{Normalization, SaeConfig};
use sae_core::params::{ParamSet, ParamTensor};
use sae_core::rng::SplitMix64;
use sae_core::{KernelPolicy, Result};
use sae_kernels as kernels;

/// Epsilon of SAELens's runtime layer norm.
const LAYER_NORM_EPS: f32 = 1e-5;

/// Applies the config's runtime normalisation and, when `center` is true, subtracts `b_dec`.
/// Returns the encoder input and the row statistics needed to undo the normalisation.
pub fn prepare_input(cfg: &SaeConfig, params: &ParamSet, x: Tensor<2>, center: bool) -> Result<(Tensor<2>, Option<RowNorm>)> {
    let [n, d] = x.dims();
    let device = x.device();
    let row_norm = match cfg.normalize_activations {
        Normalization::ConstantNormRescale => {
            let norm = x.clone().powi_scalar(2).sum_dim(1).sqrt();
            let coeff = norm.recip().mul_scalar((d as f32).sqrt());
            Some(RowNorm { shift: Tensor::zeros([n, 1], &device), in_scale: coeff.clone(), out_scale: coeff.recip() })
        }
        Normalization::LayerNorm => {
            let mu = x.clone().mean_dim(1);
            let centred = x.clone() - mu.clone();
            let var = centred.powi_scalar(2).sum_dim(1).div_scalar((d.max(2) - 1) as f32);
            let std = var.sqrt();
            Some(RowNorm { shift: mu, in_scale: std.clone().add_scalar(LAYER_NORM_EPS).recip(), out_scale: std })
        }
        _ => None,
    };
    let mut x = match &row_norm {
        Some(r) => (x - r.shift.clone()) * r.in_scale.clone(),
        None => x,
    };
    if center {
        x = x - params.vector("b_dec")?.unsqueeze_dim(0);
    }
    Ok((x, row_norm))
}

/// Undoes the runtime normalisation on a decoder output.
pub fn finish_output(y: Tensor<2>, row_norm: &Option<RowNorm>) -> Tensor<2> {
    match row_norm {
        Some(r) => y * r.out_scale.clone() + r.shift.clone(),
        None => y,
    }
}

/// `codes @ W_dec + b_dec`, optionally dividing each latent by its decoder-row norm first
/// (SAELens's `rescale_acts_by_decoder_norm`), then undoing the input normalisation when
/// `denormalize` is true (transcoders do not: their output lives elsewhere).
pub fn decode_affine(policy: KernelPolicy, params: &ParamSet, codes: &SparseCodes, rescale_by_decoder_norm: bool, denormalize: bool) -> Result<Tensor<2>> {
    let mut w_dec = params.matrix("W_dec")?;
    if rescale_by_decoder_norm {
        let norms = kernels::row_norms(w_dec.clone()).unsqueeze_dim(1);
        w_dec = w_dec / norms;
    }
    let y = kernels::decode_codes(policy, codes, w_dec)? + params.vector("b_dec")?.unsqueeze_dim(0);
    Ok(if denormalize { finish_output(y, &codes.row_norm) } else { y })
}

/// SAELens's reconstruction loss: squared error summed over features, averaged over rows. `[1]`.
pub fn mse_loss(output: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    (output - target).powi_scalar(2).sum_dim(1).mean()
}

/// sparsify's fraction of variance unexplained: ‖y − ŷ‖² / ‖y − mean(y)‖². `[1]`.
pub fn fvu(output: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
    let total = total_variance(target.clone());
    (output - target).powi_scalar(2).sum() / total
}

/// Σ‖y − mean(y)‖² over the batch, `[1]` (detached: a normaliser, not a training signal).
pub fn total_variance(target: Tensor<2>) -> Tensor<1> {
    let target = target.detach();
    (target.clone() - target.mean_dim(0)).powi_scalar(2).sum()
}

/// How the AuxK loss is normalised.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuxKNorm {
    /// SAELens: squared error summed over features, averaged over rows.
    PerRowMean,
    /// sparsify: summed squared error divided by the batch's total variance.
    TotalVariance,
}

/// The number of dead latents AuxK selects per row: `min(d_out / 2, n_dead)` (at least 1).
pub fn auxk_k(d_out: usize, n_dead: usize) -> usize {
    (d_out / 2).max(1).min(n_dead)
}

/// The AuxK loss (Gao et al. 2024): the `k_aux = d_out / 2` largest pre-activations among dead
/// latents reconstruct the detached residual `target − output`, scaled by
/// `min(n_dead / k_aux, 1)`. Returns zero when no latent is dead.
#[allow(clippy::too_many_arguments)]
pub fn auxk_loss(
    policy: KernelPolicy,
    hidden_pre: Tensor<2>,
    dead_mask: &Tensor<1, Bool>,
    n_dead: usize,
    w_dec: Tensor<2>,
    target: Tensor<2>,
    output: Tensor<2>,
    norm: AuxKNorm,
) -> Result<Tensor<1>> {
    if n_dead == 0 {
        return Ok(Tensor::zeros([1], &hidden_pre.device()));
    }
    let k_aux = auxk_k(target.dims()[1], n_dead);
    let masked = hidden_pre.mask_fill(dead_mask.clone().bool_not().unsqueeze_dim(0), f32::NEG_INFINITY);
    let (values, indices) = masked.topk_with_indices(k_aux, 1);
    auxk_loss_selected(policy, values, indices, n_dead, w_dec, target, output, norm)
}

/// The AuxK loss from an already made selection: `values` `[n, k_aux]` are the pre-activations
/// of the dead latents `indices` chosen per row (see [`auxk_loss`] and
/// [`sae_kernels::topk_encode`]'s auxiliary selection).
#[allow(clippy::too_many_arguments)]
pub fn auxk_loss_selected(
    policy: KernelPolicy,
    values: Tensor<2>,
    indices: Tensor<2, burn::tensor::Int>,
    n_dead: usize,
    w_dec: Tensor<2>,
    target: Tensor<2>,
    output: Tensor<2>,
    norm: AuxKNorm,
) -> Result<Tensor<1>> {
    if n_dead == 0 {
        return Ok(Tensor::zeros([1], &values.device()));
    }
    let d_out = target.dims()[1];
    let scale = (n_dead as f32 / (d_out / 2).max(1) as f32).min(1.0);
    let residual = (target.clone() - output).detach();
    let recon = kernels::sparse_decode(policy, values, indices, w_dec)?;
    let sq = (recon - residual).powi_scalar(2);
    let loss = match norm {
        AuxKNorm::PerRowMean => sq.sum_dim(1).mean(),
        AuxKNorm::TotalVariance => sq.sum() / total_variance(target),
    };
    Ok(loss.mul_scalar(scale))
}

/// SAELens's default initial decoder row norm for training (`decoder_init_norm = 0.1`, the
/// "heuristic" initialisation of Anthropic's April 2024 update). Small rows with `W_enc = W_decᵀ`
/// let the first Adam steps set the directions from the data: on the synthetic ground truth it
/// is the difference between MCC 0.67 and 0.80 for BatchTopK (docs/training.md).
pub fn default_decoder_init_norm() -> Option<f32> {
    Some(0.1)
}

/// Standard initialisation shared by SAELens and sparsify: `W_dec` `[d_sae, d_out]` Kaiming
/// uniform (rows scaled to `decoder_init_norm` when given), `W_enc = W_decᵀ` when the SAE
/// autoencodes (a separate Kaiming draw for transcoders), zero biases. Adds `W_skip`
/// `[d_out, d_in]` (zeros) when `skip` is set.
pub fn init_tied(cfg: &SaeConfig, device: &Device, seed: u64, decoder_init_norm: Option<f32>, skip: bool) -> Result<ParamSet> {
    let (d_in, d_sae, d_out) = (cfg.d_in, cfg.d_sae, cfg.d_out());
    let mut rng = SplitMix64::new(seed);
    let mut w_dec = rng.kaiming_uniform(d_sae * d_out, d_out);
    if let Some(target) = decoder_init_norm {
        for row in w_dec.chunks_mut(d_out) {
            let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(f32::MIN_POSITIVE);
            row.iter_mut().for_each(|v| *v *= target / norm);
        }
    }
    let w_enc = if d_out == d_in {
        let mut t = vec![0.0; d_in * d_sae];
        for (s, row) in w_dec.chunks(d_out).enumerate() {
            for (i, v) in row.iter().enumerate() {
                t[i * d_sae + s] = *v;
            }
        }
        t
    } else {
        rng.kaiming_uniform(d_in * d_sae, d_sae)
    };
    let mut p = ParamSet::new();
    let host = |v: Vec<f32>, shape: &[usize]| ParamTensor::from_host(v, shape, device);
    p.insert("W_enc", host(w_enc, &[d_in, d_sae])?);
    p.insert("b_enc", host(vec![0.0; d_sae], &[d_sae])?);
    p.insert("W_dec", host(w_dec, &[d_sae, d_out])?);
    p.insert("b_dec", host(vec![0.0; d_out], &[d_out])?);
    if skip {
        p.insert("W_skip", host(vec![0.0; d_out * d_in], &[d_out, d_in])?);
    }
    Ok(p)
}

/// Schema entries of the standard affine parameters (`W_enc`, `b_enc`, `W_dec`, `b_dec`, and
/// `W_skip` when `skip`).
pub fn affine_schema(cfg: &SaeConfig, skip: bool) -> Vec<(String, Vec<usize>)> {
    let (d_in, d_sae, d_out) = (cfg.d_in, cfg.d_sae, cfg.d_out());
    let mut s = vec![
        ("W_enc".to_string(), vec![d_in, d_sae]),
        ("b_enc".to_string(), vec![d_sae]),
        ("W_dec".to_string(), vec![d_sae, d_out]),
        ("b_dec".to_string(), vec![d_out]),
    ];
    if skip {
        s.push(("W_skip".to_string(), vec![d_out, d_in]));
    }
    s
}

/// Rescales each decoder row to unit norm (norm + machine epsilon, as sparsify does). On an
/// error (a host read that failed) `params` is left empty and the error returned.
pub fn normalize_decoder_rows(policy: KernelPolicy, params: &mut ParamSet) -> Result<()> {
    // Taken out of the set (order kept) so that the host path owns the only handle and
    // rescales the rows in place.
    *params = std::mem::take(params).try_map(|name, t| match (name, t) {
        ("W_dec", ParamTensor::Matrix(w)) => Ok(ParamTensor::Matrix(kernels::normalize_rows(policy, w.detach(), f32::EPSILON)?)),
        (_, t) => Ok(t),
    })?;
    Ok(())
}

/// Removes from each decoder row's gradient its component parallel to the row (assumes unit-norm
/// rows), so that a step keeps rows on the unit sphere to first order. On an error `grads` is
/// left empty and the error returned.
pub fn project_decoder_gradient(policy: KernelPolicy, params: &ParamSet, grads: &mut ParamSet) -> Result<()> {
    if !matches!(grads.get("W_dec"), Some(ParamTensor::Matrix(_))) {
        return Ok(());
    }
    let w = params.matrix("W_dec")?.detach();
    *grads = std::mem::take(grads).try_map(|name, t| match (name, t) {
        ("W_dec", ParamTensor::Matrix(g)) => Ok(ParamTensor::Matrix(kernels::project_out_rows(policy, g, &w)?)),
        (_, t) => Ok(t),
    })?;
    Ok(())
}

/// How an architecture treats its input and output: autoencoders centre the input by `b_dec`
/// (when `apply_b_dec_to_input`) and undo the input normalisation on the output; transcoders do
/// neither, because their output lives at another hook point (as in SAELens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AffineIo {
    /// Subtract `b_dec` from the (normalised) input.
    pub center: bool,
    /// Undo the runtime input normalisation on the output.
    pub denormalize: bool,
}

impl AffineIo {
    /// The autoencoder behaviour for `cfg`.
    pub fn autoencoder(cfg: &SaeConfig) -> Self {
        Self { center: cfg.apply_b_dec_to_input && cfg.d_out() == cfg.d_in, denormalize: true }
    }

    /// The transcoder behaviour.
    pub fn transcoder() -> Self {
        Self { center: false, denormalize: false }
    }
}

/// Adds the skip connection `x · W_skipᵀ` to `output` when the parameters have `W_skip`.
pub fn add_skip(params: &ParamSet, x: Tensor<2>, output: Tensor<2>) -> Tensor<2> {
    match params.get("W_skip") {
        Some(ParamTensor::Matrix(w)) => output + x.matmul(w.clone().transpose()),
        _ => output,
    }
}
