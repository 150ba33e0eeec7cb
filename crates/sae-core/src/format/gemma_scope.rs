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

/// Members up to this size are read whatever their compression (zeros compress a thousandfold).
const RATIO_FREE_BYTES: u64 = 16 << 20;
/// The largest expansion accepted from a bigger member: trained float weights compress barely
/// (about 1.1×); deflate's ceiling is about 1 030×.
const MAX_EXPANSION: u64 = 64;

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
        // A small archive whose member inflates to gigabytes (a zip bomb) is refused before it
        // is inflated: the member's declared size must be what a float tensor compresses to,
        // and no more than it declares is ever read.
        let (size, packed) = (file.size(), file.compressed_size());
        if size > RATIO_FREE_BYTES && size / packed.max(1) > MAX_EXPANSION {
            return Err(SaeError::corrupt(&path, "npz", format!("member {member} declares {size} bytes from {packed} compressed (over {MAX_EXPANSION}×: not float weights)")));
        }
        let mut buf = Vec::new();
        (&mut file).take(size.saturating_add(1)).read_to_end(&mut buf).map_err(|e| SaeError::corrupt(&path, "npz", format!("member {member}: {e}")))?;
        if buf.len() as u64 > size {
            return Err(SaeError::corrupt(&path, "npz", format!("member {member} inflates past its declared {size} bytes")));
        }
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

#[cfg(test)]
mod tests {
    use std::io::Write;

    use burn::tensor::Device;

    use super::{PARAMS_FILE, load};
    use crate::format::npy::npy_bytes;

    #[test]
    fn a_member_that_inflates_a_thousandfold_is_refused_before_it_is_inflated() {
        let dir = tempfile::tempdir().unwrap();
        let mut zip = zip::ZipWriter::new(std::fs::File::create(dir.path().join(PARAMS_FILE)).unwrap());
        let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        // 32 MiB of zeros deflate to about 32 KiB.
        zip.start_file("W_enc.npy", deflated).unwrap();
        zip.write_all(&npy_bytes(&[4096, 2048], &vec![0.0; 4096 * 2048])).unwrap();
        zip.finish().unwrap();
        let err = load(dir.path(), &crate::Registry::new(), &Device::flex()).err().expect("a zip bomb must not load").to_string();
        assert!(err.contains("W_enc.npy") && err.contains("compressed"), "{err}");
    }
}
