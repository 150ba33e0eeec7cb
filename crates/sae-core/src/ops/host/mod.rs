//! Fast CPU paths for the Flex and NdArray backends, whose tensors live in host memory: the work
//! runs on plain slices with every core and the results go back as tensors. Each function here
//! has a portable counterpart in burn tensor ops ([`super`]) that it must match; the tests in
//! `sae-core/tests/core/` and the backend suite of `sae-arch` compare the two (forward and gradients) on odd shapes.
//!
//! Only the code that needs raw memory lives here; deciding when to use it is
//! [`super::topk_encode`]'s and [`super::batch_topk_encode`]'s job.

pub mod adam;
mod batch_select;
mod encode;
mod backend;
mod cpu;
pub mod gemm;
mod packed;
pub mod rows;
mod select;
pub(crate) mod simd;
pub mod sparse;
mod view;

pub use cpu::{cpu_model, describe};
pub use batch_select::{HostBatchSelection, fused_batch_topk_encode};
pub use encode::{HostAuxSelect, HostEncoder, HostSelections, fused_topk_encode};
pub use select::{Eligible, topk_row, topk_rows};
pub use view::HostF32;

use burn::tensor::Device;

use crate::error::{Result, SaeError};

/// Checks that the host slice `name` holds `shape.iter().product()` elements: a typed
/// [`SaeError::ShapeMismatch`] instead of an out-of-bounds panic for callers of these kernels.
pub fn check_len(name: &str, len: usize, shape: &[usize]) -> Result<()> {
    if len == shape.iter().product::<usize>() {
        return Ok(());
    }
    Err(SaeError::ShapeMismatch { path: "<host slice>".into(), name: name.into(), actual: vec![len], expected: shape.to_vec() })
}

/// Whether `device` (with or without autodiff) is a CPU backend whose tensors are host memory,
/// so that the kernels of this module can run on it: Flex or NdArray.
pub fn is_host(device: &Device) -> bool {
    let inner = device.clone().without_autodiff();
    #[allow(unreachable_patterns)]
    match inner.as_dispatch() {
        #[cfg(feature = "flex")]
        burn_dispatch::DispatchDevice::Flex(_) => true,
        #[cfg(feature = "ndarray")]
        burn_dispatch::DispatchDevice::NdArray(_) => true,
        _ => false,
    }
}

/// Threads the host kernels use: the machine's available parallelism, or `SAE_THREADS` when set
/// to a positive number.
pub fn threads() -> usize {
    std::env::var("SAE_THREADS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .filter(|t| *t > 0)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}
