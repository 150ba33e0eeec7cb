//! Gemma Scope `params.npz`: a JumpReLU SAE with `W_enc [d_in, d_sae]`, `W_dec [d_sae, d_in]`,
//! `b_enc`, `b_dec`, `threshold`. Its encoder does not centre the input by `b_dec`.

use std::io::Read;
use std::path::Path;

use burn::tensor::Device;

use super::atomic::read_file;
use super::npy::parse_npy;
use super::safetensors_io::StoreDtype;
use super::{Format, LoadedSae, params_from_host};
use crate::config::SaeConfig;
use crate::error::{Result, SaeError};
use crate::registry::{Registry, names};

/// Parameters file name.
pub const PARAMS_FILE: &str = "params.npz";

const NAMES: [&str; 5] = ["W_enc", "W_dec", "b_enc", "b_dec", "threshold"];

/// Loads a Gemma Scope directory as a `jumprelu` SAE.
pub fn load(dir: &Path, registry: &Registry, device: &Device) -> Result<LoadedSae> {
    let path = dir.join(PARAMS_FILE);
    let bytes = read_file(&path)?;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).map_err(|e| SaeError::corrupt(&path, "npz", e.to_string()))?;
    let mut host = Vec::new();
    for name in NAMES {
        let member = format!("{name}.npy");
        let mut file = archive.by_name(&member).map_err(|_| SaeError::MissingTensor {
            path: path.clone(),
            name: name.to_string(),
            architecture: names::JUMPRELU.into(),
        })?;
        let mut buf = Vec::new();
        file.read_to_end(&mut buf).map_err(|e| SaeError::corrupt(&path, "npz", format!("member {member}: {e}")))?;
        let arr = parse_npy(&buf, &path.join(&member))?;
        host.push((name.to_string(), arr.shape, arr.values));
    }
    let w_enc_shape = &host[0].1;
    let [d_in, d_sae] = match w_enc_shape.as_slice() {
        [a, b] => [*a, *b],
        _ => {
            return Err(SaeError::ShapeMismatch { path, name: "W_enc".into(), actual: w_enc_shape.clone(), expected: vec![0, 0] });
        }
    };
    let mut cfg = SaeConfig::new(names::JUMPRELU, d_in, d_sae);
    cfg.apply_b_dec_to_input = false;
    let params = params_from_host(host, device, &path)?;
    let sae = registry.build(cfg, params, &path)?;
    Ok(LoadedSae {
        sae,
        format: Format::GemmaScope,
        stored_dtype: StoreDtype::F32,
        notes: vec!["Gemma Scope JumpReLU: the input is not centred by b_dec".into()],
    })
}
