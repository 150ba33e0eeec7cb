//! Matching Pursuit SAE (SAELens `matching_pursuit`; Costa et al. 2025): the encoder is the
//! transposed decoder, applied greedily. Starting from `r = x − b_dec`, each iteration picks
//! `j = argmax ReLU(r · W_dec[j])`, sets `a = ReLU(r · W_dec[j])`, adds `a` to latent `j` and
//! updates `r ← r − a·W_dec[j]`. A row stops when its support stops changing
//! (`stop_on_duplicate_support`), when `‖r‖ < residual_threshold`, or after `max_iterations`
//! (default `d_in`). Selection is not differentiated; gradients reach `W_dec` through the
//! selected atoms and the residual updates. With unit-norm atoms `‖r‖` never grows.

use std::path::Path;

use burn::tensor::{Bool, Device, IndexingUpdateOp, Tensor};
use sae_kernels as kernels;
use serde::{Deserialize, Serialize};
use crate::affine::{self, AffineIo};
use sae_core::config::ensure;
use sae_core::params::ParamTensor;
use sae_core::{KernelPolicy, LossTerm, ParamSet, Result, Sae, SaeConfig, Schema, SparseCodes, TypedArchitecture, TrainBatch, TrainContext, TrainOutput, loss_terms, sae_state_accessors};

fn threshold() -> f32 {
    1e-2
}
fn yes() -> bool {
    true
}

/// The most iterations per latent a config may ask for. Every iteration costs a `[rows, d_sae]`
/// product and a host round trip; past a few per latent the residual has long stopped moving,
/// and a huge `max_iterations` without another stopping rule would run for days on one batch.
pub const MAX_ITERATIONS_PER_LATENT: usize = 4;

/// Hyperparameters (SAELens key names).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MatchingPursuitHyper {
    /// Stop a row once its residual norm is below this (0 disables).
    #[serde(default = "threshold")]
    pub residual_threshold: f32,
    /// Iteration cap (default `d_in`).
    #[serde(default)]
    pub max_iterations: Option<usize>,
    /// Stop a row when an iteration leaves its support unchanged.
    #[serde(default = "yes")]
    pub stop_on_duplicate_support: bool,
}

/// A Matching Pursuit SAE.
#[derive(Debug, Clone)]
pub struct MatchingPursuit {
    cfg: SaeConfig,
    hyper: MatchingPursuitHyper,
    params: ParamSet,
    io: AffineIo,
    policy: KernelPolicy,
}

/// Greedy matching pursuit of `x` `[n, d]` over the rows of `w_dec` `[m, d]` → codes `[n, m]`.
pub fn matching_pursuit(x: Tensor<2>, w_dec: Tensor<2>, hyper: &MatchingPursuitHyper) -> Tensor<2> {
    let [n, d] = x.dims();
    let m = w_dec.dims()[0];
    let device = x.device();
    let max_it = hyper.max_iterations.unwrap_or(d);
    let mut residual = x;
    let mut acts = Tensor::<2>::zeros([n, m], &device);
    let mut prev_support: Tensor<2, Bool> = Tensor::<2>::zeros([n, m], &device).greater_elem(0.0);
    let mut done: Tensor<2, Bool> = Tensor::<2>::zeros([n, 1], &device).greater_elem(0.0);
    for _ in 0..max_it {
        let scores = residual.clone().detach().matmul(w_dec.clone().detach().transpose()).clamp_min(0.0);
        let idx = scores.argmax(1);
        let selected = w_dec.clone().select(0, idx.clone().reshape([n]));
        let values = (residual.clone() * selected.clone()).sum_dim(1).clamp_min(0.0);
        let masked = values * done.clone().bool_not().float();
        // No row moved: every later iteration would select the same atoms with the same zero
        // amounts, so stop (exactly the result of running them).
        if !masked.clone().detach().greater_elem(0.0).any().into_scalar::<bool>() {
            break;
        }
        acts = acts.scatter(1, idx, masked.clone(), IndexingUpdateOp::Add);
        residual = residual - masked * selected;
        if hyper.stop_on_duplicate_support || hyper.residual_threshold > 0.0 {
            let support = acts.clone().detach().not_equal_elem(0.0);
            if hyper.stop_on_duplicate_support {
                done = done.bool_or(support.clone().equal(prev_support).all_dim(1));
                prev_support = support;
            }
            if hyper.residual_threshold > 0.0 {
                let norm = residual.clone().detach().powi_scalar(2).sum_dim(1).sqrt();
                done = done.bool_or(norm.lower_elem(hyper.residual_threshold));
            }
            if done.clone().all().into_scalar::<bool>() {
                break;
            }
        }
    }
    acts
}

impl Sae for MatchingPursuit {
    sae_state_accessors!(policy);

    fn encode(&self, x: Tensor<2>) -> Result<SparseCodes> {
        sae_core::sae::check_width(&x, self.cfg.d_in, "input")?;
        let (xc, norm) = affine::prepare_input(&self.cfg, &self.params, x, self.io.center)?;
        Ok(SparseCodes::dense(matching_pursuit(xc, self.params.matrix("W_dec")?, &self.hyper)).with_row_norm(norm))
    }

    fn decode(&self, codes: &SparseCodes) -> Result<Tensor<2>> {
        let mut y = kernels::decode_codes(self.policy, codes, self.params.matrix("W_dec")?)?;
        if self.cfg.apply_b_dec_to_input {
            y = y + self.params.vector("b_dec")?.unsqueeze_dim(0);
        }
        Ok(affine::finish_output(y, &codes.row_norm))
    }

    fn train_forward(&self, batch: &TrainBatch, _ctx: &TrainContext) -> Result<TrainOutput> {
        let codes = self.encode(batch.x.clone())?;
        let output = self.decode(&codes)?;
        let mse = affine::mse_loss(output.clone(), batch.target(&self.cfg)?);
        Ok(TrainOutput::from_terms(vec![LossTerm::new(loss_terms::MSE, mse)], codes, output))
    }
}

/// The `matching_pursuit` architecture (alias `mp`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MatchingPursuitArch;

impl TypedArchitecture for MatchingPursuitArch {
    type Hyper = MatchingPursuitHyper;
    fn name(&self) -> &'static str {
        "matching_pursuit"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["mp"]
    }
    fn describe(&self) -> &'static str {
        "Matching Pursuit: greedy residual selection over the decoder atoms (no separate encoder)"
    }
    fn check(&self, cfg: &SaeConfig, h: &MatchingPursuitHyper, origin: &Path) -> Result<Schema> {
        ensure(h.residual_threshold >= 0.0, origin, "residual_threshold", || format!("must be ≥ 0, got {}", h.residual_threshold))?;
        ensure(h.max_iterations != Some(0), origin, "max_iterations", || "must be ≥ 1".into())?;
        let cap = MAX_ITERATIONS_PER_LATENT.saturating_mul(cfg.d_sae.max(cfg.d_in));
        ensure(h.max_iterations.is_none_or(|m| m <= cap), origin, "max_iterations", || {
            format!("must be at most {cap} ({MAX_ITERATIONS_PER_LATENT} × max(d_sae, d_in)): each iteration is a [rows, d_sae] product per batch")
        })?;
        ensure(cfg.d_out() == cfg.d_in, origin, "d_out", || "matching pursuit reconstructs its input: d_out must equal d_in".into())?;
        Ok(vec![("W_dec".into(), vec![cfg.d_sae, cfg.d_in]), ("b_dec".into(), vec![cfg.d_in])])
    }
    fn build_with(&self, cfg: SaeConfig, hyper: MatchingPursuitHyper, params: ParamSet) -> Result<Box<dyn Sae>> {
        let io = AffineIo::autoencoder(&cfg);
        Ok(Box::new(MatchingPursuit { cfg, hyper, params, io, policy: KernelPolicy::default() }))
    }
    fn init_params(&self, cfg: &SaeConfig, _hyper: &MatchingPursuitHyper, device: &Device, seed: u64) -> Result<ParamSet> {
        let p = affine::init_tied(cfg, device, seed, Some(1.0), false)?;
        let mut params = ParamSet::new();
        for name in ["W_dec", "b_dec"] {
            if let Some(t) = p.get(name) {
                params.insert(name, t.clone());
            }
        }
        debug_assert!(matches!(params.get("W_dec"), Some(ParamTensor::Matrix(_))));
        Ok(params)
    }
}
