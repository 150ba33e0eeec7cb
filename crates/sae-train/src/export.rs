//! Turning the training form into the saved form: normalisation folded into the weights.

use burn::tensor::Tensor;
use sae_core::{ParamSet, ParamTensor, Sae, SaeConfig, TrainBatch, TrainContext};

/// Folds an input scale `s` (the model saw `s·x`) into the weights so that the SAE takes raw
/// `x`: `W_enc ← s·W_enc`, `b_dec ← b_dec/s`, `W_dec ← W_dec/s`. Pre-activations, codes and
/// thresholds are unchanged; outputs come back in the raw scale.
pub fn fold_scale(params: &mut ParamSet, s: f32) {
    if s == 1.0 {
        return;
    }
    let scaled = std::mem::take(params).map(|name, t| match (name, t) {
        ("W_enc", ParamTensor::Matrix(w)) => ParamTensor::Matrix(w.mul_scalar(s)),
        ("W_dec", ParamTensor::Matrix(w)) => ParamTensor::Matrix(w.div_scalar(s)),
        ("b_dec", ParamTensor::Vector(b)) => ParamTensor::Vector(b.div_scalar(s)),
        (_, t) => t,
    });
    *params = scaled;
}

/// An exported config and parameters, saved through the [`Sae`] interface.
#[derive(Debug)]
pub(crate) struct ExportedSae {
    pub(crate) cfg: SaeConfig,
    pub(crate) params: ParamSet,
}

impl Sae for ExportedSae {
    fn config(&self) -> &SaeConfig {
        &self.cfg
    }
    fn params(&self) -> &ParamSet {
        &self.params
    }
    fn params_mut(&mut self) -> &mut ParamSet {
        &mut self.params
    }
    fn encode(&self, _x: Tensor<2>) -> sae_core::Result<sae_core::SparseCodes> {
        Err(sae_core::SaeError::Unsupported("an export holder only saves".into()))
    }
    fn decode(&self, _codes: &sae_core::SparseCodes) -> sae_core::Result<Tensor<2>> {
        Err(sae_core::SaeError::Unsupported("an export holder only saves".into()))
    }
    fn train_forward(&self, _b: &TrainBatch, _c: &TrainContext) -> sae_core::Result<sae_core::TrainOutput> {
        Err(sae_core::SaeError::Unsupported("an export holder only saves".into()))
    }
    fn inference_export(&self) -> sae_core::Result<(SaeConfig, ParamSet)> {
        Ok((self.cfg.clone(), self.params.clone()))
    }
}

