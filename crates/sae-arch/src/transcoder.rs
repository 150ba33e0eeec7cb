//! Transcoders (Dunefsky et al. 2024; SAELens `transcoder`, `skip_transcoder`,
//! `jumprelu_transcoder`, `jumprelu_skip_transcoder`): an SAE that reads activations at one hook
//! point (`d_in`) and predicts another (`d_out`), `ŷ = W_decᵀ f(W_encᵀx + b_enc) + b_dec
//! [+ W_skip x]`. The input is never centred by `b_dec` (it lives in the output space) and the
//! output is not de-normalised. The encoders are the ReLU and JumpReLU ones; TopK transcoders
//! are `topk` SAEs with `d_out` and `apply_b_dec_to_input = false` (sparsify's `transcode`).

use std::path::Path;

use burn::tensor::Device;
use sae_core::{ParamSet, Result, Sae, SaeConfig, Schema, TypedArchitecture};

use crate::affine::AffineIo;
use crate::jumprelu::{JumpRelu, JumpReluHyper};
use crate::standard::{Standard, StandardHyper};

fn with_skip(mut cfg: SaeConfig, skip: bool) -> SaeConfig {
    cfg.extra.insert("skip_connection".into(), skip.into());
    cfg.apply_b_dec_to_input = false;
    cfg
}

/// ReLU transcoders (`transcoder`, and `skip_transcoder` with `W_skip`).
#[derive(Debug, Clone, Copy)]
pub struct TranscoderArch {
    /// Whether this is the skip variant.
    pub skip: bool,
}

impl TypedArchitecture for TranscoderArch {
    type Hyper = StandardHyper;
    fn name(&self) -> &'static str {
        if self.skip { "skip_transcoder" } else { "transcoder" }
    }
    fn describe(&self) -> &'static str {
        if self.skip { "ReLU transcoder with a linear skip connection W_skip" } else { "ReLU transcoder (input and output at different hook points)" }
    }
    fn hyper(&self, cfg: &SaeConfig, origin: &Path) -> Result<StandardHyper> {
        with_skip(cfg.clone(), self.skip).hyper(origin)
    }
    fn check(&self, cfg: &SaeConfig, hyper: &StandardHyper, origin: &Path) -> Result<Schema> {
        Standard::check(cfg, hyper, origin)
    }
    fn build_with(&self, cfg: SaeConfig, hyper: StandardHyper, params: ParamSet) -> Result<Box<dyn Sae>> {
        Ok(Box::new(Standard::new(with_skip(cfg, self.skip), hyper, params, AffineIo::transcoder())))
    }
    fn init_params(&self, cfg: &SaeConfig, hyper: &StandardHyper, device: &Device, seed: u64) -> Result<ParamSet> {
        Standard::init_params(cfg, hyper, device, seed)
    }
}

/// JumpReLU transcoders (`jumprelu_transcoder`, `jumprelu_skip_transcoder`).
#[derive(Debug, Clone, Copy)]
pub struct JumpReluTranscoderArch {
    /// Whether this is the skip variant.
    pub skip: bool,
}

impl TypedArchitecture for JumpReluTranscoderArch {
    type Hyper = JumpReluHyper;
    fn name(&self) -> &'static str {
        if self.skip { "jumprelu_skip_transcoder" } else { "jumprelu_transcoder" }
    }
    fn describe(&self) -> &'static str {
        if self.skip { "JumpReLU transcoder with a linear skip connection W_skip" } else { "JumpReLU transcoder" }
    }
    fn hyper(&self, cfg: &SaeConfig, origin: &Path) -> Result<JumpReluHyper> {
        with_skip(cfg.clone(), self.skip).hyper(origin)
    }
    fn check(&self, cfg: &SaeConfig, hyper: &JumpReluHyper, origin: &Path) -> Result<Schema> {
        JumpRelu::check(cfg, hyper, origin)
    }
    fn build_with(&self, cfg: SaeConfig, hyper: JumpReluHyper, params: ParamSet) -> Result<Box<dyn Sae>> {
        Ok(Box::new(JumpRelu::new(with_skip(cfg, self.skip), hyper, params, AffineIo::transcoder())))
    }
    fn init_params(&self, cfg: &SaeConfig, hyper: &JumpReluHyper, device: &Device, seed: u64) -> Result<ParamSet> {
        JumpRelu::init_params(cfg, hyper, device, seed)
    }
}
