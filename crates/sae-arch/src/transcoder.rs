//! Transcoders (Dunefsky et al. 2024; SAELens `transcoder`, `skip_transcoder`,
//! `jumprelu_transcoder`, `jumprelu_skip_transcoder`): an SAE that reads activations at one hook
//! point (`d_in`) and predicts another (`d_out`), `ŷ = W_decᵀ f(W_encᵀx + b_enc) + b_dec
//! [+ W_skip x]`. The input is never centred by `b_dec` (it lives in the output space) and the
//! output is not de-normalised. The encoders are the ReLU and JumpReLU ones; TopK transcoders
//! are `topk` SAEs with `d_out` and `apply_b_dec_to_input = false` (sparsify's `transcode`).

use std::path::Path;

use burn::tensor::Device;
use sae_core::{Architecture, ParamSet, Result, Sae, SaeConfig};

use crate::affine::AffineIo;
use crate::jumprelu::JumpRelu;
use crate::standard::Standard;

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

impl Architecture for TranscoderArch {
    fn name(&self) -> &'static str {
        if self.skip { "skip_transcoder" } else { "transcoder" }
    }
    fn describe(&self) -> &'static str {
        if self.skip { "ReLU transcoder with a linear skip connection W_skip" } else { "ReLU transcoder (input and output at different hook points)" }
    }
    fn schema(&self, cfg: &SaeConfig, origin: &Path) -> Result<Vec<(String, Vec<usize>)>> {
        Standard::schema(&with_skip(cfg.clone(), self.skip), origin)
    }
    fn build(&self, cfg: SaeConfig, params: ParamSet) -> Result<Box<dyn Sae>> {
        Ok(Box::new(Standard::new(with_skip(cfg, self.skip), params, AffineIo::transcoder())?))
    }
    fn init(&self, cfg: SaeConfig, device: &Device, seed: u64) -> Result<Box<dyn Sae>> {
        let cfg = with_skip(cfg, self.skip);
        let params = Standard::init_params(&cfg, device, seed)?;
        self.build(cfg, params)
    }
}

/// JumpReLU transcoders (`jumprelu_transcoder`, `jumprelu_skip_transcoder`).
#[derive(Debug, Clone, Copy)]
pub struct JumpReluTranscoderArch {
    /// Whether this is the skip variant.
    pub skip: bool,
}

impl Architecture for JumpReluTranscoderArch {
    fn name(&self) -> &'static str {
        if self.skip { "jumprelu_skip_transcoder" } else { "jumprelu_transcoder" }
    }
    fn describe(&self) -> &'static str {
        if self.skip { "JumpReLU transcoder with a linear skip connection W_skip" } else { "JumpReLU transcoder" }
    }
    fn schema(&self, cfg: &SaeConfig, origin: &Path) -> Result<Vec<(String, Vec<usize>)>> {
        JumpRelu::schema(&with_skip(cfg.clone(), self.skip), origin)
    }
    fn build(&self, cfg: SaeConfig, params: ParamSet) -> Result<Box<dyn Sae>> {
        Ok(Box::new(JumpRelu::new(with_skip(cfg, self.skip), params, AffineIo::transcoder())?))
    }
    fn init(&self, cfg: SaeConfig, device: &Device, seed: u64) -> Result<Box<dyn Sae>> {
        let cfg = with_skip(cfg, self.skip);
        let params = JumpRelu::init_params(&cfg, device, seed)?;
        self.build(cfg, params)
    }
}
