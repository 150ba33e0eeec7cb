//! Which implementation of the hot-path operations an SAE runs, as a plain value that is
//! passed in: the kernels crate (`sae-kernels`) reads it, nothing reads the environment.
//!
//! Why a value and not an environment variable: a library that reads `SAE_KERNELS` inside an
//! operation makes two SAEs in one process unable to differ, makes tests depend on the shell, and
//! hides the choice from the caller. The `sae` binary maps its flags (and, for compatibility,
//! `SAE_KERNELS` / `SAE_THREADS` / `SAE_GEMM`) to a [`KernelPolicy`] once, at start-up.

use std::num::NonZeroUsize;

/// Whether the fast per-backend kernels may run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum KernelChoice {
    /// The fastest implementation the tensors' backend has (host kernels on Flex and NdArray,
    /// CubeCL kernels on WGPU and CUDA), the portable burn-op version elsewhere.
    #[default]
    Fast,
    /// The portable burn-op version of every operation on every backend: for measuring what the
    /// kernels buy, and for ruling them out when debugging.
    Portable,
}

/// Which GEMM the host kernels use for dense products.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HostGemm {
    /// The packed AVX2+FMA kernel where the CPU has it and the product is tall enough, else the
    /// `gemm` crate's kernels.
    #[default]
    Auto,
    /// The `gemm` crate's kernels only (for comparisons).
    GemmCrate,
}

/// How the hot-path operations run: which implementation, and with how many threads on the host.
/// The default is the fast kernels on every available core.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct KernelPolicy {
    /// Fast kernels or the portable versions.
    pub choice: KernelChoice,
    /// Threads of the host kernels; `None` means the machine's available parallelism.
    pub threads: Option<NonZeroUsize>,
    /// The host GEMM.
    pub gemm: HostGemm,
}

impl KernelPolicy {
    /// The fast kernels on every available core (the default).
    pub fn fast() -> Self {
        Self::default()
    }

    /// The portable burn-op version of every operation.
    pub fn portable() -> Self {
        Self { choice: KernelChoice::Portable, ..Self::default() }
    }

    /// The same policy with `threads` host threads (0 means every available core).
    pub fn with_threads(self, threads: usize) -> Self {
        Self { threads: NonZeroUsize::new(threads), ..self }
    }

    /// The same policy with the host GEMM `gemm`.
    pub fn with_gemm(self, gemm: HostGemm) -> Self {
        Self { gemm, ..self }
    }

    /// Whether the fast kernels may run.
    pub fn is_fast(&self) -> bool {
        self.choice == KernelChoice::Fast
    }

    /// The host kernels' thread count: [`KernelPolicy::threads`], or the machine's available
    /// parallelism (1 where it cannot be told).
    pub fn host_threads(&self) -> usize {
        // Asked once per process: every host operation calls this, and the standard library
        // answers by reading the process's CPU affinity and cgroup quota each time.
        static AVAILABLE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        self.threads.map_or_else(|| *AVAILABLE.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())), NonZeroUsize::get)
    }

    /// One line naming the policy, for test output and bug reports.
    pub fn describe(&self) -> String {
        let choice = match self.choice {
            KernelChoice::Fast => "fast kernels",
            KernelChoice::Portable => "portable burn ops only",
        };
        let gemm = match self.gemm {
            HostGemm::Auto => "",
            HostGemm::GemmCrate => ", gemm crate only",
        };
        format!("{choice}, {} host threads{gemm}", self.host_threads())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builders_set_what_they_name() {
        let p = KernelPolicy::portable().with_threads(3).with_gemm(HostGemm::GemmCrate);
        assert!(!p.is_fast());
        assert_eq!(p.host_threads(), 3);
        assert_eq!(p.gemm, HostGemm::GemmCrate);
        assert!(KernelPolicy::fast().with_threads(0).host_threads() >= 1, "0 means every core");
        assert!(p.describe().contains("3 host threads"));
    }
}
