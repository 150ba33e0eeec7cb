//! The kernel policy of this process: the global `--kernels`, `--threads` and `--gemm` flags, or
//! for compatibility the `SAE_KERNELS`, `SAE_THREADS` and `SAE_GEMM` environment variables,
//! mapped once at start-up to a [`KernelPolicy`]; every SAE the commands load or train runs
//! with it (through [`registry`]). The libraries never read the environment themselves.

use std::sync::OnceLock;

use anyhow::{Result, bail};
use sae_core::{HostGemm, KernelChoice, KernelPolicy, Registry};

static POLICY: OnceLock<KernelPolicy> = OnceLock::new();

/// The policy from the flags (`None`: not given), falling back to the environment, then to the
/// default (fast kernels on every core). An unknown value is an error naming it.
pub fn resolve(kernels: Option<&str>, threads: Option<usize>, gemm: Option<&str>) -> Result<KernelPolicy> {
    let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let choice = match kernels.map(str::to_string).or_else(|| env("SAE_KERNELS")).as_deref() {
        None | Some("fast") => KernelChoice::Fast,
        Some("portable") => KernelChoice::Portable,
        Some(other) => bail!("kernels `{other}`: expected `fast` or `portable` (--kernels or SAE_KERNELS)"),
    };
    let threads = match threads {
        Some(t) => t,
        None => match env("SAE_THREADS") {
            None => 0,
            Some(v) => v.parse::<usize>().map_err(|_| anyhow::anyhow!("SAE_THREADS `{v}`: expected a thread count (0 = every core)"))?,
        },
    };
    let gemm = match gemm.map(str::to_string).or_else(|| env("SAE_GEMM")).as_deref() {
        None | Some("auto") => HostGemm::Auto,
        Some("crate") => HostGemm::GemmCrate,
        Some(other) => bail!("gemm `{other}`: expected `auto` or `crate` (--gemm or SAE_GEMM)"),
    };
    Ok(KernelPolicy { choice, gemm, ..KernelPolicy::default() }.with_threads(threads))
}

/// Sets the process's policy (once, from `main`).
pub fn set(policy: KernelPolicy) {
    let _ = POLICY.set(policy);
}

/// The process's policy.
pub fn get() -> KernelPolicy {
    POLICY.get().copied().unwrap_or_default()
}

/// The built-in architectures, building SAEs that run with the process's policy.
pub fn registry() -> Registry {
    sae_arch::registry().with_kernel_policy(get())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_the_policy_and_bad_values_are_errors() {
        let p = resolve(Some("portable"), Some(3), Some("crate")).unwrap();
        assert_eq!(p, KernelPolicy::portable().with_threads(3).with_gemm(HostGemm::GemmCrate));
        assert!(resolve(Some("fastest"), None, None).unwrap_err().to_string().contains("fastest"));
        assert!(resolve(None, None, Some("blas")).is_err());
    }
}
