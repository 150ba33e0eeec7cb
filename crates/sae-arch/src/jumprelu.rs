//! JumpReLU SAE (Rajamanoharan et al. 2024; SAELens `jumprelu`; Gemma Scope):
//! `f = pre · H(pre − θ)` with `pre = W_encᵀ(x − b_dec) + b_enc` and a per-latent threshold θ,
//! parameterised directly (not as a log), kept ≥ 0 after each step.
//!
//! Training uses straight-through estimators with a rectangle kernel of bandwidth ε:
//! `∂f/∂θ = −(θ/ε)·K((pre − θ)/ε)` and, for the step function in the L0 loss,
//! `∂H/∂θ = −(1/ε)·K((pre − θ)/ε)`; with `jumprelu_ste_to_input` the same pseudo-derivative also
//! reaches `pre` (Anthropic's setup). Sparsity losses: `step` (L0), `tanh` (Anthropic:
//! `Σ tanh(c · f · ‖W_dec‖)`), `quadratic` (Gemma Scope 2: `2/L₀* · (L0 − L₀*)²`); optional
//! pre-activation loss `Σ ReLU(θ − pre) · dead · ‖W_dec‖`.
//!
//! The estimators are written as `s − detach(s)` surrogates: the forward value is exact and
//! autodiff sees exactly the pseudo-derivatives above, on every backend.

use std::path::Path;

use burn::tensor::{Device, Tensor};
use sae_kernels as kernels;
use serde::{Deserialize, Serialize};
use crate::affine::{self, AffineIo};
use sae_core::config::ensure;
use sae_core::params::ParamTensor;
use sae_core::{
    KernelPolicy, LossTerm, ParamSet, Result, Sae, SaeConfig, SaeError, Schema, SparseCodes, TypedArchitecture, TrainBatch, TrainContext, TrainOutput, loss_terms, sae_state_accessors,
};

/// Sparsity loss of a JumpReLU SAE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SparsityLoss {
    /// Expected L0 through the step STE.
    #[default]
    Step,
    /// Anthropic's tanh penalty.
    Tanh,
    /// Quadratic pull of L0 towards `target_l0`.
    Quadratic,
}

fn init_threshold() -> f32 {
    0.01
}
fn bandwidth() -> f32 {
    0.05
}
fn one() -> f32 {
    1.0
}
fn tanh_scale() -> f32 {
    4.0
}

/// Hyperparameters (SAELens key names).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct JumpReluHyper {
    /// Initial threshold.
    #[serde(default = "init_threshold")]
    pub jumprelu_init_threshold: f32,
    /// STE bandwidth ε.
    #[serde(default = "bandwidth")]
    pub jumprelu_bandwidth: f32,
    /// Sparsity loss.
    #[serde(default)]
    pub jumprelu_sparsity_loss_mode: SparsityLoss,
    /// Sparsity coefficient.
    #[serde(default = "one")]
    pub l0_coefficient: f32,
    /// Pre-activation loss coefficient (off when absent).
    #[serde(default)]
    pub pre_act_loss_coefficient: Option<f32>,
    /// c in the tanh loss.
    #[serde(default = "tanh_scale")]
    pub jumprelu_tanh_scale: f32,
    /// Let the STE reach the pre-activations.
    #[serde(default)]
    pub jumprelu_ste_to_input: bool,
    /// Target L0 for the quadratic loss.
    #[serde(default)]
    pub target_l0: Option<f32>,
    /// Transcoder skip connection.
    #[serde(default)]
    pub skip_connection: bool,
    /// Initial decoder row norm (SAELens `decoder_init_norm`, default 0.1; `null` in JSON keeps
    /// the Kaiming rows).
    #[serde(default = "crate::affine::default_decoder_init_norm")]
    pub decoder_init_norm: Option<f32>,
    /// Per-row TopK with this many latents while the sparsity warm-up runs
    /// (`sparsity_warmup_steps`; MSE and AuxK, no L0 term), JumpReLU after it. Meanwhile every
    /// threshold follows an EMA of the smallest kept activation of each batch (rate
    /// [`TOPK_WARMUP_THRESHOLD_RATE`]), so the JumpReLU phase starts where the TopK phase fires.
    /// Off (`None`) by default.
    #[serde(default)]
    pub topk_warmup_k: Option<usize>,
}

/// EMA rate of the thresholds during a TopK warm-up (BatchTopK's `topk_threshold_lr` default).
pub const TOPK_WARMUP_THRESHOLD_RATE: f64 = 0.01;

/// A JumpReLU SAE or transcoder.
#[derive(Debug, Clone)]
pub struct JumpRelu {
    cfg: SaeConfig,
    hyper: JumpReluHyper,
    params: ParamSet,
    io: AffineIo,
    policy: KernelPolicy,
}

/// Rectangle kernel `1{|u| < 1/2}` of `(pre − θ)/ε`, detached, `[n, d]`.
fn rectangle(pre: &Tensor<2>, threshold: &Tensor<2>, bandwidth: f32) -> Tensor<2> {
    (pre.clone().detach() - threshold.clone().detach()).div_scalar(bandwidth).abs().lower_elem(0.5).float()
}

/// JumpReLU with its straight-through estimator; `threshold` is `[1, d]`.
pub fn jumprelu_ste(pre: Tensor<2>, threshold: Tensor<2>, bandwidth: f32, ste_to_input: bool) -> Tensor<2> {
    let gate = pre.clone().greater(threshold.clone()).float().detach();
    let value = pre.clone() * gate;
    let pseudo = (threshold.clone().detach().div_scalar(bandwidth) * rectangle(&pre, &threshold, bandwidth)).detach();
    surrogate(value, pre, threshold, pseudo, ste_to_input)
}

/// Heaviside step `H(pre − θ)` with its straight-through estimator.
pub fn step_ste(pre: Tensor<2>, threshold: Tensor<2>, bandwidth: f32, ste_to_input: bool) -> Tensor<2> {
    let value = pre.clone().greater(threshold.clone()).float().detach();
    let pseudo = rectangle(&pre, &threshold, bandwidth).div_scalar(bandwidth).detach();
    surrogate(value, pre, threshold, pseudo, ste_to_input)
}

/// `value + s − detach(s)` with `s = (pre·[to_input] − θ) · pseudo`: the forward value is
/// `value`, `∂/∂θ` gains `−pseudo`, and `∂/∂pre` gains `pseudo` when `to_input`.
fn surrogate(value: Tensor<2>, pre: Tensor<2>, threshold: Tensor<2>, pseudo: Tensor<2>, to_input: bool) -> Tensor<2> {
    let base = if to_input { pre } else { pre.detach().zeros_like() };
    let s = (base - threshold) * pseudo;
    value + (s.clone() - s.detach())
}

impl JumpRelu {
    /// Builds from a config and parameters in the given I/O mode.
    pub fn new(cfg: SaeConfig, hyper: JumpReluHyper, params: ParamSet, io: AffineIo) -> Self {
        Self { cfg, hyper, params, io, policy: KernelPolicy::default() }
    }

    /// Validated hyperparameters and the parameter schema.
    pub fn check(cfg: &SaeConfig, h: &JumpReluHyper, origin: &Path) -> Result<Schema> {
        ensure(h.jumprelu_bandwidth > 0.0, origin, "jumprelu_bandwidth", || format!("must be > 0, got {}", h.jumprelu_bandwidth))?;
        ensure(h.l0_coefficient >= 0.0, origin, "l0_coefficient", || format!("must be ≥ 0, got {}", h.l0_coefficient))?;
        if h.jumprelu_sparsity_loss_mode == SparsityLoss::Quadratic {
            match h.target_l0 {
                None => return Err(SaeError::config(origin, "target_l0", "required by the quadratic sparsity loss")),
                Some(t) => ensure(t > 0.0 && t <= cfg.d_sae as f32, origin, "target_l0", || format!("must be in (0, {}], got {t}", cfg.d_sae))?,
            }
        }
        if let Some(k) = h.topk_warmup_k {
            ensure(k >= 1 && k <= cfg.d_sae, origin, "topk_warmup_k", || format!("must be in 1..={}, got {k}", cfg.d_sae))?;
        }
        let mut s = affine::affine_schema(cfg, h.skip_connection);
        s.push(("threshold".into(), vec![cfg.d_sae]));
        Ok(s)
    }

    /// A training step of the TopK warm-up (`topk_warmup_k`): the `k` largest ReLU'd
    /// pre-activations per row, MSE, AuxK on the dead latents (weight 1), and an `l0_loss` of
    /// zero so that the logged terms stay the same.
    fn topk_warmup_forward(&self, pre: Tensor<2>, norm: Option<sae_core::RowNorm>, k: usize, batch: &TrainBatch, ctx: &TrainContext) -> Result<TrainOutput> {
        let d = pre.dims()[1];
        let (values, indices) = kernels::portable::topk_relu(pre.clone(), k.min(d));
        let codes = SparseCodes::topk(values, indices, d).with_row_norm(norm);
        let output = affine::add_skip(&self.params, batch.x.clone(), self.decode(&codes)?);
        let target = batch.target(&self.cfg)?;
        let mut terms = vec![
            LossTerm::new(loss_terms::MSE, affine::mse_loss(output.clone(), target.clone())),
            LossTerm::new(loss_terms::L0, Tensor::zeros([1], &batch.x.device())),
        ];
        if let Some(mask) = &ctx.dead_mask {
            let aux = affine::auxk_loss(self.policy, pre, mask, ctx.n_dead, self.params.matrix("W_dec")?, target, output.clone(), affine::AuxKNorm::PerRowMean)?;
            terms.push(LossTerm::new(loss_terms::AUX, aux));
        }
        Ok(TrainOutput::from_terms(terms, codes, output))
    }

    /// Moves every threshold towards the smallest positive kept activation of a TopK warm-up
    /// step (EMA, rate [`TOPK_WARMUP_THRESHOLD_RATE`]).
    fn follow_smallest_kept(&mut self, out: &TrainOutput) -> Result<()> {
        let Some(min_pos) = crate::batch_topk::smallest_positive(out)? else { return Ok(()) };
        let r = TOPK_WARMUP_THRESHOLD_RATE;
        let t = self.params.vector("threshold")?.detach();
        self.params.set_vector("threshold", t.mul_scalar(1.0 - r).add_scalar(r * min_pos));
        Ok(())
    }

    /// Freshly initialised parameters (threshold = `jumprelu_init_threshold`).
    pub fn init_params(cfg: &SaeConfig, h: &JumpReluHyper, device: &Device, seed: u64) -> Result<ParamSet> {
        let mut p = affine::init_tied(cfg, device, seed, h.decoder_init_norm, h.skip_connection)?;
        p.insert("threshold", ParamTensor::Vector(Tensor::full([cfg.d_sae], h.jumprelu_init_threshold, device)));
        Ok(p)
    }

    fn hidden_pre(&self, x: Tensor<2>) -> Result<(Tensor<2>, Option<sae_core::RowNorm>)> {
        let (xc, norm) = affine::prepare_input(&self.cfg, &self.params, x, self.io.center)?;
        Ok((kernels::matmul(self.policy, xc, self.params.matrix("W_enc")?)? + self.params.vector("b_enc")?.unsqueeze_dim(0), norm))
    }
}

impl Sae for JumpRelu {
    sae_state_accessors!(policy);

    fn encode(&self, x: Tensor<2>) -> Result<SparseCodes> {
        sae_core::sae::check_width(&x, self.cfg.d_in, "input")?;
        let (xc, norm) = affine::prepare_input(&self.cfg, &self.params, x, self.io.center)?;
        let activation = kernels::DenseActivation::JumpRelu(self.params.vector("threshold")?);
        let acts = kernels::dense_encode(self.policy, xc, self.params.matrix("W_enc")?, self.params.vector("b_enc")?, &activation)?;
        Ok(SparseCodes::dense(acts).with_row_norm(norm))
    }

    fn decode(&self, codes: &SparseCodes) -> Result<Tensor<2>> {
        affine::decode_affine(self.policy, &self.params, codes, false, self.io.denormalize)
    }

    fn train_forward(&self, batch: &TrainBatch, ctx: &TrainContext) -> Result<TrainOutput> {
        sae_core::sae::check_width(&batch.x, self.cfg.d_in, "input")?;
        let h = &self.hyper;
        let (pre, norm) = self.hidden_pre(batch.x.clone())?;
        if let Some(k) = h.topk_warmup_k.filter(|_| ctx.sparsity_scale < 1.0) {
            return self.topk_warmup_forward(pre, norm, k, batch, ctx);
        }
        let threshold = self.params.vector("threshold")?.unsqueeze_dim(0);
        let acts = jumprelu_ste(pre.clone(), threshold.clone(), h.jumprelu_bandwidth, h.jumprelu_ste_to_input);
        let codes = SparseCodes::dense(acts.clone()).with_row_norm(norm);
        let output = affine::add_skip(&self.params, batch.x.clone(), self.decode(&codes)?);
        let mse = affine::mse_loss(output.clone(), batch.target(&self.cfg)?);
        let dec_norm = kernels::row_norms(self.params.matrix("W_dec")?).unsqueeze_dim(0);
        let coeff = h.l0_coefficient * ctx.sparsity_scale;
        let per_row = match h.jumprelu_sparsity_loss_mode {
            SparsityLoss::Step | SparsityLoss::Quadratic => {
                let l0 = step_ste(pre.clone(), threshold.clone(), h.jumprelu_bandwidth, h.jumprelu_ste_to_input).sum_dim(1);
                match (h.jumprelu_sparsity_loss_mode, h.target_l0) {
                    (SparsityLoss::Quadratic, Some(t)) => l0.sub_scalar(t).powi_scalar(2).mul_scalar(2.0 / t),
                    _ => l0,
                }
            }
            SparsityLoss::Tanh => (acts * dec_norm.clone()).mul_scalar(h.jumprelu_tanh_scale).tanh().sum_dim(1),
        };
        let mut terms = vec![
            LossTerm::new(loss_terms::MSE, mse),
            LossTerm::new(loss_terms::L0, per_row.mean().mul_scalar(coeff)),
        ];
        if let Some(c) = h.pre_act_loss_coefficient {
            let value = match &ctx.dead_mask {
                Some(mask) if ctx.n_dead > 0 => {
                    let dead = mask.clone().float().unsqueeze_dim(0);
                    ((threshold - pre).clamp_min(0.0) * dead * dec_norm).sum_dim(1).mean().mul_scalar(c)
                }
                _ => Tensor::zeros([1], &batch.x.device()),
            };
            terms.push(LossTerm::new(loss_terms::PRE_ACT, value));
        }
        Ok(TrainOutput::from_terms(terms, codes, output))
    }

    fn after_step(&mut self, out: &TrainOutput) -> Result<()> {
        if matches!(out.codes.values, sae_core::CodeValues::TopK { .. }) {
            // A TopK warm-up step (the JumpReLU steps' codes are dense).
            self.follow_smallest_kept(out)?;
        }
        let t = self.params.vector("threshold")?.detach().clamp_min(0.0);
        self.params.set_vector("threshold", t);
        Ok(())
    }
}

/// The `jumprelu` architecture.
#[derive(Debug, Clone, Copy, Default)]
pub struct JumpReluArch;

impl TypedArchitecture for JumpReluArch {
    type Hyper = JumpReluHyper;
    fn name(&self) -> &'static str {
        sae_core::registry::names::JUMPRELU
    }
    fn describe(&self) -> &'static str {
        "JumpReLU: per-latent threshold trained with a straight-through estimator (step, tanh or quadratic L0 loss)"
    }
    fn check(&self, cfg: &SaeConfig, hyper: &JumpReluHyper, origin: &Path) -> Result<Schema> {
        JumpRelu::check(cfg, hyper, origin)
    }
    fn build_with(&self, cfg: SaeConfig, hyper: JumpReluHyper, params: ParamSet) -> Result<Box<dyn Sae>> {
        let io = AffineIo::autoencoder(&cfg);
        Ok(Box::new(JumpRelu::new(cfg, hyper, params, io)))
    }
    fn init_params(&self, cfg: &SaeConfig, hyper: &JumpReluHyper, device: &Device, seed: u64) -> Result<ParamSet> {
        JumpRelu::init_params(cfg, hyper, device, seed)
    }
}
