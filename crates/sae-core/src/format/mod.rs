//! File formats: SAELens and sparsify directories (read and write), Gemma Scope `params.npz`
//! (read), plus `.npy` arrays and atomic writes. [`load_sae`] detects the format of a directory.

pub mod atomic;
pub mod gemma_scope;
pub mod lock;
pub mod npy;
pub mod saelens;
pub mod safetensors_io;
pub mod sparsify;

use std::path::Path;

use burn::tensor::Device;

use crate::error::{Result, SaeError};
use crate::params::{ParamSet, ParamTensor};
use crate::registry::Registry;
use crate::sae::Sae;
pub use safetensors_io::StoreDtype;

/// A directory format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// SAELens: `cfg.json` + `sae_weights.safetensors`.
    SaeLens,
    /// EleutherAI sparsify: `cfg.json` + `sae.safetensors`.
    Sparsify,
    /// Gemma Scope: `params.npz` (read only).
    GemmaScope,
}

impl Format {
    /// Parses `saelens`, `sparsify` or `gemma-scope`.
    pub fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().replace(['_', '-'], "").as_str() {
            "saelens" => Some(Self::SaeLens),
            "sparsify" => Some(Self::Sparsify),
            "gemmascope" => Some(Self::GemmaScope),
            _ => None,
        }
    }

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::SaeLens => "saelens",
            Self::Sparsify => "sparsify",
            Self::GemmaScope => "gemma-scope",
        }
    }
}

/// An SAE loaded from disk, with what was learnt about the files.
#[derive(Debug)]
pub struct LoadedSae {
    /// The SAE, parameters on the requested device (as f32).
    pub sae: Box<dyn Sae>,
    /// The format the directory was in.
    pub format: Format,
    /// The dtype the weights were stored in.
    pub stored_dtype: StoreDtype,
    /// Anything unusual noticed while loading, in words (for `sae info`).
    pub notes: Vec<String>,
}

/// Detects the format of an SAE directory from the files in it.
pub fn detect(dir: &Path) -> Result<Format> {
    if !dir.is_dir() {
        return Err(SaeError::UnknownFormat { path: dir.to_path_buf(), reason: "not a directory".into() });
    }
    let has = |f: &str| dir.join(f).is_file();
    if has(saelens::WEIGHTS_FILE) {
        Ok(Format::SaeLens)
    } else if has(sparsify::WEIGHTS_FILE) {
        Ok(Format::Sparsify)
    } else if has(gemma_scope::PARAMS_FILE) {
        Ok(Format::GemmaScope)
    } else {
        Err(SaeError::UnknownFormat {
            path: dir.to_path_buf(),
            reason: format!(
                "expected `{}` (SAELens), `{}` (sparsify) or `{}` (Gemma Scope)",
                saelens::WEIGHTS_FILE,
                sparsify::WEIGHTS_FILE,
                gemma_scope::PARAMS_FILE
            ),
        })
    }
}

/// Loads an SAE directory of any supported format onto `device`.
pub fn load_sae(dir: &Path, registry: &Registry, device: &Device) -> Result<LoadedSae> {
    match detect(dir)? {
        Format::SaeLens => saelens::load(dir, registry, device),
        Format::Sparsify => sparsify::load(dir, registry, device),
        Format::GemmaScope => gemma_scope::load(dir, registry, device),
    }
}

/// Saves an SAE in `format` with weights stored as `dtype` (files written atomically).
pub fn save_sae(sae: &dyn Sae, dir: &Path, format: Format, dtype: StoreDtype) -> Result<()> {
    match format {
        Format::SaeLens => saelens::save(sae, dir, dtype),
        Format::Sparsify => sparsify::save(sae, dir, dtype),
        Format::GemmaScope => Err(SaeError::Unsupported("Gemma Scope `params.npz` is a read-only format here; save as saelens".into())),
    }
}

/// Moves host tensors into a [`ParamSet`] on `device`.
pub(crate) fn params_from_host(tensors: Vec<(String, Vec<usize>, Vec<f32>)>, device: &Device, origin: &Path) -> Result<ParamSet> {
    let mut params = ParamSet::new();
    for (name, mut shape, values) in tensors {
        if shape.is_empty() {
            // 0-d tensors (SAELens buffers such as `topk_threshold`) are stored as `[1]`.
            shape = vec![1];
        }
        // NaN or infinite weights would encode every input to NaN codes without a word.
        crate::validate::check_finite(&values, shape.last().copied().unwrap_or(1).max(1), &format!("{} tensor `{name}`", origin.display()))?;
        let t = ParamTensor::from_host(values, &shape, device).map_err(|_| SaeError::ShapeMismatch {
            path: origin.to_path_buf(),
            name: name.clone(),
            actual: shape.clone(),
            expected: vec![],
        })?;
        params.insert(name, t);
    }
    Ok(params)
}

/// Copies a [`ParamSet`] to host `(name, shape, values)` triples.
pub(crate) fn params_to_host(params: &ParamSet) -> Result<Vec<(String, Vec<usize>, Vec<f32>)>> {
    params.iter().map(|(n, t)| Ok((n.to_string(), t.shape(), t.to_vec()?))).collect()
}

/// Transposes a row-major `[rows, cols]` matrix.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}
