//! What this machine is and which host kernel paths this process runs on it, in one line, for
//! test output and bug reports: the same code can take different paths on an AVX2-only and an
//! AVX-512 CPU, so a failure report must say where it happened.

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

/// One line: the CPU ([`cpu_model`]) and the paths the host kernels take in this process
/// (the packed AVX2+FMA GEMM or the `gemm` crate's, AVX2 or baseline loops, the thread count,
/// and whether `SAE_GEMM`/`SAE_KERNELS` changed the choice). burn's Flex matmul, which the
/// language models use, is the `gemm` crate with its own run-time dispatch on these features.
pub fn describe() -> String {
    let gemm = if std::env::var("SAE_GEMM").is_ok_and(|v| v == "crate") {
        "gemm crate (SAE_GEMM=crate)"
    } else if super::packed::supported() {
        "packed avx2+fma 6x16 from 2048 rows, gemm crate below"
    } else {
        "gemm crate (no avx2+fma)"
    };
    let loops = if super::simd::has_avx2() { "avx2" } else { "baseline" };
    let portable = if crate::ops::portable_only() { "; SAE_KERNELS=portable: host kernels off" } else { "" };
    format!("CPU {}; host GEMM: {gemm}; host loops: {loops}; threads {}{portable}", cpu_model(), super::threads())
}
