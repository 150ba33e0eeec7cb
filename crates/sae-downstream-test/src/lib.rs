//! # sae-downstream-test
//!
//! What a downstream crate adds with one trait implementation each, and then uses like the
//! built-in ones:
//! - an SAE architecture defined outside `sae-arch` ([`SoftplusArch`]: a registry line, then
//!   save, load and encode);
//! - a model defined outside the model crates ([`model::TinyPatchNet`], a
//!   [`HookedModel`](sae_core::HookedModel) over images: harvested, trained on and intervened
//!   on through the generic code of `sae-hooked` and `sae-train`).
//!
//! [`SoftplusSae`] encodes with `f = softplus(W_encᵀ(x − b_dec) + b_enc) − log 2` clipped at 0
//! and decodes linearly; it has one hyperparameter, `beta`.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use sae_core::SaeConfig;
//!
//! let mut registry = sae_core::Registry::new();
//! registry.register(sae_downstream_test::SoftplusArch);
//! let sae = registry.init(SaeConfig::new("softplus", 4, 8).with("beta", 2.0), &Device::flex(), 1).unwrap();
//! let out = sae.forward(Tensor::<2>::ones([2, 4], &Device::flex())).unwrap();
//! assert_eq!(out.output.dims(), [2, 4]);
//! ```

pub mod model;

use std::path::Path;

use burn::tensor::{Device, Tensor};
use sae_arch::affine::{self, AffineIo};
use sae_core::config::ensure;
use sae_core::{KernelPolicy, Schema, TypedArchitecture, LossTerm, ParamSet, Result, Sae, SaeConfig, SparseCodes, TrainBatch, TrainContext, TrainOutput, loss_terms, sae_state_accessors};
use serde::Deserialize;

fn one() -> f32 {
    1.0
}

/// Hyperparameters of [`SoftplusSae`].
#[derive(Debug, Clone, Deserialize)]
pub struct SoftplusHyper {
    /// Sharpness of the softplus.
    #[serde(default = "one")]
    pub beta: f32,
}

/// A shifted-softplus SAE, defined entirely in this crate.
#[derive(Debug, Clone)]
pub struct SoftplusSae {
    cfg: SaeConfig,
    hyper: SoftplusHyper,
    params: ParamSet,
    policy: KernelPolicy,
}

impl Sae for SoftplusSae {
    sae_state_accessors!(policy);

    fn encode(&self, x: Tensor<2>) -> Result<SparseCodes> {
        sae_core::sae::check_width(&x, self.cfg.d_in, "input")?;
        let io = AffineIo::autoencoder(&self.cfg);
        let (xc, norm) = affine::prepare_input(&self.cfg, &self.params, x, io.center)?;
        let pre = xc.matmul(self.params.matrix("W_enc")?) + self.params.vector("b_enc")?.unsqueeze_dim(0);
        let b = self.hyper.beta;
        let acts = pre.mul_scalar(b).exp().add_scalar(1.0).log().div_scalar(b).sub_scalar(std::f32::consts::LN_2 / b).clamp_min(0.0);
        Ok(SparseCodes::dense(acts).with_row_norm(norm))
    }

    fn decode(&self, codes: &SparseCodes) -> Result<Tensor<2>> {
        affine::decode_affine(self.policy, &self.params, codes, false, true)
    }

    fn train_forward(&self, batch: &TrainBatch, _ctx: &TrainContext) -> Result<TrainOutput> {
        let codes = self.encode(batch.x.clone())?;
        let output = self.decode(&codes)?;
        let mse = affine::mse_loss(output.clone(), batch.target(&self.cfg)?);
        Ok(TrainOutput::from_terms(vec![LossTerm::new(loss_terms::MSE, mse)], codes, output))
    }
}

/// The `softplus` architecture.
#[derive(Debug, Clone, Copy, Default)]
pub struct SoftplusArch;

impl TypedArchitecture for SoftplusArch {
    type Hyper = SoftplusHyper;
    fn name(&self) -> &'static str {
        "softplus"
    }
    fn describe(&self) -> &'static str {
        "shifted softplus encoder (downstream example)"
    }
    fn check(&self, cfg: &SaeConfig, h: &SoftplusHyper, origin: &Path) -> Result<Schema> {
        ensure(h.beta > 0.0, origin, "beta", || format!("must be > 0, got {}", h.beta))?;
        Ok(affine::affine_schema(cfg, false))
    }
    fn build_with(&self, cfg: SaeConfig, hyper: SoftplusHyper, params: ParamSet) -> Result<Box<dyn Sae>> {
        Ok(Box::new(SoftplusSae { cfg, hyper, params, policy: KernelPolicy::default() }))
    }
    fn init_params(&self, cfg: &SaeConfig, _hyper: &SoftplusHyper, device: &Device, seed: u64) -> Result<ParamSet> {
        affine::init_tied(cfg, device, seed, None, false)
    }
}
