//! A tensor's f32 elements on the host, borrowed from a Flex tensor's own memory where it is
//! contiguous f32 (with or without autodiff), else copied: the fused encoder reads `x` and
//! `W_enc` in place instead of copying 15 MiB per training step at the benchmark shape.

use burn::tensor::Tensor;

use sae_core::Result;
use sae_core::params::host_f32;

/// The elements of a tensor in row-major order: a Flex primitive that shares the tensor's
/// storage, or a host copy.
#[derive(Debug)]
pub enum HostF32 {
    /// The Flex primitive, whose contiguous f32 storage is read in place.
    #[cfg(feature = "flex")]
    Borrowed(burn::backend::tensor::FloatTensor<burn::backend::Flex>),
    /// A copy (every other backend, or a non-contiguous or non-f32 tensor).
    Owned(Vec<f32>),
}

impl HostF32 {
    /// Reads `t`: in place where possible; a tensor that cannot be read is an error.
    pub fn of<const D: usize>(t: &Tensor<D>) -> Result<Self> {
        match Self::borrowed(t) {
            Some(b) => Ok(b),
            None => Ok(HostF32::Owned(host_f32(t.clone().into_data())?)),
        }
    }

    /// The tensor's own memory, or `None` where reading it would need a copy (nothing is copied).
    pub fn borrowed<const D: usize>(t: &Tensor<D>) -> Option<Self> {
        #[cfg(feature = "flex")]
        if let Some(p) = flex_primitive(t.clone().into_dispatch().kind).filter(|p| p.as_slice::<f32>().is_some()) {
            return Some(HostF32::Borrowed(p));
        }
        let _ = t;
        None
    }

    /// The elements.
    pub fn as_slice(&self) -> &[f32] {
        match self {
            #[cfg(feature = "flex")]
            HostF32::Borrowed(p) => p.as_slice::<f32>().unwrap_or(&[]),
            HostF32::Owned(v) => v,
        }
    }

    /// Whether the elements are the tensor's own memory rather than a copy.
    pub fn is_borrowed(&self) -> bool {
        !matches!(self, HostF32::Owned(_))
    }
}

/// The Flex float primitive inside a dispatch tensor, through any autodiff wrapping.
#[cfg(feature = "flex")]
fn flex_primitive(kind: burn_dispatch::DispatchTensorKind) -> Option<burn::backend::tensor::FloatTensor<burn::backend::Flex>> {
    use burn::backend::AutodiffBackend;
    use burn_dispatch::{BackendTensor, DispatchTensorKind};
    #[allow(unreachable_patterns)]
    match kind {
        DispatchTensorKind::Flex(BackendTensor::Float(p)) => Some(p),
        DispatchTensorKind::Flex(BackendTensor::Autodiff(a)) => Some(burn::backend::Autodiff::<burn::backend::Flex>::inner(a)),
        DispatchTensorKind::Autodiff(inner) => flex_primitive(*inner),
        _ => None,
    }
}
