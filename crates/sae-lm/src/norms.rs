//! An LN-free forward: measure the average scale each norm computes over some inputs, then
//! freeze every norm to that constant ([`crate::layers::NormScale::Frozen`]), so the model
//! becomes linear in the residual stream between its nonlinearities (the setting of the
//! LayerNorm-removal experiments).

use std::collections::BTreeMap;

use sae_core::hooks::{HookTensor, Hooks};

use crate::error::{LmError, Result};
use crate::layers::{Norm, NormScale};
use crate::model::LanguageModel;

/// Sums the values seen at every `*.hook_scale` point.
struct ScaleMeans(BTreeMap<String, (f64, usize)>);

impl Hooks for ScaleMeans {
    fn wants(&self, name: &str) -> bool {
        name.ends_with(".hook_scale")
    }
    fn at(&mut self, name: &str, x: HookTensor) -> sae_core::Result<HookTensor> {
        let values = x.flat_rows().into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| sae_core::SaeError::Config { path: "<hook>".into(), field: name.into(), reason: format!("{e:?}") })?;
        let e = self.0.entry(name.trim_end_matches(".hook_scale").to_string()).or_insert((0.0, 0));
        e.0 += values.iter().map(|&v| v as f64).sum::<f64>();
        e.1 += values.len();
        Ok(x)
    }
}

/// The mean scale of every norm over the tokens of `batches` (each a batch of equal-length
/// sequences), by norm prefix (`blocks.3.ln1`, `ln_final`, ...).
pub fn measure_scales(model: &dyn LanguageModel, batches: &[Vec<u32>]) -> Result<BTreeMap<String, f32>> {
    let mut means = ScaleMeans(BTreeMap::new());
    for seq in batches {
        model.forward(std::slice::from_ref(seq), &mut means)?;
    }
    Ok(means.0.into_iter().map(|(k, (s, n))| (k, (s / n.max(1) as f64) as f32)).collect())
}

/// Freezes each norm of `norms` to its entry in `scales`; every norm must have one.
pub fn freeze_scales(norms: Vec<(String, &mut Norm)>, scales: &BTreeMap<String, f32>) -> Result<()> {
    let missing: Vec<&str> = norms.iter().filter(|(n, _)| !scales.contains_key(n)).map(|(n, _)| n.as_str()).collect();
    if !missing.is_empty() {
        return Err(LmError::Input(format!("no frozen scale for the norms {}", missing.join(", "))));
    }
    for (name, norm) in norms {
        let s = scales[&name];
        if !(s.is_finite() && s > 0.0) {
            return Err(LmError::Input(format!("frozen scale {s} of {name} is not a positive number")));
        }
        norm.scale = NormScale::Frozen(s);
    }
    Ok(())
}

/// Measures every norm's mean scale over `windows` and freezes `model`'s norms to them: the
/// LN-free forward of the LayerNorm-interference comparison. Returns the scales, to be recorded
/// with what the frozen model produces (a store's source) and applied again to evaluate it.
pub fn freeze_on(model: &mut dyn LanguageModel, windows: &[Vec<u32>]) -> Result<BTreeMap<String, f32>> {
    if windows.is_empty() {
        return Err(LmError::Input("no window to measure the norm scales on".into()));
    }
    let scales = measure_scales(model, windows)?;
    freeze_scales(model.norms_mut(), &scales)?;
    Ok(scales)
}
