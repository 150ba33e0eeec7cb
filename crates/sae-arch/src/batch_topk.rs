//! BatchTopK SAE (Bussmann et al. 2024; SAELens `batchtopk`): during training the `k·B` largest
//! ReLU pre-activations of the whole batch are kept. A global inference threshold θ is learnt as
//! an EMA of the smallest kept activation, `θ ← (1 − lr)·θ + lr·min₊(f)`, and the SAE is saved
//! as a JumpReLU SAE with that threshold on every latent (the batch-independent form).
//!
//! The threshold lives in the parameter set as `topk_threshold` `[1]` (it receives no gradient),
//! so checkpoints carry it.

use std::path::Path;

use burn::tensor::{Device, Tensor};
use sae_kernels as kernels;
use serde::{Deserialize, Serialize};
use crate::affine::{self, AffineIo, AuxKNorm};
use sae_core::config::ensure;
use sae_core::params::ParamTensor;
use sae_core::{
    KernelPolicy, LossTerm, ParamSet, Result, Sae, SaeConfig, SaeError, Schema, SparseCodes, TypedArchitecture, TrainBatch, TrainContext, TrainOutput, loss_terms, sae_state_accessors,
};

use crate::topk::fold_decoder_norms;

fn threshold_lr() -> f64 {
    0.01
}
fn one() -> f32 {
    1.0
}

/// Hyperparameters (SAELens key names).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BatchTopKHyper {
    /// Average active latents per row (may be fractional).
    pub k: f64,
    /// EMA rate of the inference threshold.
    #[serde(default = "threshold_lr")]
    pub topk_threshold_lr: f64,
    /// Weight of the AuxK loss.
    #[serde(default = "one")]
    pub aux_loss_coefficient: f32,
    /// Select on decoder-norm-scaled pre-activations.
    #[serde(default)]
    pub rescale_acts_by_decoder_norm: bool,
    /// Initial decoder row norm (SAELens `decoder_init_norm`, default 0.1; `null` in JSON keeps
    /// the Kaiming rows).
    #[serde(default = "crate::affine::default_decoder_init_norm")]
    pub decoder_init_norm: Option<f32>,
    /// While the sparsity warm-up runs (`sparsity_warmup_steps`), select the top `round(k)` of
    /// each row (TopK) instead of the top `k · batch` of the batch, so rare features keep their
    /// slots early on; BatchTopK selection afterwards.
    #[serde(default)]
    pub per_row_warmup: bool,
}

/// Keys that belong to the batch-dependent training form and are dropped on export.
pub(crate) const TRAINING_KEYS: [&str; 7] =
    ["k", "topk_threshold_lr", "aux_loss_coefficient", "rescale_acts_by_decoder_norm", "matryoshka_widths", "use_matryoshka_aux_loss", "per_row_warmup"];

/// A BatchTopK SAE in its training form.
#[derive(Debug, Clone)]
pub struct BatchTopK {
    pub(crate) cfg: SaeConfig,
    pub(crate) hyper: BatchTopKHyper,
    pub(crate) params: ParamSet,
    pub(crate) policy: KernelPolicy,
    pub(crate) io: AffineIo,
}

impl BatchTopK {
    /// Builds from a config, its parsed hyperparameters and parameters.
    pub fn new(cfg: SaeConfig, hyper: BatchTopKHyper, params: ParamSet) -> Self {
        let io = AffineIo::autoencoder(&cfg);
        Self { cfg, hyper, params, io, policy: KernelPolicy::default() }
    }

    /// Parses the hyperparameters, explaining a missing `k`.
    pub fn parse(cfg: &SaeConfig, origin: &Path) -> Result<BatchTopKHyper> {
        if !cfg.extra.contains_key("k") {
            return Err(SaeError::config(origin, "k", "missing (average active latents per row)"));
        }
        cfg.hyper(origin)
    }

    /// Validated hyperparameters and the schema (including `topk_threshold [1]`).
    pub fn check(cfg: &SaeConfig, h: &BatchTopKHyper, origin: &Path) -> Result<Schema> {
        ensure(h.k > 0.0 && h.k <= cfg.d_sae as f64, origin, "k", || format!("must be in (0, {}], got {}", cfg.d_sae, h.k))?;
        ensure((0.0..=1.0).contains(&h.topk_threshold_lr), origin, "topk_threshold_lr", || {
            format!("must be in [0, 1], got {}", h.topk_threshold_lr)
        })?;
        let mut s = affine::affine_schema(cfg, false);
        s.push(("topk_threshold".into(), vec![1]));
        Ok(s)
    }

    /// Freshly initialised parameters (threshold 0).
    pub fn init_params(cfg: &SaeConfig, h: &BatchTopKHyper, device: &Device, seed: u64) -> Result<ParamSet> {
        let mut p = affine::init_tied(cfg, device, seed, h.decoder_init_norm, false)?;
        p.insert("topk_threshold", ParamTensor::Vector(Tensor::zeros([1], device)));
        Ok(p)
    }

    /// Pre-activations (decoder-norm scaled when configured) and the input normalisation.
    /// Allocates `n × d_sae` floats; encoding and training do not need them.
    pub fn hidden_pre(&self, x: Tensor<2>) -> Result<(Tensor<2>, Option<sae_core::RowNorm>)> {
        let (xc, norm) = affine::prepare_input(&self.cfg, &self.params, x, self.io.center)?;
        Ok((self.linear_encoder()?.pre(self.policy, xc)?, norm))
    }

    /// The linear part of the encoder, with the decoder-norm scale when configured.
    pub(crate) fn linear_encoder(&self) -> Result<kernels::LinearEncoder> {
        let scale = if self.hyper.rescale_acts_by_decoder_norm { Some(kernels::row_norms(self.params.matrix("W_dec")?)) } else { None };
        Ok(kernels::LinearEncoder { w_enc: self.params.matrix("W_enc")?, b_enc: self.params.vector("b_enc")?, scale })
    }

    /// The decoder used for reconstruction (unit-norm rows when rescaling).
    pub fn decoder(&self) -> Result<Tensor<2>> {
        let w = self.params.matrix("W_dec")?;
        Ok(if self.hyper.rescale_acts_by_decoder_norm { w.clone() / kernels::row_norms(w).unsqueeze_dim(1) } else { w })
    }

    /// Dense BatchTopK activations of `pre` `[n, d_sae]`: `round(k · n)` kept.
    pub fn activate(&self, pre: Tensor<2>) -> Tensor<2> {
        let n = pre.dims()[0];
        kernels::portable::batch_topk(pre, self.k_total(n))
    }

    /// How many activations a batch of `n` rows keeps: `k · n`.
    fn k_total(&self, n: usize) -> usize {
        (self.hyper.k * n as f64) as usize
    }

    /// Sparse codes of `x` by the training selection (the batch's top `k · n`, or the per-row
    /// TopK of the warm-up when `per_row_warmup` is set and `ctx` is in it), through the fused
    /// encoders, so that gradients flow through the winners only; plus the AuxK selection
    /// (raw pre-activations of dead latents) when `aux` is given.
    pub(crate) fn encode_selected(
        &self,
        x: Tensor<2>,
        ctx: Option<&TrainContext>,
        aux: Option<kernels::AuxSelect<'_>>,
    ) -> Result<(SparseCodes, Option<(Tensor<2>, Tensor<2, burn::tensor::Int>)>)> {
        let (xc, norm) = affine::prepare_input(&self.cfg, &self.params, x, self.io.center)?;
        let n = xc.dims()[0];
        let enc = self.linear_encoder()?;
        let warm_up = self.hyper.per_row_warmup && ctx.is_some_and(|c| c.sparsity_scale < 1.0);
        let sel = if warm_up {
            let k = (self.hyper.k.round() as usize).clamp(1, self.cfg.d_sae.max(1));
            kernels::topk_encode(self.policy, xc, &enc, k, aux)?
        } else {
            kernels::batch_topk_encode(self.policy, xc, &enc, self.k_total(n), aux)?
        };
        Ok((SparseCodes::topk(sel.values, sel.indices, self.cfg.d_sae).with_row_norm(norm), sel.aux))
    }

    /// The AuxK selection for a training step: the `k_aux` largest raw pre-activations among
    /// the dead latents, when any are dead.
    pub(crate) fn aux_select<'a>(&self, ctx: &'a TrainContext) -> Option<kernels::AuxSelect<'a>> {
        ctx.dead_mask.as_ref().filter(|_| ctx.n_dead > 0).map(|dead| kernels::AuxSelect { dead, k: affine::auxk_k(self.cfg.d_out(), ctx.n_dead) })
    }

    /// The current inference threshold.
    pub fn threshold(&self) -> Result<f32> {
        Ok(self.params.vector("topk_threshold")?.into_scalar::<f32>())
    }

    /// Mean-squared-error and AuxK terms shared with Matryoshka; `aux_sel` is the AuxK
    /// selection of [`BatchTopK::encode_selected`].
    pub(crate) fn base_terms(
        &self,
        aux_sel: Option<(Tensor<2>, Tensor<2, burn::tensor::Int>)>,
        output: &Tensor<2>,
        batch: &TrainBatch,
        ctx: &TrainContext,
    ) -> Result<Vec<LossTerm>> {
        let target = batch.target(&self.cfg)?;
        let mut terms = vec![LossTerm::new(loss_terms::MSE, affine::mse_loss(output.clone(), target.clone()))];
        if ctx.dead_mask.is_some() {
            let aux = match aux_sel {
                Some((values, indices)) => {
                    affine::auxk_loss_selected(self.policy, values, indices, ctx.n_dead, self.decoder()?, target, output.clone(), AuxKNorm::PerRowMean)?
                }
                None => Tensor::zeros([1], &output.device()),
            };
            terms.push(LossTerm::new(loss_terms::AUX, aux.mul_scalar(self.hyper.aux_loss_coefficient)));
        }
        Ok(terms)
    }

    /// EMA update of the threshold from the smallest positive activation of a step.
    pub(crate) fn update_threshold(&mut self, out: &TrainOutput) -> Result<()> {
        let Some(min_pos) = smallest_positive(out)? else { return Ok(()) };
        let lr = self.hyper.topk_threshold_lr;
        let updated = (1.0 - lr) * self.threshold()? as f64 + lr * min_pos;
        let device = self.params.vector("topk_threshold")?.device();
        self.params.set_vector("topk_threshold", Tensor::from_floats([updated as f32], &device));
        Ok(())
    }

    /// The JumpReLU inference form.
    pub(crate) fn export_jumprelu(&self) -> Result<(SaeConfig, ParamSet)> {
        let mut params = self.params.clone().map(|_, t| t.detach());
        if self.hyper.rescale_acts_by_decoder_norm {
            fold_decoder_norms(&mut params, None)?;
        }
        let theta = self.threshold()?;
        let device = self.params.vector("b_enc")?.device();
        params.remove("topk_threshold");
        params.insert("threshold", ParamTensor::Vector(Tensor::full([self.cfg.d_sae], theta, &device)));
        let mut cfg = self.cfg.clone();
        cfg.architecture = "jumprelu".into();
        for key in TRAINING_KEYS {
            cfg.extra.remove(key);
        }
        Ok((cfg, params))
    }
}

/// The smallest positive activation of a training step's codes, or `None` when none fired:
/// what the BatchTopK threshold (and JumpReLU's TopK warm-up) follow.
pub(crate) fn smallest_positive(out: &TrainOutput) -> Result<Option<f64>> {
    Ok(out.codes.smallest_positive()?.map(f64::from))
}

impl Sae for BatchTopK {
    sae_state_accessors!(policy);

    fn encode(&self, x: Tensor<2>) -> Result<SparseCodes> {
        sae_core::sae::check_width(&x, self.cfg.d_in, "input")?;
        Ok(self.encode_selected(x, None, None)?.0)
    }

    fn decode(&self, codes: &SparseCodes) -> Result<Tensor<2>> {
        affine::decode_affine(self.policy, &self.params, codes, self.hyper.rescale_acts_by_decoder_norm, self.io.denormalize)
    }

    fn train_forward(&self, batch: &TrainBatch, ctx: &TrainContext) -> Result<TrainOutput> {
        sae_core::sae::check_width(&batch.x, self.cfg.d_in, "input")?;
        let (codes, aux_sel) = self.encode_selected(batch.x.clone(), Some(ctx), self.aux_select(ctx))?;
        let output = self.decode(&codes)?;
        let terms = self.base_terms(aux_sel, &output, batch, ctx)?;
        Ok(TrainOutput::from_terms(terms, codes, output))
    }

    fn after_step(&mut self, out: &TrainOutput) -> Result<()> {
        self.update_threshold(out)
    }

    fn inference_export(&self) -> Result<(SaeConfig, ParamSet)> {
        self.export_jumprelu()
    }
}

/// The `batchtopk` architecture.
#[derive(Debug, Clone, Copy, Default)]
pub struct BatchTopKArch;

impl TypedArchitecture for BatchTopKArch {
    type Hyper = BatchTopKHyper;
    fn name(&self) -> &'static str {
        "batchtopk"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["batch_topk"]
    }
    fn describe(&self) -> &'static str {
        "BatchTopK: k·B largest activations per batch while training; saved as JumpReLU with the learnt threshold"
    }
    fn hyper(&self, cfg: &SaeConfig, origin: &Path) -> Result<BatchTopKHyper> {
        BatchTopK::parse(cfg, origin)
    }
    fn check(&self, cfg: &SaeConfig, hyper: &BatchTopKHyper, origin: &Path) -> Result<Schema> {
        BatchTopK::check(cfg, hyper, origin)
    }
    fn build_with(&self, cfg: SaeConfig, hyper: BatchTopKHyper, params: ParamSet) -> Result<Box<dyn Sae>> {
        Ok(Box::new(BatchTopK::new(cfg, hyper, params)))
    }
    fn init_params(&self, cfg: &SaeConfig, hyper: &BatchTopKHyper, device: &Device, seed: u64) -> Result<ParamSet> {
        BatchTopK::init_params(cfg, hyper, device, seed)
    }
    fn notes_with(&self, _cfg: &SaeConfig, _hyper: &BatchTopKHyper) -> Vec<String> {
        vec!["training form: encoding depends on the batch (convert to saelens to get the JumpReLU inference form)".into()]
    }
}
