//! Fast CPU paths for the Flex and NdArray backends, whose tensors live in host memory: the work
//! runs on plain slices with every core and the results go back as tensors. Each function here
//! has a portable counterpart in burn tensor ops ([`crate::portable`]) that it must match; the
//! tests in `sae-kernels/tests/kernels/` and the backend suite of `sae-arch` compare the two
//! (forward and gradients) on odd shapes.
//!
//! The slice kernels live here; [`HostKernels`] puts them behind the [`Kernels`](crate::Kernels)
//! methods, and [`crate::kernels_for`] decides when they run.

pub mod adam;
mod batch_select;
mod encode;
mod backend;
mod cpu;
pub mod gemm;
mod kernels;
mod operand;
mod packed;
pub mod rows;
mod select;
pub(crate) mod simd;
pub mod sparse;
mod view;

pub use cpu::{cpu_model, describe, describe_with};
pub use batch_select::{HostBatchSelection, fused_batch_topk_encode};
pub use encode::{HostAuxSelect, HostEncoder, HostSelections, fused_topk_encode};
pub use select::{Eligible, topk_row, topk_rows};
pub use kernels::HostKernels;
pub use view::HostF32;

use burn::tensor::Device;
use sae_core::{HostGemm, KernelPolicy, Result, SaeError};

/// How one call of a host kernel runs: its threads and the GEMM it may use (from a
/// [`KernelPolicy`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HostRun {
    /// Threads (at least 1 is used).
    pub threads: usize,
    /// Which GEMM dense products use.
    pub gemm: HostGemm,
}

impl HostRun {
    /// `threads` threads, the automatic GEMM choice.
    pub fn threads(threads: usize) -> Self {
        Self { threads, gemm: HostGemm::Auto }
    }

    /// The run a policy asks for.
    pub fn of(policy: &KernelPolicy) -> Self {
        Self { threads: policy.host_threads(), gemm: policy.gemm }
    }
}

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
