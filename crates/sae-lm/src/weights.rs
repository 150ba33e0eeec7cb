//! Named f32 weights read from a file once, taken out by name with their shape checked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::SaeError;
use sae_core::format::safetensors_io::{HostTensor, read_float_tensors};

use crate::error::Result;

/// The tensors of one weights file, by name.
#[derive(Debug)]
pub struct Weights {
    path: PathBuf,
    model: &'static str,
    tensors: HashMap<String, HostTensor>,
}

impl Weights {
    /// Reads every floating-point tensor of the safetensors file at `path` as f32 (integer
    /// buffers are skipped; a truncated or corrupt file is a [`SaeError::CorruptFile`]).
    pub fn safetensors(path: &Path, model: &'static str) -> Result<Self> {
        let tensors = read_float_tensors(path)?.into_iter().map(|t| (t.name.clone(), t)).collect();
        Ok(Self { path: path.to_path_buf(), model, tensors })
    }

    fn host(&mut self, name: &str, shape: &[usize]) -> Result<HostTensor> {
        let t = self.tensors.remove(name).ok_or_else(|| SaeError::MissingTensor {
            path: self.path.clone(),
            name: name.into(),
            architecture: self.model.into(),
        })?;
        if t.shape != shape {
            return Err(SaeError::ShapeMismatch { path: self.path.clone(), name: name.into(), actual: t.shape, expected: shape.to_vec() }.into());
        }
        Ok(t)
    }

    /// The tensor `name`, which must have shape `[rows, cols]`.
    pub fn matrix(&mut self, name: &str, rows: usize, cols: usize, device: &Device) -> Result<Tensor<2>> {
        let t = self.host(name, &[rows, cols])?;
        Ok(Tensor::from_data(TensorData::new(t.values, [rows, cols]), device))
    }

    /// The tensor `name`, which must have shape `[len]`.
    pub fn vector(&mut self, name: &str, len: usize, device: &Device) -> Result<Tensor<1>> {
        let t = self.host(name, &[len])?;
        Ok(Tensor::from_data(TensorData::new(t.values, [len]), device))
    }
}
