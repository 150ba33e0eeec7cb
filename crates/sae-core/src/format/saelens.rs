//! SAELens directories: `cfg.json` + `sae_weights.safetensors`.
//!
//! Tensor names and shapes: `W_enc [d_in, d_sae]`, `b_enc [d_sae]`, `W_dec [d_sae, d_out]`,
//! `b_dec [d_out]`, plus `threshold` (JumpReLU), `b_gate`, `r_mag`, `b_mag` (Gated) and `W_skip
//! [d_out, d_in]` (skip transcoders). Configs from before SAELens 6 are upgraded as SAELens
//! does; `log_threshold` is read as `threshold = exp(log_threshold)`, and a pre-6
//! `scaling_factor` is folded into `W_dec`.

use std::path::Path;

use burn::tensor::Device;
use serde_json::Value;

use super::atomic::{read_file, write_atomic};
use super::safetensors_io::{StoreDtype, read_safetensors, write_safetensors};
use super::{Format, LoadedSae, params_from_host, params_to_host};
use crate::config::SaeConfig;
use crate::error::{Result, SaeError};
use crate::registry::{Registry, names};
use crate::sae::Sae;

/// Config file name.
pub const CFG_FILE: &str = "cfg.json";
/// Weights file name.
pub const WEIGHTS_FILE: &str = "sae_weights.safetensors";

/// Reads and upgrades `cfg.json`.
pub fn read_config(dir: &Path) -> Result<SaeConfig> {
    let path = dir.join(CFG_FILE);
    let text = String::from_utf8(read_file(&path)?).map_err(|_| SaeError::config(&path, "-", "not UTF-8 text"))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| SaeError::config(&path, "-", format!("not valid JSON: {e}")))?;
    SaeConfig::from_json_value(upgrade_pre_v6(value), &path)
}

/// SAELens's pre-6.0 defaulting: a missing `architecture` means `standard`, or `topk` when
/// `activation_fn_str` is `topk` with a `k`; `hook_point` becomes `hook_name`.
fn upgrade_pre_v6(value: Value) -> Value {
    let Value::Object(mut map) = value else { return value };
    if map.contains_key("architecture") {
        return Value::Object(map);
    }
    if let Some(v) = map.remove("hook_point") {
        map.entry("hook_name").or_insert(v);
    }
    let act = map.get("activation_fn_str").or_else(|| map.get("activation_fn")).and_then(Value::as_str).map(str::to_string);
    let k = map.get("activation_fn_kwargs").and_then(|kw| kw.get("k")).cloned();
    match (act.as_deref(), k) {
        (Some("topk"), Some(k)) if !k.is_null() => {
            map.insert("architecture".into(), names::TOPK.into());
            map.insert("k".into(), k);
        }
        _ => {
            map.insert("architecture".into(), names::STANDARD.into());
        }
    }
    map.entry("apply_b_dec_to_input").or_insert(Value::Bool(true));
    Value::Object(map)
}

/// Loads a SAELens directory.
pub fn load(dir: &Path, registry: &Registry, device: &Device) -> Result<LoadedSae> {
    let cfg = read_config(dir)?;
    let weights = dir.join(WEIGHTS_FILE);
    let tensors = read_safetensors(&weights)?;
    let stored_dtype = tensors.first().map(|t| t.dtype).unwrap_or(StoreDtype::F32);
    let mut notes = Vec::new();
    if tensors.iter().any(|t| t.dtype != stored_dtype) {
        notes.push("tensors are stored in mixed dtypes; all are computed in f32".into());
    }
    if cfg.dtype != stored_dtype.name() {
        notes.push(format!("cfg.json says dtype `{}` but the weights are stored as {}", cfg.dtype, stored_dtype.name()));
    }
    let mut host: Vec<(String, Vec<usize>, Vec<f32>)> = Vec::new();
    let mut scaling_factor: Option<Vec<f32>> = None;
    for t in tensors {
        match t.name.as_str() {
            "log_threshold" => {
                notes.push("`log_threshold` read as threshold = exp(log_threshold)".into());
                host.push(("threshold".into(), t.shape, t.values.iter().map(|v| v.exp()).collect()));
            }
            "scaling_factor" => scaling_factor = Some(t.values),
            _ => host.push((t.name, t.shape, t.values)),
        }
    }
    if let Some(scale) = scaling_factor {
        if let Some((_, shape, w)) = host.iter_mut().find(|(n, _, _)| n == "W_dec")
            && shape.len() == 2
            && shape[0] == scale.len()
        {
            // A W_dec without columns has nothing to scale (its shape is then the schema's to
            // refuse); `chunks_mut(0)` would panic.
            let cols = shape[1];
            if cols > 0 {
                for (row, s) in w.chunks_mut(cols).zip(&scale) {
                    row.iter_mut().for_each(|v| *v *= s);
                }
            }
            notes.push("pre-6 `scaling_factor` folded into W_dec".into());
        } else {
            return Err(SaeError::ShapeMismatch {
                path: weights.clone(),
                name: "scaling_factor".into(),
                actual: vec![scale.len()],
                expected: vec![cfg.d_sae],
            });
        }
    }
    if cfg.normalize_activations == crate::config::Normalization::ExpectedAverageOnlyIn {
        notes.push("normalize_activations `expected_average_only_in` is the identity at inference (as in SAELens): the scaling is assumed folded".into());
    }
    if cfg.extra.get("reshape_activations").and_then(Value::as_str).is_some_and(|s| s != "none") {
        notes.push("reshape_activations (hook_z) is ignored: inputs must already be flattened to d_in".into());
    }
    let params = params_from_host(host, device, &weights)?;
    let sae = registry.build_from_files(cfg, params, &dir.join(CFG_FILE), &weights)?;
    Ok(LoadedSae { sae, format: Format::SaeLens, stored_dtype, notes })
}

/// Saves an SAE as a SAELens directory (inference form), weights first, then `cfg.json`.
pub fn save(sae: &dyn Sae, dir: &Path, dtype: StoreDtype) -> Result<()> {
    let (mut cfg, params) = sae.inference_export()?;
    cfg.dtype = dtype.name().to_string();
    write_safetensors(&dir.join(WEIGHTS_FILE), &params_to_host(&params)?, dtype, None)?;
    let text = serde_json::to_string_pretty(&cfg.to_json_value()).map_err(|e| SaeError::Unsupported(e.to_string()))?;
    write_atomic(&dir.join(CFG_FILE), text.as_bytes())
}
