//! Named parameter tensors of an SAE.
//!
//! Parameters are kept by the names the SAELens format uses (`W_enc`, `b_enc`, `W_dec`, `b_dec`,
//! `threshold`, `b_gate`, `r_mag`, `b_mag`, `W_skip`), so saving, loading, optimisers and format
//! conversion all work on any architecture without knowing its fields.

use burn::tensor::{Device, Tensor, TensorData};

use crate::error::{Result, SaeError};

/// One parameter tensor: a vector (biases, thresholds) or a matrix (weights).
#[derive(Debug, Clone)]
pub enum ParamTensor {
    /// A rank-1 tensor.
    Vector(Tensor<1>),
    /// A rank-2 tensor.
    Matrix(Tensor<2>),
}

impl ParamTensor {
    /// The tensor's shape.
    pub fn shape(&self) -> Vec<usize> {
        match self {
            ParamTensor::Vector(t) => t.dims().to_vec(),
            ParamTensor::Matrix(t) => t.dims().to_vec(),
        }
    }

    /// Copies the values to the host as `f32`, row-major.
    pub fn to_vec(&self) -> Result<Vec<f32>> {
        let data = match self {
            ParamTensor::Vector(t) => t.to_data(),
            ParamTensor::Matrix(t) => t.to_data(),
        };
        host_f32(data)
    }

    /// Builds a parameter from host values and a shape of rank 1 or 2.
    pub fn from_host(values: Vec<f32>, shape: &[usize], device: &Device) -> Result<Self> {
        let expected: usize = shape.iter().product();
        if values.len() != expected {
            return Err(SaeError::Unsupported(format!(
                "parameter values have {} elements, shape {shape:?} needs {expected}",
                values.len()
            )));
        }
        match *shape {
            [n] => Ok(ParamTensor::Vector(Tensor::from_data(TensorData::new(values, [n]), device))),
            [r, c] => Ok(ParamTensor::Matrix(Tensor::from_data(TensorData::new(values, [r, c]), device))),
            _ => Err(SaeError::Unsupported(format!("parameters must have rank 1 or 2, got shape {shape:?}"))),
        }
    }

    /// Marks the tensor as a leaf that records gradients (on an autodiff device).
    pub fn require_grad(self) -> Self {
        match self {
            ParamTensor::Vector(t) => ParamTensor::Vector(t.require_grad()),
            ParamTensor::Matrix(t) => ParamTensor::Matrix(t.require_grad()),
        }
    }

    /// Detaches the tensor from any autodiff graph.
    pub fn detach(self) -> Self {
        match self {
            ParamTensor::Vector(t) => ParamTensor::Vector(t.detach()),
            ParamTensor::Matrix(t) => ParamTensor::Matrix(t.detach()),
        }
    }

    /// The tensor without its autodiff association (on the inner backend).
    pub fn without_autodiff(self) -> Self {
        match self {
            ParamTensor::Vector(t) => ParamTensor::Vector(t.without_autodiff()),
            ParamTensor::Matrix(t) => ParamTensor::Matrix(t.without_autodiff()),
        }
    }

    /// The tensor with autodiff enabled (it still needs [`ParamTensor::require_grad`] to be a leaf).
    pub fn with_autodiff(self) -> Self {
        match self {
            ParamTensor::Vector(t) => ParamTensor::Vector(t.autodiff()),
            ParamTensor::Matrix(t) => ParamTensor::Matrix(t.autodiff()),
        }
    }

    /// The gradient of this leaf in `grads`, if it has one (without autodiff).
    pub fn grad(&self, grads: &burn::tensor::Gradients) -> Option<Self> {
        match self {
            ParamTensor::Vector(t) => t.grad(grads).map(ParamTensor::Vector),
            ParamTensor::Matrix(t) => t.grad(grads).map(ParamTensor::Matrix),
        }
    }

    /// Takes the gradient of this leaf out of `grads` (without autodiff), so that the caller holds
    /// the only handle to its buffer.
    pub fn grad_remove(&self, grads: &mut burn::tensor::Gradients) -> Option<Self> {
        match self {
            ParamTensor::Vector(t) => t.grad_remove(grads).map(ParamTensor::Vector),
            ParamTensor::Matrix(t) => t.grad_remove(grads).map(ParamTensor::Matrix),
        }
    }

    /// Moves the tensor to `device`.
    pub fn to_device(self, device: &Device) -> Self {
        match self {
            ParamTensor::Vector(t) => ParamTensor::Vector(t.to_device(device)),
            ParamTensor::Matrix(t) => ParamTensor::Matrix(t.to_device(device)),
        }
    }
}

/// Converts tensor data of any float dtype to host `f32` values; data that cannot be converted
/// is an [`SaeError::HostRead`], never an empty or zeroed vector.
pub fn host_f32(data: TensorData) -> Result<Vec<f32>> {
    let dtype = data.dtype();
    data.try_into_vec_as::<f32>().map_err(|e| SaeError::host_read(format!("a {dtype:?} tensor"), format!("{e:?}")))
}

/// Converts integer tensor data to host `i64` values, like [`host_f32`].
pub fn host_i64(data: TensorData) -> Result<Vec<i64>> {
    let dtype = data.dtype();
    data.try_into_vec_as::<i64>().map_err(|e| SaeError::host_read(format!("a {dtype:?} tensor"), format!("{e:?}")))
}

/// The [`SaeError::MissingParam`] for `name`, found as `found`.
fn missing(name: &str, found: Option<&ParamTensor>, expected: &'static str) -> SaeError {
    let found = match found {
        None => "absent".to_string(),
        Some(t) => format!("a tensor of shape {:?}", t.shape()),
    };
    SaeError::MissingParam { name: name.to_string(), found, expected }
}

/// An ordered set of named parameters.
///
/// Order is the insertion order, which architectures fix; it is the order parameters are
/// saved, optimised and iterated in, so it is part of what makes training deterministic.
#[derive(Debug, Clone, Default)]
pub struct ParamSet {
    entries: Vec<(String, ParamTensor)>,
}

impl ParamSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Inserts or replaces a parameter.
    pub fn insert(&mut self, name: impl Into<String>, value: ParamTensor) {
        let name = name.into();
        match self.entries.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.entries.push((name, value)),
        }
    }

    /// Inserts or replaces a matrix parameter.
    pub fn set_matrix(&mut self, name: &str, value: Tensor<2>) {
        self.insert(name, ParamTensor::Matrix(value));
    }

    /// Inserts or replaces a vector parameter.
    pub fn set_vector(&mut self, name: &str, value: Tensor<1>) {
        self.insert(name, ParamTensor::Vector(value));
    }

    /// Looks a parameter up by name.
    pub fn get(&self, name: &str) -> Option<&ParamTensor> {
        self.entries.iter().find(|(n, _)| n == name).map(|(_, t)| t)
    }

    /// Removes a parameter, returning it.
    pub fn remove(&mut self, name: &str) -> Option<ParamTensor> {
        let pos = self.entries.iter().position(|(n, _)| n == name)?;
        Some(self.entries.remove(pos).1)
    }

    /// Whether a parameter exists.
    pub fn contains(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The matrix parameter `name`, or [`SaeError::MissingParam`] when it is absent or a
    /// vector (architectures check their set with [`ParamSet::check_schema`] when they are built,
    /// so this reports code that changed the set afterwards, without a panic).
    pub fn matrix(&self, name: &str) -> Result<Tensor<2>> {
        match self.get(name) {
            Some(ParamTensor::Matrix(t)) => Ok(t.clone()),
            other => Err(missing(name, other, "matrix")),
        }
    }

    /// The vector parameter `name`, or [`SaeError::MissingParam`] like [`ParamSet::matrix`].
    pub fn vector(&self, name: &str) -> Result<Tensor<1>> {
        match self.get(name) {
            Some(ParamTensor::Vector(t)) => Ok(t.clone()),
            other => Err(missing(name, other, "vector")),
        }
    }

    /// Iterates over `(name, tensor)` in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamTensor)> {
        self.entries.iter().map(|(n, t)| (n.as_str(), t))
    }

    /// Parameter names in order.
    pub fn names(&self) -> Vec<String> {
        self.entries.iter().map(|(n, _)| n.clone()).collect()
    }

    /// Number of parameters.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Total number of scalar values.
    pub fn numel(&self) -> usize {
        self.entries.iter().map(|(_, t)| t.shape().iter().product::<usize>()).sum()
    }

    /// Applies `f` to every parameter, in order.
    pub fn map(self, mut f: impl FnMut(&str, ParamTensor) -> ParamTensor) -> Self {
        let entries = self.entries.into_iter().map(|(n, t)| {
            let t = f(&n, t);
            (n, t)
        });
        Self { entries: entries.collect() }
    }

    /// Like [`ParamSet::map`] with a fallible `f`: the first error is returned (and the set,
    /// consumed, is gone).
    pub fn try_map(self, mut f: impl FnMut(&str, ParamTensor) -> Result<ParamTensor>) -> Result<Self> {
        let mut entries = Vec::with_capacity(self.entries.len());
        for (name, t) in self.entries {
            let t = f(&name, t)?;
            entries.push((name, t));
        }
        Ok(Self { entries })
    }

    /// Checks that every `(name, shape)` in `schema` is present with that shape, naming `origin`
    /// (a file path) in the error. Extra parameters are left alone.
    pub fn check_schema(&self, schema: &[(String, Vec<usize>)], origin: &std::path::Path, architecture: &str) -> Result<()> {
        for (name, expected) in schema {
            let Some(t) = self.get(name) else {
                return Err(SaeError::MissingTensor {
                    path: origin.to_path_buf(),
                    name: name.clone(),
                    architecture: architecture.to_string(),
                });
            };
            let actual = t.shape();
            if &actual != expected {
                return Err(SaeError::ShapeMismatch {
                    path: origin.to_path_buf(),
                    name: name.clone(),
                    actual,
                    expected: expected.clone(),
                });
            }
        }
        Ok(())
    }
}
