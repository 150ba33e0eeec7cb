//! What this machine is and which host kernel paths this process runs on it, in one line, for
//! test output and bug reports: the same code can take different paths on an AVX2-only and an
//! AVX-512 CPU, so a failure report must say where it happened.

use sae_core::{HostGemm, KernelPolicy};

/// SIMD features worth naming in a report, as `/proc/cpuinfo` spells them.
const FEATURES: [&str; 9] = ["sse4_2", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_bf16", "amx_bf16", "amx_tile"];

/// The CPU's model name and the SIMD features of [`FEATURES`] it has (Linux: from
/// `/proc/cpuinfo`; elsewhere the architecture alone).
pub fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| {
        info.lines().find(|l| l.split(':').next().is_some_and(|k| k.trim() == key)).and_then(|l| l.split_once(':')).map(|(_, v)| v.trim().to_string())
    };
    let model = field("model name").unwrap_or_else(|| std::env::consts::ARCH.to_string());
    let flags = field("flags").unwrap_or_default();
    let have: Vec<&str> = FEATURES.iter().copied().filter(|f| flags.split_whitespace().any(|x| x == *f)).collect();
    format!("{model} [{}]", if have.is_empty() { "no listed SIMD features".to_string() } else { have.join(" ") })
}

/// One line: the CPU ([`cpu_model`]) and the paths the host kernels take under the default
/// [`KernelPolicy`] (see [`describe_with`]).
pub fn describe() -> String {
    describe_with(&KernelPolicy::default())
}

/// One line: the CPU ([`cpu_model`]) and the paths the host kernels take under `policy` (the
/// packed AVX2+FMA GEMM or the `gemm` crate's, AVX2 or baseline loops, the thread count, and
/// whether the policy turned the kernels off). burn's Flex matmul, which the language models use,
/// is the `gemm` crate with its own run-time dispatch on these features.
pub fn describe_with(policy: &KernelPolicy) -> String {
    let gemm = if policy.gemm == HostGemm::GemmCrate {
        "gemm crate (asked for)"
    } else if super::packed::supported() {
        "packed avx2+fma 6x16 from 2048 rows, gemm crate below"
    } else {
        "gemm crate (no avx2+fma)"
    };
    let loops = if super::simd::has_avx2() { "avx2" } else { "baseline" };
    let portable = if policy.is_fast() { "" } else { "; portable policy: host kernels off" };
    format!("CPU {}; host GEMM: {gemm}; host loops: {loops}; threads {}{portable}", cpu_model(), policy.host_threads())
}
