//! Choosing the burn device from `--backend`.

use anyhow::{Result, bail};
use burn::tensor::Device;
use clap::ValueEnum;

/// A compute backend; each exists when its cargo feature is enabled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Default)]
pub enum Backend {
    /// burn's pure-Rust CPU backend (feature `flex`, default).
    #[default]
    Flex,
    /// The ndarray CPU backend (feature `ndarray`).
    Ndarray,
    /// WGPU: Vulkan, Metal or DX12 (feature `wgpu`).
    Wgpu,
    /// CUDA device 0 (feature `cuda`).
    Cuda,
}

impl Backend {
    /// The device for this backend, or an error naming the cargo feature to enable.
    pub fn device(self) -> Result<Device> {
        match self {
            #[cfg(feature = "flex")]
            Backend::Flex => Ok(Device::flex()),
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            Backend::Ndarray => Ok(Device::ndarray()),
            #[cfg(feature = "wgpu")]
            Backend::Wgpu => Ok(Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)),
            #[cfg(feature = "cuda")]
            Backend::Cuda => Ok(Device::cuda(0)),
            #[allow(unreachable_patterns)]
            other => bail!("backend `{other:?}` is not compiled in: rebuild with `--features {}`", format!("{other:?}").to_lowercase()),
        }
    }
}
