//! The CPU kernels of `sae_kernels::host` against independent references, one test binary: burn's own
//! `topk` and full sorts for the selections, plain loops and f64 products for the GEMMs, the
//! fused encoders and the sparse products. Shapes are odd on purpose (rows not a multiple of the
//! block or the thread count). Tolerances come from `sae_core::tolerance`.

mod adam;
mod encode;
mod gemm;
mod host;
mod select;
mod sparse;

use sae_core::rng::SplitMix64;

/// `n` standard normals from `seed`.
fn normals(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| rng.normal()).collect()
}
