//! The threaded host GEMM and `sae_kernels::matmul` against an f64 product and burn's matmul.

use burn::tensor::{Device, Tensor, TensorData};
use sae_kernels::host::describe;
use sae_core::params::host_f32;
use sae_core::tolerance;
use sae_kernels::KernelPolicy;

use super::normals;

#[test]
fn threaded_host_gemm_equals_an_f64_gemm_at_odd_shapes() {
    use sae_kernels::host::{HostRun, gemm::matmul};
    for (m, k, n, threads) in [(13, 37, 29, 3), (1, 1, 1, 2), (40, 5, 3, 7), (0, 4, 4, 2), (3, 0, 2, 2)] {
        let a = normals(m * k, 7);
        let b = normals(k * n, 8);
        let c = matmul(&a, m, &b, k, n, HostRun::threads(threads)).unwrap();
        assert_eq!(c.len(), m * n);
        for r in 0..m {
            for j in 0..n {
                let want: f64 = (0..k).map(|i| a[r * k + i] as f64 * b[i * n + j] as f64).sum();
                let mag: f64 = (0..k).map(|i| (a[r * k + i] as f64 * b[i * n + j] as f64).abs()).sum();
                // Any f32 order, with or without FMA: γₖ·Σ|aᵢbᵢ| plus the final rounding.
                let bound = (tolerance::dot_product_worst(k) + tolerance::UNIT_ROUNDOFF) * mag;
                assert!((c[r * n + j] as f64 - want).abs() <= bound, "({m},{k},{n}) [{r},{j}]; on {}", describe());
            }
        }
    }
}

#[test]
fn ops_matmul_equals_burn_matmul_with_and_without_autodiff() {
    let device = Device::flex();
    let a = Tensor::<2>::from_data(TensorData::new(normals(11 * 9, 9), [11, 9]), &device);
    let b = Tensor::<2>::from_data(TensorData::new(normals(9 * 5, 10), [9, 5]), &device);
    let want = host_f32(a.clone().matmul(b.clone()).into_data()).unwrap();
    let got = host_f32(sae_kernels::matmul(KernelPolicy::fast(), a.clone(), b.clone()).unwrap().into_data()).unwrap();
    // Two f32 products of length 9 in any orders: ε₉·Σ|aᵢbᵢ| apart (`sae_core::tolerance`).
    let (ha, hb) = (host_f32(a.clone().into_data()).unwrap(), host_f32(b.clone().into_data()).unwrap());
    for (e, (x, y)) in got.iter().zip(&want).enumerate() {
        let (r, j) = (e / 5, e % 5);
        let mag: f64 = (0..9).map(|i| (ha[r * 9 + i] as f64 * hb[i * 5 + j] as f64).abs()).sum();
        assert!(((x - y).abs() as f64) <= tolerance::between_implementations(9) * mag, "[{r},{j}]: {x} vs {y}; on {}", describe());
    }
    // On an autodiff device it stays differentiable.
    let w = b.autodiff().require_grad();
    let g = sae_kernels::matmul(KernelPolicy::fast(), a.autodiff(), w.clone()).unwrap().sum().backward();
    assert!(w.grad(&g).is_some());
}
