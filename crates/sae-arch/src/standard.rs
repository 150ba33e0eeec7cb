//! ReLU + L1 ("standard"): `f = ReLU(W_encᵀ(x − b_dec) + b_enc)`, `x̂ = W_decᵀ f + b_dec`.
//!
//! Two schools of sparsity penalty (docs/architectures.md):
//! - `decoder_norm = "weighted"` (default; Anthropic, April 2024 update; SAELens "standard"):
//!   `L = ‖x − x̂‖² + λ · ‖f ⊙ ‖W_dec‖_row‖_p`, decoder free.
//! - `decoder_norm = "unit"` (Bricken et al. 2023; dictionary_learning): `L = ‖x − x̂‖² + λ‖f‖_p`
//!   with decoder rows renormalised to unit norm after every step and the gradient component
//!   parallel to each row removed before it.

use std::path::Path;

use burn::tensor::{Device, Tensor};
use sae_kernels as kernels;
use serde::{Deserialize, Serialize};
use crate::affine::{self, AffineIo};
use sae_core::config::ensure;
use sae_core::{KernelPolicy, LossTerm, ParamSet, Result, Sae, SaeConfig, Schema, SparseCodes, TypedArchitecture, TrainBatch, TrainContext, TrainOutput, loss_terms, sae_state_accessors};

/// Which decoder-norm school the L1 penalty follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecoderNormSchool {
    /// Penalty weighted by decoder-row norms; decoder unconstrained.
    #[default]
    Weighted,
    /// Unit-norm decoder rows with gradient projection; plain penalty.
    Unit,
}

fn one() -> f32 {
    1.0
}

/// Hyperparameters of the ReLU + L1 SAE (SAELens key names).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StandardHyper {
    /// λ.
    #[serde(default = "one")]
    pub l1_coefficient: f32,
    /// p of the sparsity norm (1 for L1).
    #[serde(default = "one")]
    pub lp_norm: f32,
    /// The decoder-norm school.
    #[serde(default)]
    pub decoder_norm: DecoderNormSchool,
    /// Initial decoder row norm (SAELens `decoder_init_norm`, default 0.1; `null` in JSON keeps
    /// the Kaiming rows).
    #[serde(default = "crate::affine::default_decoder_init_norm")]
    pub decoder_init_norm: Option<f32>,
    /// Transcoder skip connection (`W_skip`).
    #[serde(default)]
    pub skip_connection: bool,
}

/// A ReLU SAE (or ReLU transcoder).
#[derive(Debug, Clone)]
pub struct Standard {
    cfg: SaeConfig,
    hyper: StandardHyper,
    params: ParamSet,
    io: AffineIo,
    policy: KernelPolicy,
}

impl Standard {
    /// Builds from a config and parameters in the given I/O mode.
    pub fn new(cfg: SaeConfig, hyper: StandardHyper, params: ParamSet, io: AffineIo) -> Self {
        Self { cfg, hyper, params, io, policy: KernelPolicy::default() }
    }

    /// Validated hyperparameters and the parameter schema.
    pub fn check(cfg: &SaeConfig, h: &StandardHyper, origin: &Path) -> Result<Schema> {
        ensure(h.l1_coefficient >= 0.0, origin, "l1_coefficient", || format!("must be ≥ 0, got {}", h.l1_coefficient))?;
        ensure(h.lp_norm > 0.0, origin, "lp_norm", || format!("must be > 0, got {}", h.lp_norm))?;
        Ok(affine::affine_schema(cfg, h.skip_connection))
    }

    /// Freshly initialised parameters.
    pub fn init_params(cfg: &SaeConfig, h: &StandardHyper, device: &Device, seed: u64) -> Result<ParamSet> {
        let init_norm = match h.decoder_norm {
            DecoderNormSchool::Unit => Some(1.0),
            DecoderNormSchool::Weighted => h.decoder_init_norm,
        };
        affine::init_tied(cfg, device, seed, init_norm, h.skip_connection)
    }
}

impl Sae for Standard {
    sae_state_accessors!(policy);

    fn encode(&self, x: Tensor<2>) -> Result<SparseCodes> {
        sae_core::sae::check_width(&x, self.cfg.d_in, "input")?;
        let (xc, norm) = affine::prepare_input(&self.cfg, &self.params, x, self.io.center)?;
        let acts = kernels::dense_encode(self.policy, xc, self.params.matrix("W_enc")?, self.params.vector("b_enc")?, &kernels::DenseActivation::Relu)?;
        Ok(SparseCodes::dense(acts).with_row_norm(norm))
    }

    fn decode(&self, codes: &SparseCodes) -> Result<Tensor<2>> {
        affine::decode_affine(self.policy, &self.params, codes, false, self.io.denormalize)
    }

    fn train_forward(&self, batch: &TrainBatch, ctx: &TrainContext) -> Result<TrainOutput> {
        let codes = self.encode(batch.x.clone())?;
        let acts = codes.to_dense();
        let output = affine::add_skip(&self.params, batch.x.clone(), self.decode(&codes)?);
        let mse = affine::mse_loss(output.clone(), batch.target(&self.cfg)?);
        let weighted = match self.hyper.decoder_norm {
            DecoderNormSchool::Weighted => acts * kernels::row_norms(self.params.matrix("W_dec")?).unsqueeze_dim(0),
            DecoderNormSchool::Unit => acts,
        };
        let p = self.hyper.lp_norm;
        let sparsity = if p == 1.0 {
            weighted.abs().sum_dim(1)
        } else {
            weighted.abs().powf_scalar(p).sum_dim(1).powf_scalar(1.0 / p)
        };
        let l1 = sparsity.mean().mul_scalar(self.hyper.l1_coefficient * ctx.sparsity_scale);
        let terms = vec![
            LossTerm::new(loss_terms::MSE, mse),
            LossTerm::new(loss_terms::L1, l1),
        ];
        Ok(TrainOutput::from_terms(terms, codes, output))
    }

    fn project_gradients(&self, grads: &mut ParamSet) -> Result<()> {
        if self.hyper.decoder_norm == DecoderNormSchool::Unit {
            affine::project_decoder_gradient(self.policy, &self.params, grads)?;
        }
        Ok(())
    }

    fn after_step(&mut self, _out: &TrainOutput) -> Result<()> {
        if self.hyper.decoder_norm == DecoderNormSchool::Unit {
            affine::normalize_decoder_rows(self.policy, &mut self.params)?;
        }
        Ok(())
    }
}

/// The `standard` architecture (aliases `relu`, `relu_l1`).
#[derive(Debug, Clone, Copy, Default)]
pub struct StandardArch;

impl TypedArchitecture for StandardArch {
    type Hyper = StandardHyper;
    fn name(&self) -> &'static str {
        sae_core::registry::names::STANDARD
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["relu", "relu_l1"]
    }
    fn describe(&self) -> &'static str {
        "ReLU encoder with an L1 sparsity penalty (decoder-norm weighted, or unit-norm decoder)"
    }
    fn check(&self, cfg: &SaeConfig, hyper: &StandardHyper, origin: &Path) -> Result<Schema> {
        Standard::check(cfg, hyper, origin)
    }
    fn build_with(&self, cfg: SaeConfig, hyper: StandardHyper, params: ParamSet) -> Result<Box<dyn Sae>> {
        let io = AffineIo::autoencoder(&cfg);
        Ok(Box::new(Standard::new(cfg, hyper, params, io)))
    }
    fn init_params(&self, cfg: &SaeConfig, hyper: &StandardHyper, device: &Device, seed: u64) -> Result<ParamSet> {
        Standard::init_params(cfg, hyper, device, seed)
    }
}
