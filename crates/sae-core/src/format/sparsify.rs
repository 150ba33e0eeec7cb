//! EleutherAI sparsify directories: `cfg.json` + `sae.safetensors`.
//!
//! Tensors: `encoder.weight [d_sae, d_in]`, `encoder.bias [d_sae]`, `W_dec [d_sae, d_in]`,
//! `b_dec [d_in]`, optional `W_skip [d_in, d_in]`. A sparsify coder is a TopK (or groupmax) SAE
//! whose input is centred by `b_dec` unless it transcodes; it loads as our `topk` architecture.

use std::path::Path;

use burn::tensor::Device;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::atomic::{read_file, write_atomic};
use super::safetensors_io::{StoreDtype, read_safetensors, write_safetensors};
use super::{Format, LoadedSae, params_from_host, params_to_host, transpose};
use crate::config::{Normalization, SaeConfig};
use crate::error::{Result, SaeError};
use crate::registry::{Registry, names};
use crate::sae::Sae;

/// Config file name.
pub const CFG_FILE: &str = "cfg.json";
/// Weights file name.
pub const WEIGHTS_FILE: &str = "sae.safetensors";

fn default_activation() -> String {
    "topk".into()
}
fn default_expansion() -> usize {
    32
}
fn default_k() -> usize {
    32
}
fn default_true() -> bool {
    true
}

/// sparsify's `SparseCoderConfig` plus `d_in`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SparsifyConfig {
    /// `topk` or `groupmax`.
    #[serde(default = "default_activation")]
    pub activation: String,
    /// d_sae = d_in × expansion_factor when `num_latents` is 0.
    #[serde(default = "default_expansion")]
    pub expansion_factor: usize,
    /// Whether the decoder rows are kept at unit norm during training.
    #[serde(default = "default_true")]
    pub normalize_decoder: bool,
    /// Number of latents (0: use the expansion factor).
    #[serde(default)]
    pub num_latents: usize,
    /// Active latents per row.
    #[serde(default = "default_k")]
    pub k: usize,
    /// Multi-TopK training loss.
    #[serde(default)]
    pub multi_topk: bool,
    /// Linear skip connection.
    #[serde(default)]
    pub skip_connection: bool,
    /// Transcoder (input not centred by `b_dec`).
    #[serde(default)]
    pub transcode: bool,
    /// Input width.
    pub d_in: usize,
}

/// Loads a sparsify directory as a `topk` SAE.
pub fn load(dir: &Path, registry: &Registry, device: &Device) -> Result<LoadedSae> {
    let cfg_path = dir.join(CFG_FILE);
    let text = String::from_utf8(read_file(&cfg_path)?).map_err(|_| SaeError::config(&cfg_path, "-", "not UTF-8 text"))?;
    let value: Value = serde_json::from_str(&text).map_err(|e| SaeError::config(&cfg_path, "-", format!("not valid JSON: {e}")))?;
    if value.get("d_in").and_then(Value::as_u64).is_none_or(|d| d == 0) {
        return Err(SaeError::config(&cfg_path, "d_in", "missing or not a positive integer"));
    }
    let sc: SparsifyConfig = serde_json::from_value(value).map_err(|e| {
        let msg = e.to_string();
        let field = ["activation", "expansion_factor", "num_latents", "k", "multi_topk", "skip_connection", "transcode"]
            .into_iter()
            .find(|f| msg.contains(&format!("`{f}`")))
            .unwrap_or("-");
        SaeError::config(&cfg_path, field, msg)
    })?;
    let d_sae = if sc.num_latents > 0 {
        sc.num_latents
    } else {
        sc.d_in.checked_mul(sc.expansion_factor).ok_or_else(|| SaeError::config(&cfg_path, "expansion_factor", format!("d_in {} × expansion_factor {} overflows", sc.d_in, sc.expansion_factor)))?
    };
    if d_sae == 0 {
        return Err(SaeError::config(&cfg_path, "num_latents", "the coder has no latents"));
    }
    let mut cfg = SaeConfig::new(names::TOPK, sc.d_in, d_sae);
    cfg.apply_b_dec_to_input = !sc.transcode;
    cfg = cfg
        .with("k", sc.k)
        .with("activation", sc.activation.clone())
        .with("skip_connection", sc.skip_connection)
        .with("multi_topk", sc.multi_topk)
        .with("normalize_decoder", sc.normalize_decoder)
        .with("transcode", sc.transcode);

    let weights = dir.join(WEIGHTS_FILE);
    let tensors = read_safetensors(&weights)?;
    let stored_dtype = tensors.first().map(|t| t.dtype).unwrap_or(StoreDtype::F32);
    cfg.dtype = stored_dtype.name().to_string();
    for required in ["encoder.weight", "encoder.bias", "W_dec", "b_dec"] {
        if !tensors.iter().any(|t| t.name == required) {
            return Err(SaeError::MissingTensor { path: weights.clone(), name: required.into(), architecture: "sparsify".into() });
        }
    }
    let mut host = Vec::new();
    for t in tensors {
        match t.name.as_str() {
            "encoder.weight" => {
                if t.shape.len() != 2 {
                    return Err(SaeError::ShapeMismatch { path: weights.clone(), name: t.name, actual: t.shape, expected: vec![d_sae, sc.d_in] });
                }
                let (r, c) = (t.shape[0], t.shape[1]);
                host.push(("W_enc".to_string(), vec![c, r], transpose(&t.values, r, c)));
            }
            "encoder.bias" => host.push(("b_enc".to_string(), t.shape, t.values)),
            _ => host.push((t.name, t.shape, t.values)),
        }
    }
    let mut notes = vec![format!("sparsify coder loaded as `topk` (activation {})", sc.activation)];
    if sc.transcode {
        notes.push("transcoder: the input is not centred by b_dec".into());
    }
    let params = params_from_host(host, device, &weights)?;
    let sae = registry.build_from_files(cfg, params, &cfg_path, &weights)?;
    Ok(LoadedSae { sae, format: Format::Sparsify, stored_dtype, notes })
}

#[derive(Deserialize, Default)]
struct TopKView {
    #[serde(default)]
    k: Option<usize>,
    #[serde(default)]
    activation: Option<String>,
    #[serde(default)]
    multi_topk: bool,
    #[serde(default)]
    rescale_acts_by_decoder_norm: bool,
}

/// Saves a TopK-family SAE as a sparsify directory. Other architectures cannot be expressed in
/// sparsify's format and give [`SaeError::Unsupported`].
pub fn save(sae: &dyn Sae, dir: &Path, dtype: StoreDtype) -> Result<()> {
    let (cfg, params) = sae.inference_export()?;
    let origin = Path::new("<sae>");
    let view: TopKView = cfg.hyper(origin)?;
    let k = match (cfg.architecture.as_str(), view.k) {
        (arch, Some(k)) if arch == names::TOPK => k,
        (arch, _) => {
            return Err(SaeError::Unsupported(format!(
                "sparsify's format holds TopK coders only; this SAE is `{arch}` (save it as saelens)"
            )));
        }
    };
    if view.rescale_acts_by_decoder_norm {
        return Err(SaeError::Unsupported("rescale_acts_by_decoder_norm must be folded before saving as sparsify".into()));
    }
    if cfg.normalize_activations.is_runtime() || cfg.normalize_activations == Normalization::CovarianceWhitening {
        return Err(SaeError::Unsupported(format!(
            "sparsify has no input normalisation; this SAE uses {:?}",
            cfg.normalize_activations
        )));
    }
    if cfg.d_out() != cfg.d_in {
        return Err(SaeError::Unsupported("sparsify transcoders must have d_out = d_in".into()));
    }
    let sc = SparsifyConfig {
        activation: view.activation.unwrap_or_else(default_activation),
        expansion_factor: if cfg.d_sae % cfg.d_in == 0 { cfg.d_sae / cfg.d_in } else { default_expansion() },
        normalize_decoder: true,
        num_latents: cfg.d_sae,
        k,
        multi_topk: view.multi_topk,
        skip_connection: params.contains("W_skip"),
        transcode: !cfg.apply_b_dec_to_input,
        d_in: cfg.d_in,
    };
    let mut out = Vec::new();
    for (name, shape, values) in params_to_host(&params)? {
        match name.as_str() {
            "W_enc" => out.push(("encoder.weight".to_string(), vec![shape[1], shape[0]], transpose(&values, shape[0], shape[1]))),
            "b_enc" => out.push(("encoder.bias".to_string(), shape, values)),
            "W_dec" | "b_dec" | "W_skip" => out.push((name, shape, values)),
            other => return Err(SaeError::Unsupported(format!("parameter `{other}` has no place in sparsify's format"))),
        }
    }
    write_safetensors(&dir.join(WEIGHTS_FILE), &out, dtype, None)?;
    let text = serde_json::to_string_pretty(&sc).map_err(|e| SaeError::Unsupported(e.to_string()))?;
    write_atomic(&dir.join(CFG_FILE), text.as_bytes())
}
