//! Reading and writing safetensors files of f32/f16/bf16 tensors (computation is always f32).

use std::collections::HashMap;
use std::path::Path;

use half::{bf16, f16};
use safetensors::{Dtype, SafeTensors, tensor::TensorView};

use super::atomic::{read_file, write_atomic};
use crate::error::{Result, SaeError};

/// Storage dtype of weights on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreDtype {
    /// 32-bit float.
    F32,
    /// IEEE half.
    F16,
    /// bfloat16.
    BF16,
}

impl StoreDtype {
    /// Parses SAELens/PyTorch spellings (`float32`, `torch.float16`, `bfloat16`, `bf16`, ...).
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().trim_start_matches("torch.").to_ascii_lowercase().as_str() {
            "float32" | "float" | "f32" | "fp32" => Some(Self::F32),
            "float16" | "half" | "f16" | "fp16" => Some(Self::F16),
            "bfloat16" | "bf16" => Some(Self::BF16),
            _ => None,
        }
    }

    /// The SAELens spelling.
    pub fn name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::F16 => "float16",
            Self::BF16 => "bfloat16",
        }
    }

    fn from_safetensors(d: Dtype) -> Option<Self> {
        match d {
            Dtype::F32 => Some(Self::F32),
            Dtype::F16 => Some(Self::F16),
            Dtype::BF16 => Some(Self::BF16),
            _ => None,
        }
    }
}

/// One tensor read from a file, converted to f32.
#[derive(Debug, Clone)]
pub struct HostTensor {
    /// Name in the file.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Values, row-major.
    pub values: Vec<f32>,
    /// Dtype on disk (`F64` files are read as f32 and reported as F32).
    pub dtype: StoreDtype,
}

/// Reads every tensor of a safetensors file as f32, in file order; a tensor of any other dtype
/// is an [`SaeError::UnsupportedDtype`].
pub fn read_safetensors(path: &Path) -> Result<Vec<HostTensor>> {
    read_tensors(path, false)
}

/// Reads the floating-point tensors of a safetensors file as f32, in file order, and skips the
/// others (integer buffers such as a model's `position_ids`, which are not weights).
pub fn read_float_tensors(path: &Path) -> Result<Vec<HostTensor>> {
    read_tensors(path, true)
}

fn read_tensors(path: &Path, skip_non_float: bool) -> Result<Vec<HostTensor>> {
    let bytes = read_file(path)?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| SaeError::corrupt(path, "safetensors", e.to_string()))?;
    let mut out = Vec::new();
    // Keep file order (by data offset) so that iteration is deterministic.
    let mut tensors: Vec<(String, TensorView<'_>)> = st.tensors();
    tensors.sort_by_key(|(_, v)| v.data().as_ptr() as usize);
    for (name, view) in tensors {
        if skip_non_float && !matches!(view.dtype(), Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64) {
            continue;
        }
        let (values, dtype) = decode(view.dtype(), view.data()).ok_or_else(|| SaeError::UnsupportedDtype {
            path: path.to_path_buf(),
            name: name.clone(),
            dtype: format!("{:?}", view.dtype()),
            supported: "F32, F16, BF16, F64",
        })?;
        out.push(HostTensor { name, shape: view.shape().to_vec(), values, dtype });
    }
    Ok(out)
}

fn decode(dtype: Dtype, data: &[u8]) -> Option<(Vec<f32>, StoreDtype)> {
    let v = match dtype {
        Dtype::F32 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        Dtype::F16 => data.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::BF16 => data.chunks_exact(2).map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
        Dtype::F64 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        _ => return None,
    };
    Some((v, StoreDtype::from_safetensors(dtype).unwrap_or(StoreDtype::F32)))
}

fn encode(values: &[f32], dtype: StoreDtype) -> Vec<u8> {
    match dtype {
        StoreDtype::F32 => values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        StoreDtype::F16 => values.iter().flat_map(|v| f16::from_f32(*v).to_le_bytes()).collect(),
        StoreDtype::BF16 => values.iter().flat_map(|v| bf16::from_f32(*v).to_le_bytes()).collect(),
    }
}

/// Writes tensors `(name, shape, values)` to a safetensors file atomically, stored as `dtype`.
pub fn write_safetensors(
    path: &Path,
    tensors: &[(String, Vec<usize>, Vec<f32>)],
    dtype: StoreDtype,
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let st_dtype = match dtype {
        StoreDtype::F32 => Dtype::F32,
        StoreDtype::F16 => Dtype::F16,
        StoreDtype::BF16 => Dtype::BF16,
    };
    let encoded: Vec<(String, Vec<usize>, Vec<u8>)> =
        tensors.iter().map(|(n, s, v)| (n.clone(), s.clone(), encode(v, dtype))).collect();
    let views = encoded
        .iter()
        .map(|(n, s, b)| {
            TensorView::new(st_dtype, s.clone(), b)
                .map(|v| (n.clone(), v))
                .map_err(|e| SaeError::Unsupported(format!("tensor `{n}`: {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    let bytes = safetensors::serialize(views, metadata).map_err(|e| SaeError::Unsupported(format!("serialising {}: {e}", path.display())))?;
    write_atomic(path, &bytes)
}
