//! The sparse products (`scatter_outer`, `gather_dot`, `sparse_decode`) against plain loops and
//! f64 sums, at any thread count.

use proptest::prelude::*;
use sae_kernels::host::describe;
use sae_core::rng::SplitMix64;
use sae_core::tolerance;

use super::normals;

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// `scatter_outer` equals the plain loop `out[idx] += c · x[r]` in `(r, j)` order bit for
    /// bit, at any thread count, with repeated and out-of-range indices.
    #[test]
    fn scatter_outer_equals_the_plain_loop_at_any_thread_count(n in 1usize..60, k in 1usize..9, d in 1usize..40, m in 1usize..30, threads in 1usize..6, seed in any::<u64>()) {
        let mut rng = SplitMix64::new(seed);
        let c = normals(n * k, seed ^ 1);
        let x = normals(n * d, seed ^ 2);
        let idx: Vec<i64> = (0..n * k).map(|_| (rng.next_f64() * (m as f64 + 2.0)) as i64 - 1).collect();
        let mut want = vec![0.0f32; m * d];
        for r in 0..n {
            for j in 0..k {
                let Ok(t) = usize::try_from(idx[r * k + j]) else { continue };
                if t >= m { continue; }
                for col in 0..d {
                    want[t * d + col] += c[r * k + j] * x[r * d + col];
                }
            }
        }
        let got = sae_kernels::host::sparse::scatter_outer(&c, &idx, &x, n, k, d, m, threads).unwrap();
        prop_assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }
}

#[test]
fn sparse_products_over_many_row_blocks_equal_plain_loops_at_any_thread_count() {
    use sae_kernels::host::sparse;
    // 700 rows: several blocks of rows per thread; 23 latents, so each is selected many times
    // per block (the AuxK pattern); some indices out of range.
    let (n, k, d, m) = (700, 7, 19, 23);
    let c = normals(n * k, 31);
    let x = normals(n * d, 32);
    let w = normals(m * d, 33);
    let mut rng = SplitMix64::new(34);
    let idx: Vec<i64> = (0..n * k).map(|_| (rng.next_f64() * (m as f64 + 2.0)) as i64 - 1).collect();
    let valid = |i: i64| usize::try_from(i).ok().filter(|l| *l < m);
    let mut want_scatter = vec![0.0f32; m * d];
    let mut want_dot = vec![0.0f64; n * k];
    let mut want_decode = vec![0.0f64; n * d];
    // Σ|terms| of each sum: the scale of its f32 error bound (`sae_core::tolerance`).
    let (mut mag_dot, mut mag_decode) = (vec![0.0f64; n * k], vec![0.0f64; n * d]);
    for r in 0..n {
        for j in 0..k {
            let Some(l) = valid(idx[r * k + j]) else { continue };
            for col in 0..d {
                want_scatter[l * d + col] += c[r * k + j] * x[r * d + col];
                want_dot[r * k + j] += x[r * d + col] as f64 * w[l * d + col] as f64;
                want_decode[r * d + col] += c[r * k + j] as f64 * w[l * d + col] as f64;
                mag_dot[r * k + j] += (x[r * d + col] as f64 * w[l * d + col] as f64).abs();
                mag_decode[r * d + col] += (c[r * k + j] as f64 * w[l * d + col] as f64).abs();
            }
        }
    }
    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    // Any f32 order: γ_len·Σ|terms| plus the final rounding.
    let close = |got: &[f32], want: &[f64], mag: &[f64], len: usize| {
        got.iter().zip(want).zip(mag).all(|((g, w), m)| (*g as f64 - w).abs() <= (tolerance::dot_product_worst(len) + tolerance::UNIT_ROUNDOFF) * m)
    };
    let one_dot = sparse::gather_dot(&x, &idx, &w, n, k, d, 1).unwrap();
    let one_decode = sparse::sparse_decode(&c, &idx, &w, n, k, d, 1).unwrap();
    assert!(close(&one_dot, &want_dot, &mag_dot, d), "gather_dot; on {}", describe());
    assert!(close(&one_decode, &want_decode, &mag_decode, k), "sparse_decode; on {}", describe());
    for threads in [1, 2, 3] {
        let got = sparse::scatter_outer(&c, &idx, &x, n, k, d, m, threads).unwrap();
        assert_eq!(bits(&got), bits(&want_scatter), "scatter_outer, {threads} threads: same sums in the same order");
        assert_eq!(bits(&sparse::gather_dot(&x, &idx, &w, n, k, d, threads).unwrap()), bits(&one_dot), "gather_dot, {threads} threads");
        assert_eq!(bits(&sparse::sparse_decode(&c, &idx, &w, n, k, d, threads).unwrap()), bits(&one_decode), "sparse_decode, {threads} threads");
    }
}
