//! What is unusual about an SAE, in words (for `sae info` and bug reports): decoder rows that are
//! not unit-norm or are zero, JumpReLU thresholds at or below zero, an input that is not centred,
//! run-time normalisation, and what its [`Architecture`] says about itself
//! ([`Architecture::notes`]).

use sae_core::params::{ParamTensor, host_f32};
use sae_core::{Architecture, Normalization, Result, Sae};

/// The notes on `sae`, built by `arch` (its registered architecture, when known).
pub fn diagnostics(sae: &dyn Sae, arch: Option<&dyn Architecture>) -> Result<Vec<String>> {
    let cfg = sae.config();
    let mut notes = Vec::new();
    if let Some(ParamTensor::Matrix(w)) = sae.params().get("W_dec") {
        let norms = host_f32(sae_kernels::row_norms(w.clone()).into_data())?;
        let (lo, hi) = norms.iter().fold((f32::INFINITY, 0f32), |(a, b), v| (a.min(*v), b.max(*v)));
        let mean = norms.iter().sum::<f32>() / norms.len().max(1) as f32;
        if (hi - lo) > 1e-3 || (mean - 1.0).abs() > 1e-3 {
            notes.push(format!("decoder rows are not unit-norm (norms {lo:.4}..{hi:.4}, mean {mean:.4})"));
        }
        let dead_rows = norms.iter().filter(|n| **n < 1e-6).count();
        if dead_rows > 0 {
            notes.push(format!("{dead_rows} decoder row(s) are zero"));
        }
    }
    if let Some(ParamTensor::Vector(t)) = sae.params().get("threshold") {
        let th = host_f32(t.clone().into_data())?;
        let zero = th.iter().filter(|v| **v <= 0.0).count();
        if zero > 0 {
            notes.push(format!("{zero} JumpReLU threshold(s) are ≤ 0 (those latents act as plain ReLU)"));
        }
    }
    if !cfg.apply_b_dec_to_input && cfg.d_out() == cfg.d_in {
        notes.push("the input is not centred by b_dec before encoding (apply_b_dec_to_input = false)".into());
    }
    if cfg.normalize_activations.is_runtime() {
        notes.push(format!("inputs are normalised per row at run time ({:?}) and outputs un-normalised", cfg.normalize_activations));
    }
    if cfg.normalize_activations == Normalization::CovarianceWhitening {
        notes.push("covariance_whitening is the identity at inference: the whitening is assumed folded".into());
    }
    if let Some(arch) = arch {
        // A tensor the architecture does not read (a JumpReLU `threshold` in a directory
        // labelled `standard`) is ignored by encoding: most likely the label is wrong.
        if let Ok(schema) = arch.schema(cfg, std::path::Path::new("<config>")) {
            for (name, _) in sae.params().iter() {
                if !schema.iter().any(|(n, _)| n == name) {
                    notes.push(format!("tensor `{name}` is not read by architecture `{}` and is ignored (is the architecture right?)", arch.name()));
                }
            }
        }
        notes.extend(arch.notes(cfg));
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use burn::tensor::Device;
    use sae_core::SaeConfig;

    #[test]
    fn a_tensor_the_architecture_does_not_read_is_flagged() {
        use sae_core::params::ParamTensor;
        let registry = crate::registry();
        let jump = registry.init(SaeConfig::new("jumprelu", 4, 8), &Device::flex(), 1).unwrap();
        let mut params = jump.params().clone();
        assert!(matches!(params.get("threshold"), Some(ParamTensor::Vector(_))));
        params.remove("W_skip");
        let mislabelled = registry.build(SaeConfig::new("standard", 4, 8), params, std::path::Path::new("<test>")).unwrap();
        let notes = super::diagnostics(mislabelled.as_ref(), registry.get("standard")).unwrap();
        assert!(notes.iter().any(|n| n.contains("`threshold` is not read by architecture `standard`")), "{notes:?}");
    }

    #[test]
    fn a_fresh_batchtopk_is_flagged_as_a_training_form_with_short_decoder_rows() {
        let registry = crate::registry();
        let sae = registry.init(SaeConfig::new("batchtopk", 6, 12).with("k", 2.0), &Device::flex(), 3).unwrap();
        let notes = super::diagnostics(sae.as_ref(), registry.get("batchtopk")).unwrap();
        assert!(notes.iter().any(|n| n.starts_with("training form")), "{notes:?}");
        assert!(notes.iter().any(|n| n.contains("not unit-norm")), "rows start at norm 0.1: {notes:?}");
        let topk = registry.init(SaeConfig::new("topk", 6, 12).with("k", 2).with("normalize_decoder", true), &Device::flex(), 3).unwrap();
        assert!(super::diagnostics(topk.as_ref(), registry.get("topk")).unwrap().is_empty());
    }
}
