//! Gated SAE (Rajamanoharan et al. 2024; SAELens `gated`). With `x̃ = x − b_dec`:
//! gate `π = W_encᵀx̃ + b_gate`, magnitude `m = (W_enc ⊙ exp(r_mag))ᵀx̃ + b_mag`,
//! `f = H(π) · ReLU(m)` (the two paths share `W_enc`). Training loss:
//! `‖x − x̂‖² + λ Σ ReLU(π)·‖W_dec‖_row + ‖x − (W_decᵀ ReLU(π) + b_dec)‖²`, where the last (aux)
//! term goes through a frozen copy of the decoder, as in the paper (`gated_aux_frozen_decoder`,
//! default true; false reproduces SAELens, whose aux term also trains the decoder).

use std::path::Path;

use burn::tensor::{Device, Tensor};
use sae_kernels as kernels;
use serde::{Deserialize, Serialize};
use crate::affine::{self, AffineIo};
use sae_core::config::ensure;
use sae_core::params::ParamTensor;
use sae_core::{KernelPolicy, LossTerm, ParamSet, Result, Sae, SaeConfig, Schema, SparseCodes, TypedArchitecture, TrainBatch, TrainContext, TrainOutput, loss_terms, sae_state_accessors};

fn one() -> f32 {
    1.0
}
fn yes() -> bool {
    true
}

/// Hyperparameters.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatedHyper {
    /// λ.
    #[serde(default = "one")]
    pub l1_coefficient: f32,
    /// Route the aux reconstruction through a frozen decoder (the paper's formulation).
    #[serde(default = "yes")]
    pub gated_aux_frozen_decoder: bool,
    /// Initial decoder row norm (SAELens `decoder_init_norm`, default 0.1; `null` in JSON keeps
    /// the Kaiming rows).
    #[serde(default = "crate::affine::default_decoder_init_norm")]
    pub decoder_init_norm: Option<f32>,
}

/// A Gated SAE.
#[derive(Debug, Clone)]
pub struct Gated {
    cfg: SaeConfig,
    hyper: GatedHyper,
    params: ParamSet,
    io: AffineIo,
    policy: KernelPolicy,
}

impl Gated {
    fn paths(&self, x: Tensor<2>) -> Result<(Tensor<2>, Tensor<2>, Option<sae_core::RowNorm>)> {
        let (xc, norm) = affine::prepare_input(&self.cfg, &self.params, x, self.io.center)?;
        let w_enc = self.params.matrix("W_enc")?;
        let gate = kernels::matmul(self.policy, xc.clone(), w_enc.clone())? + self.params.vector("b_gate")?.unsqueeze_dim(0);
        let w_mag = w_enc * self.params.vector("r_mag")?.exp().unsqueeze_dim(0);
        let mag = kernels::matmul(self.policy, xc, w_mag)? + self.params.vector("b_mag")?.unsqueeze_dim(0);
        Ok((gate, mag, norm))
    }
}

impl Sae for Gated {
    sae_state_accessors!(policy);

    fn encode(&self, x: Tensor<2>) -> Result<SparseCodes> {
        sae_core::sae::check_width(&x, self.cfg.d_in, "input")?;
        let (gate, mag, norm) = self.paths(x)?;
        let active = gate.greater_elem(0.0).float().detach();
        Ok(SparseCodes::dense(active * mag.clamp_min(0.0)).with_row_norm(norm))
    }

    fn decode(&self, codes: &SparseCodes) -> Result<Tensor<2>> {
        affine::decode_affine(self.policy, &self.params, codes, false, self.io.denormalize)
    }

    fn train_forward(&self, batch: &TrainBatch, ctx: &TrainContext) -> Result<TrainOutput> {
        sae_core::sae::check_width(&batch.x, self.cfg.d_in, "input")?;
        let (gate, mag, norm) = self.paths(batch.x.clone())?;
        let active = gate.clone().greater_elem(0.0).float().detach();
        let codes = SparseCodes::dense(active * mag.clamp_min(0.0)).with_row_norm(norm);
        let output = self.decode(&codes)?;
        let target = batch.target(&self.cfg)?;
        let mse = affine::mse_loss(output.clone(), target.clone());
        let gate_act = gate.clamp_min(0.0);
        let w_dec = self.params.matrix("W_dec")?;
        let l1 = (gate_act.clone() * kernels::row_norms(w_dec.clone()).unsqueeze_dim(0))
            .sum_dim(1)
            .mean()
            .mul_scalar(self.hyper.l1_coefficient * ctx.sparsity_scale);
        let (aux_w, aux_b) = if self.hyper.gated_aux_frozen_decoder {
            (w_dec.detach(), self.params.vector("b_dec")?.detach())
        } else {
            (w_dec, self.params.vector("b_dec")?)
        };
        let via_gate = kernels::matmul(self.policy, gate_act, aux_w)? + aux_b.unsqueeze_dim(0);
        let aux = affine::mse_loss(via_gate, target);
        let terms = vec![
            LossTerm::new(loss_terms::MSE, mse),
            LossTerm::new(loss_terms::L1, l1),
            LossTerm::new(loss_terms::AUX, aux),
        ];
        Ok(TrainOutput::from_terms(terms, codes, output))
    }
}

/// The `gated` architecture.
#[derive(Debug, Clone, Copy, Default)]
pub struct GatedArch;

impl TypedArchitecture for GatedArch {
    type Hyper = GatedHyper;
    fn name(&self) -> &'static str {
        "gated"
    }
    fn describe(&self) -> &'static str {
        "Gated: a gate path decides which latents fire, a magnitude path (shared W_enc, r_mag) how strongly"
    }
    fn check(&self, cfg: &SaeConfig, h: &GatedHyper, origin: &Path) -> Result<Schema> {
        ensure(h.l1_coefficient >= 0.0, origin, "l1_coefficient", || format!("must be ≥ 0, got {}", h.l1_coefficient))?;
        let (d_in, d_sae, d_out) = (cfg.d_in, cfg.d_sae, cfg.d_out());
        Ok(vec![
            ("W_enc".into(), vec![d_in, d_sae]),
            ("b_gate".into(), vec![d_sae]),
            ("r_mag".into(), vec![d_sae]),
            ("b_mag".into(), vec![d_sae]),
            ("W_dec".into(), vec![d_sae, d_out]),
            ("b_dec".into(), vec![d_out]),
        ])
    }
    fn build_with(&self, cfg: SaeConfig, hyper: GatedHyper, params: ParamSet) -> Result<Box<dyn Sae>> {
        let io = AffineIo::autoencoder(&cfg);
        Ok(Box::new(Gated { cfg, hyper, params, io, policy: KernelPolicy::default() }))
    }
    fn init_params(&self, cfg: &SaeConfig, h: &GatedHyper, device: &Device, seed: u64) -> Result<ParamSet> {
        let mut p = affine::init_tied(cfg, device, seed, h.decoder_init_norm, false)?;
        let b_enc = p.remove("b_enc");
        let zeros = || ParamTensor::Vector(Tensor::zeros([cfg.d_sae], device));
        let mut ordered = ParamSet::new();
        for (name, t) in p.iter() {
            ordered.insert(name, t.clone());
            if name == "W_enc" {
                ordered.insert("b_gate", b_enc.clone().unwrap_or_else(zeros));
                ordered.insert("r_mag", zeros());
                ordered.insert("b_mag", zeros());
            }
        }
        Ok(ordered)
    }
}
