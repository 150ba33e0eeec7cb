//! TopK SAE (Gao et al. 2024; SAELens `topk`; EleutherAI sparsify):
//! `f = TopK_k(ReLU(W_encᵀ(x − b_dec) + b_enc))`, `x̂ = W_decᵀ f + b_dec`.
//!
//! Training adds the AuxK loss on dead latents (`k_aux = d_out / 2`, residual detached, scaled
//! by `min(n_dead / k_aux, 1)`), and optionally Multi-TopK (sparsify: the reconstruction with
//! the top `4k` latents, weighted 1/8). `rescale_acts_by_decoder_norm` (SAELens) selects on
//! `pre · ‖W_dec‖_row` and decodes with unit-norm rows; it is folded away on export.
//! `activation = "groupmax"` takes the maximum of each of `k` contiguous latent groups
//! (sparsify). `loss = "fvu"` uses sparsify's normalisation instead of SAELens's per-row MSE.

use std::path::Path;

use burn::tensor::{Device, Int, Tensor};
use sae_kernels as kernels;
use serde::{Deserialize, Serialize};
use crate::affine::{self, AffineIo, AuxKNorm};
use sae_core::config::ensure;
use sae_core::{
    KernelPolicy, LossTerm, ParamSet, Result, Sae, SaeConfig, SaeError, Schema, SparseCodes, TypedArchitecture, TrainBatch, TrainContext, TrainOutput, loss_terms, sae_state_accessors,
};

/// Selection rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TopKActivation {
    /// The k largest per row.
    #[default]
    Topk,
    /// The maximum of each of k contiguous groups.
    Groupmax,
}

/// Loss convention.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReconLoss {
    /// SAELens: squared error summed over features, mean over rows; AuxK selects among the raw
    /// pre-activations of dead latents.
    #[default]
    Mse,
    /// sparsify: fraction of variance unexplained, AuxK normalised by the same total variance
    /// and selecting among ReLU'd pre-activations.
    Fvu,
}

fn one() -> f32 {
    1.0
}

/// Hyperparameters of the TopK SAE.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TopKHyper {
    /// Active latents per row.
    pub k: usize,
    /// Selection rule.
    #[serde(default)]
    pub activation: TopKActivation,
    /// Select on decoder-norm-scaled pre-activations (SAELens).
    #[serde(default)]
    pub rescale_acts_by_decoder_norm: bool,
    /// Weight of the AuxK loss.
    #[serde(default = "one")]
    pub aux_loss_coefficient: f32,
    /// Add the Multi-TopK term (top 4k reconstruction, weight 1/8).
    #[serde(default)]
    pub multi_topk: bool,
    /// Keep decoder rows at unit norm with gradient projection (sparsify's training).
    #[serde(default)]
    pub normalize_decoder: bool,
    /// Reconstruction loss convention.
    #[serde(default)]
    pub loss: ReconLoss,
    /// Linear skip connection `W_skip`.
    #[serde(default)]
    pub skip_connection: bool,
    /// Initial decoder row norm (SAELens `decoder_init_norm`, default 0.1; `null` in JSON keeps
    /// the Kaiming rows). Ignored with `normalize_decoder`, which starts from unit rows.
    #[serde(default = "crate::affine::default_decoder_init_norm")]
    pub decoder_init_norm: Option<f32>,
}

/// A TopK SAE or transcoder.
#[derive(Debug, Clone)]
pub struct TopK {
    cfg: SaeConfig,
    hyper: TopKHyper,
    params: ParamSet,
    io: AffineIo,
    policy: KernelPolicy,
}

impl TopK {
    /// Builds from a config, its parsed hyperparameters and parameters.
    pub fn new(cfg: SaeConfig, hyper: TopKHyper, params: ParamSet) -> Self {
        let io = AffineIo { center: cfg.apply_b_dec_to_input && cfg.d_out() == cfg.d_in, denormalize: cfg.d_out() == cfg.d_in };
        Self { cfg, hyper, params, io, policy: KernelPolicy::default() }
    }

    /// The hyperparameters.
    pub fn hyper(&self) -> &TopKHyper {
        &self.hyper
    }

    /// Validates `k` and the activation, returns the schema.
    pub fn check(cfg: &SaeConfig, h: &TopKHyper, origin: &Path) -> Result<Schema> {
        ensure(h.k >= 1 && h.k <= cfg.d_sae, origin, "k", || format!("must be in 1..={} (d_sae), got {}", cfg.d_sae, h.k))?;
        if h.activation == TopKActivation::Groupmax {
            ensure(cfg.d_sae % h.k == 0, origin, "k", || format!("groupmax needs d_sae ({}) divisible by k ({})", cfg.d_sae, h.k))?;
        }
        Ok(affine::affine_schema(cfg, h.skip_connection))
    }

    /// Pre-activations `[n, d_sae]` (with decoder-norm rescaling when configured). Allocates
    /// `n × d_sae` floats; encoding with the top-k rule does not need them.
    pub fn hidden_pre(&self, x: Tensor<2>) -> Result<(Tensor<2>, Option<sae_core::RowNorm>)> {
        let (xc, norm) = affine::prepare_input(&self.cfg, &self.params, x, self.io.center)?;
        Ok((self.linear_encoder()?.pre(self.policy, xc)?, norm))
    }

    /// The linear part of the encoder, with the decoder-norm scale when configured.
    fn linear_encoder(&self) -> Result<kernels::LinearEncoder> {
        let scale = if self.hyper.rescale_acts_by_decoder_norm { Some(kernels::row_norms(self.params.matrix("W_dec")?)) } else { None };
        Ok(kernels::LinearEncoder { w_enc: self.params.matrix("W_enc")?, b_enc: self.params.vector("b_enc")?, scale })
    }

    /// Top-k codes through the fused encoder (and the AuxK selection when `aux` is given).
    fn encode_topk(&self, x: Tensor<2>, aux: Option<kernels::AuxSelect<'_>>) -> Result<(SparseCodes, Option<(Tensor<2>, Tensor<2, Int>)>)> {
        let (xc, norm) = affine::prepare_input(&self.cfg, &self.params, x, self.io.center)?;
        let sel = kernels::topk_encode(self.policy, xc, &self.linear_encoder()?, self.hyper.k, aux)?;
        Ok((SparseCodes::topk(sel.values, sel.indices, self.cfg.d_sae).with_row_norm(norm), sel.aux))
    }

    /// The codes of a training step through the fused encoders (gradients through the selected
    /// latents only): the AuxK selection when `aux` is given, and with Multi-TopK the codes of
    /// the top `4k` as well. For the top-k rule one selection of `4k` serves both: its first `k`
    /// columns are the top `k`.
    #[allow(clippy::type_complexity)]
    fn encode_for_training(&self, x: Tensor<2>, aux: Option<kernels::AuxSelect<'_>>) -> Result<(SparseCodes, Option<(Tensor<2>, Tensor<2, Int>)>, Option<SparseCodes>)> {
        let (xc, norm) = affine::prepare_input(&self.cfg, &self.params, x, self.io.center)?;
        let enc = self.linear_encoder()?;
        let (k, d_sae) = (self.hyper.k, self.cfg.d_sae);
        let k4 = (4 * k).min(d_sae);
        let codes = |sel: &kernels::TopKSelection| SparseCodes::topk(sel.values.clone(), sel.indices.clone(), d_sae).with_row_norm(norm.clone());
        Ok(match (self.hyper.activation, self.hyper.multi_topk) {
            (TopKActivation::Topk, false) => {
                let sel = kernels::topk_encode(self.policy, xc, &enc, k, aux)?;
                (codes(&sel), sel.aux.clone(), None)
            }
            (TopKActivation::Topk, true) => {
                let sel = kernels::topk_encode(self.policy, xc, &enc, k4, aux)?;
                let n = sel.values.dims()[0];
                let narrow = SparseCodes::topk(sel.values.clone().slice([0..n, 0..k]), sel.indices.clone().slice([0..n, 0..k]), d_sae);
                (narrow.with_row_norm(norm.clone()), sel.aux.clone(), Some(codes(&sel)))
            }
            (TopKActivation::Groupmax, multi) => {
                let wide = if multi { Some(codes(&kernels::topk_encode(self.policy, xc.clone(), &enc, k4, None)?)) } else { None };
                let sel = kernels::groupmax_encode(self.policy, xc, &enc, k, aux)?;
                (codes(&sel), sel.aux.clone(), wide)
            }
        })
    }

    fn select(&self, pre: Tensor<2>, k: usize) -> SparseCodes {
        let (values, indices) = match self.hyper.activation {
            TopKActivation::Topk => kernels::portable::topk_relu(pre, k),
            TopKActivation::Groupmax => kernels::portable::groupmax(pre, k),
        };
        SparseCodes::topk(values, indices, self.cfg.d_sae)
    }

    fn decoder(&self) -> Result<Tensor<2>> {
        let w = self.params.matrix("W_dec")?;
        Ok(if self.hyper.rescale_acts_by_decoder_norm { w.clone() / kernels::row_norms(w).unsqueeze_dim(1) } else { w })
    }

    fn recon_loss(&self, output: Tensor<2>, target: Tensor<2>) -> Tensor<1> {
        match self.hyper.loss {
            ReconLoss::Mse => affine::mse_loss(output, target),
            ReconLoss::Fvu => affine::fvu(output, target),
        }
    }
}

impl Sae for TopK {
    sae_state_accessors!(policy);

    fn encode(&self, x: Tensor<2>) -> Result<SparseCodes> {
        sae_core::sae::check_width(&x, self.cfg.d_in, "input")?;
        if self.hyper.activation == TopKActivation::Topk {
            return Ok(self.encode_topk(x, None)?.0);
        }
        let (pre, norm) = self.hidden_pre(x)?;
        Ok(self.select(pre, self.hyper.k).with_row_norm(norm))
    }

    fn decode(&self, codes: &SparseCodes) -> Result<Tensor<2>> {
        affine::decode_affine(self.policy, &self.params, codes, self.hyper.rescale_acts_by_decoder_norm, self.io.denormalize)
    }

    fn train_forward(&self, batch: &TrainBatch, ctx: &TrainContext) -> Result<TrainOutput> {
        sae_core::sae::check_width(&batch.x, self.cfg.d_in, "input")?;
        let target = batch.target(&self.cfg)?;
        let dead = ctx.dead_mask.as_ref().filter(|_| ctx.n_dead > 0);
        let k_aux = affine::auxk_k(self.cfg.d_out(), ctx.n_dead);
        let aux = dead.map(|d| kernels::AuxSelect { dead: d, k: k_aux });
        let (codes, aux_sel, wide) = self.encode_for_training(batch.x.clone(), aux)?;
        let output = affine::add_skip(&self.params, batch.x.clone(), self.decode(&codes)?);
        let mut terms = vec![LossTerm::new(loss_terms::MSE, self.recon_loss(output.clone(), target.clone()))];
        if dead.is_some() {
            let norm_kind = match self.hyper.loss {
                ReconLoss::Mse => AuxKNorm::PerRowMean,
                ReconLoss::Fvu => AuxKNorm::TotalVariance,
            };
            let Some((values, indices)) = aux_sel else {
                return Err(SaeError::Invariant("AuxK selection missing".into()));
            };
            // sparsify selects among ReLU'd pre-activations: the same latents win (ReLU is
            // monotone) and the ReLU only zeroes the negative winners.
            let values = if self.hyper.loss == ReconLoss::Fvu { values.clamp_min(0.0) } else { values };
            let aux = affine::auxk_loss_selected(self.policy, values, indices, ctx.n_dead, self.decoder()?, target.clone(), output.clone(), norm_kind)?;
            terms.push(LossTerm::new(loss_terms::AUX, aux.mul_scalar(self.hyper.aux_loss_coefficient)));
        }
        if let Some(wide) = wide {
            let wide_out = affine::add_skip(&self.params, batch.x.clone(), self.decode(&wide)?);
            terms.push(LossTerm::new(loss_terms::MULTI_TOPK, self.recon_loss(wide_out, target).div_scalar(8.0)));
        }
        Ok(TrainOutput::from_terms(terms, codes, output))
    }

    fn project_gradients(&self, grads: &mut ParamSet) -> Result<()> {
        if self.hyper.normalize_decoder {
            affine::project_decoder_gradient(self.policy, &self.params, grads)?;
        }
        Ok(())
    }

    fn after_step(&mut self, _out: &TrainOutput) -> Result<()> {
        if self.hyper.normalize_decoder {
            affine::normalize_decoder_rows(self.policy, &mut self.params)?;
        }
        Ok(())
    }

    fn inference_export(&self) -> Result<(SaeConfig, ParamSet)> {
        let mut cfg = self.cfg.clone();
        let mut params = self.params.clone().map(|_, t| t.detach());
        if self.hyper.rescale_acts_by_decoder_norm {
            fold_decoder_norms(&mut params, None)?;
            cfg.extra.insert("rescale_acts_by_decoder_norm".into(), false.into());
        }
        Ok((cfg, params))
    }
}

/// Folds decoder-row norms into the encoder: `W_dec /= n`, `W_enc *= n`, `b_enc *= n`, and the
/// named threshold (if any) `*= n`. Encodings of the folded SAE equal `f · n` of the original
/// with unit-norm decoding, so the reconstruction is unchanged.
pub fn fold_decoder_norms(params: &mut ParamSet, threshold: Option<&str>) -> Result<()> {
    let w_dec = params.matrix("W_dec")?;
    let n = kernels::row_norms(w_dec.clone());
    params.set_matrix("W_dec", w_dec / n.clone().unsqueeze_dim(1));
    params.set_matrix("W_enc", params.matrix("W_enc")? * n.clone().unsqueeze_dim(0));
    params.set_vector("b_enc", params.vector("b_enc")? * n.clone());
    if let Some(name) = threshold
        && params.contains(name)
    {
        params.set_vector(name, params.vector(name)? * n);
    }
    Ok(())
}

/// The `topk` architecture (Multi-TopK is its `multi_topk` option).
#[derive(Debug, Clone, Copy, Default)]
pub struct TopKArch;

impl TypedArchitecture for TopKArch {
    type Hyper = TopKHyper;
    fn name(&self) -> &'static str {
        sae_core::registry::names::TOPK
    }
    fn describe(&self) -> &'static str {
        "TopK encoder (k largest per row) with AuxK for dead latents; optional Multi-TopK, groupmax, skip"
    }
    fn hyper(&self, cfg: &SaeConfig, origin: &Path) -> Result<TopKHyper> {
        if !cfg.extra.contains_key("k") {
            return Err(SaeError::config(origin, "k", "missing (the number of active latents)"));
        }
        cfg.hyper(origin)
    }
    fn check(&self, cfg: &SaeConfig, hyper: &TopKHyper, origin: &Path) -> Result<Schema> {
        TopK::check(cfg, hyper, origin)
    }
    fn build_with(&self, cfg: SaeConfig, hyper: TopKHyper, params: ParamSet) -> Result<Box<dyn Sae>> {
        Ok(Box::new(TopK::new(cfg, hyper, params)))
    }
    fn init_params(&self, cfg: &SaeConfig, h: &TopKHyper, device: &Device, seed: u64) -> Result<ParamSet> {
        let init_norm = if h.normalize_decoder { Some(1.0) } else { h.decoder_init_norm };
        affine::init_tied(cfg, device, seed, init_norm, h.skip_connection)
    }
}
