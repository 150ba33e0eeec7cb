//! Downstream loss with an SAE spliced into a causal model: next-token cross-entropy of the
//! clean model, with the SAE's reconstruction in place of the activation at a hook, and with the
//! activation zero-ablated; the KL divergence of the last two from the clean run; and the
//! fraction of the loss recovered, `(CE_zero − CE_sae) / (CE_zero − CE_clean)` (SAELens's
//! `ce_loss_score`).

use std::path::PathBuf;

use sae_core::Sae;
use sae_core::hooks::NoHooks;
use serde::Serialize;

use crate::error::{LmError, Result};
use crate::generate::next_token_loss;
use sae_hooked::intervene::{Intervention, Splice};
use crate::model::LanguageModel;

/// The downstream-loss metrics of one SAE at one hook.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DownstreamReport {
    /// Hook point.
    pub hook: String,
    /// Windows evaluated.
    pub windows: usize,
    /// Predicted tokens (`windows · (context − 1)`).
    pub tokens: usize,
    /// Mean next-token cross-entropy of the clean model (nats).
    pub ce_clean: f64,
    /// … with the SAE's reconstruction spliced in at the hook.
    pub ce_sae: f64,
    /// … with the activation at the hook set to zero.
    pub ce_zero: f64,
    /// Mean `KL(clean ‖ spliced)` per token.
    pub kl_sae: f64,
    /// Mean `KL(clean ‖ zero-ablated)` per token.
    pub kl_zero: f64,
    /// `(CE_zero − CE_sae) / (CE_zero − CE_clean)`: 1 when splicing costs nothing, 0 when it is
    /// as bad as deleting the activation.
    pub ce_recovered: f64,
}

/// `n` windows of `context` tokens (each framed as the model frames one input) from the corpus
/// read last file first, so that a harvest, which reads it first file first, has not seen them
/// unless it used almost all of it.
pub fn eval_windows(model: &dyn LanguageModel, corpus: &[(PathBuf, String)], context: usize, n: usize) -> Result<Vec<Vec<u32>>> {
    let (prefix, suffix) = model.frame_lengths();
    if context <= prefix + suffix + 1 || context > model.max_positions() {
        return Err(LmError::Input(format!("context {context} must leave at least 2 text tokens and fit the model's {} positions", model.max_positions())));
    }
    let body = context - prefix - suffix;
    let mut windows = Vec::with_capacity(n);
    for (_, text) in corpus.iter().rev() {
        let ids = model.tokenizer().encode(text, false)?;
        for w in ids.chunks_exact(body) {
            if windows.len() == n {
                return Ok(windows);
            }
            windows.push(model.frame(w));
        }
    }
    if windows.is_empty() {
        return Err(LmError::Input(format!("the corpus has no window of {body} tokens")));
    }
    Ok(windows)
}

/// Runs `windows` through `model` clean, with `sae` spliced in at `hook`, and with `hook`
/// zero-ablated, `batch` windows per forward pass; `progress(done, total)` after each batch.
pub fn downstream_loss(model: &dyn LanguageModel, sae: &dyn Sae, hook: &str, windows: &[Vec<u32>], batch: usize, mut progress: impl FnMut(usize, usize)) -> Result<DownstreamReport> {
    model.check_hook(hook)?;
    if windows.is_empty() || batch == 0 {
        return Err(LmError::Input("no windows to evaluate".into()));
    }
    if model.hook_width(hook) != Some(sae.config().d_in) {
        let width = model.hook_width(hook).map_or("no fixed width".to_string(), |w| format!("width {w}"));
        return Err(LmError::Input(format!("the SAE takes d_in {} but {hook} has {width}", sae.config().d_in)));
    }
    let (mut clean, mut spliced, mut zero, mut kl_sae, mut kl_zero, mut tokens) = (0f64, 0f64, 0f64, 0f64, 0f64, 0usize);
    for (i, chunk) in windows.chunks(batch).enumerate() {
        let c = next_token_loss(model, chunk, &mut NoHooks)?;
        let s = next_token_loss(model, chunk, &mut Intervention::at(hook).with_sae(sae).splice(Splice::Reconstruction))?;
        let z = next_token_loss(model, chunk, &mut Intervention::at(hook).splice(Splice::Zero))?;
        let n = c.nll.len();
        clean += c.mean_nll() * n as f64;
        spliced += s.mean_nll() * n as f64;
        zero += z.mean_nll() * n as f64;
        kl_sae += s.kl_from(&c)? * n as f64;
        kl_zero += z.kl_from(&c)? * n as f64;
        tokens += n;
        progress((i * batch + chunk.len()).min(windows.len()), windows.len());
    }
    let t = tokens as f64;
    let (ce_clean, ce_sae, ce_zero) = (clean / t, spliced / t, zero / t);
    require_finite(&[("clean", ce_clean), ("SAE-spliced", ce_sae), ("zero-ablated", ce_zero), ("SAE-spliced KL", kl_sae), ("zero-ablated KL", kl_zero)])?;
    Ok(DownstreamReport {
        hook: hook.into(),
        windows: windows.len(),
        tokens,
        ce_clean,
        ce_sae,
        ce_zero,
        kl_sae: kl_sae / t,
        kl_zero: kl_zero / t,
        ce_recovered: (ce_zero - ce_sae) / (ce_zero - ce_clean),
    })
}

/// A loss that is NaN or infinite is a model that overflowed, not a measurement: an error naming
/// the run, never a `null` in the report.
fn require_finite(losses: &[(&str, f64)]) -> Result<()> {
    match losses.iter().find(|(_, v)| !v.is_finite()) {
        None => Ok(()),
        Some((run, v)) => Err(LmError::Input(format!(
            "the {run} forward gives a non-finite next-token loss ({v}): its logits overflowed (an LN-free model whose frozen norms cannot hold the first position's massive activations does this)"
        ))),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_non_finite_loss_is_an_error_naming_the_run() {
        assert!(super::require_finite(&[("clean", 5.0), ("zero-ablated", 10.0)]).is_ok());
        let err = super::require_finite(&[("clean", f64::NAN), ("zero-ablated", 10.0)]).unwrap_err().to_string();
        assert!(err.contains("clean forward") && err.contains("NaN"), "{err}");
        assert!(super::require_finite(&[("clean", 5.0), ("SAE-spliced KL", f64::INFINITY)]).is_err());
    }
}
