//! The CPU kernels of `ops::host` against independent references: burn's own `topk` (a full
//! sort) for the selection, and a plain triple-loop GEMM in f64 for the fused encoder. Shapes are
//! odd on purpose (rows not a multiple of the block or the thread count).

use burn::tensor::{Device, Tensor, TensorData};
use proptest::prelude::*;
use sae_core::ops::host::{Eligible, HostAuxSelect, HostEncoder, describe, fused_topk_encode, topk_row, topk_rows};
use sae_core::tolerance;
use sae_core::params::host_f32;
use sae_core::rng::SplitMix64;

fn normals(n: usize, seed: u64) -> Vec<f32> {
    let mut rng = SplitMix64::new(seed);
    (0..n).map(|_| rng.normal()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Same values and (up to the order of tied values) indices as burn's sort-based
    /// `topk_with_indices`.
    #[test]
    fn topk_rows_equals_burn_topk(n in 1usize..40, d in 1usize..300, k_frac in 0.0f64..1.0, threads in 1usize..5, seed in any::<u64>()) {
        let k = ((d as f64 * k_frac) as usize).clamp(1, d.min(40));
        let data = normals(n * d, seed);
        let data_copy = data.clone();
        let (values, indices) = topk_rows(&data, n, d, k, Eligible::All, threads).unwrap();
        let t = Tensor::<2>::from_data(TensorData::new(data, [n, d]), &Device::flex());
        let (bv, bi) = t.topk_with_indices(k, 1);
        prop_assert_eq!(&values, &host_f32(bv.into_data()));
        // Indices: the same as burn's wherever the value is not tied (f32 normals do tie now
        // and then, and the two sorts may order equal values differently); every index points
        // at its value and a row never repeats one.
        let burn_indices = bi.into_data().try_into_vec_as::<i64>().unwrap();
        for r in 0..n {
            let row = &data_copy[r * d..(r + 1) * d];
            let mut seen = std::collections::HashSet::new();
            for j in 0..k {
                let (v, i) = (values[r * k + j], indices[r * k + j]);
                prop_assert_eq!(row[i as usize], v);
                prop_assert!(seen.insert(i), "row {} repeats index {}", r, i);
                if row.iter().filter(|&&x| x == v).count() == 1 {
                    prop_assert_eq!(i, burn_indices[r * k + j]);
                }
            }
        }
    }
}

/// The top-k by definition: every eligible column sorted by value (descending, NaN after every
/// number, equal values by lower column), the first `k` kept, `(-inf, 0)` padding.
fn topk_by_full_sort(row: &[f32], k: usize, mask: Option<&[bool]>) -> (Vec<f32>, Vec<i64>) {
    let mut cols: Vec<usize> = (0..row.len()).filter(|j| mask.is_none_or(|m| m[*j])).collect();
    cols.sort_by(|&a, &b| match (row[a].is_nan(), row[b].is_nan()) {
        (false, true) => std::cmp::Ordering::Less,
        (true, false) => std::cmp::Ordering::Greater,
        (true, true) => a.cmp(&b),
        (false, false) => row[b].partial_cmp(&row[a]).unwrap().then(a.cmp(&b)),
    });
    let values = (0..k).map(|p| cols.get(p).map_or(f32::NEG_INFINITY, |&j| row[j])).collect();
    let indices = (0..k).map(|p| cols.get(p).map_or(0, |&j| j as i64)).collect();
    (values, indices)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// Long rows (where the chunk-maxima path runs) with many ties, signed zeros, NaN and
    /// infinities, with and without an eligibility mask: exactly the full sort's answer,
    /// including the order of tied values.
    #[test]
    fn topk_row_equals_a_full_sort_on_long_rows_with_ties_and_nan(d in 200usize..4000, k in 1usize..200, levels in 1u32..400, nan_frac in 0.0f64..0.05, mask_frac in 0.0f64..1.0, masked in any::<bool>(), seed in any::<u64>()) {
        let mut rng = SplitMix64::new(seed);
        let k = k.min(d);
        let special = [f32::NAN, f32::NEG_INFINITY, f32::INFINITY, -0.0, 0.0];
        let row: Vec<f32> = (0..d).map(|_| {
            if rng.next_f64() < nan_frac { special[(rng.next_f64() * 5.0) as usize % 5] }
            else { (rng.normal() * levels as f32).round() / levels as f32 }
        }).collect();
        let mask: Vec<bool> = (0..d).map(|_| rng.next_f64() >= mask_frac).collect();
        let mask = masked.then_some(&mask[..]);
        let (mut v, mut i) = (vec![0.0f32; k], vec![0i64; k]);
        topk_row(&row, k, mask.map_or(Eligible::All, Eligible::Only), &mut v, &mut i);
        let (rv, ri) = topk_by_full_sort(&row, k, mask);
        prop_assert_eq!(&i, &ri);
        prop_assert_eq!(v.iter().map(|x| x.to_bits()).collect::<Vec<_>>(), rv.iter().map(|x| x.to_bits()).collect::<Vec<_>>());
    }
}

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
        let got = sae_core::ops::host::sparse::scatter_outer(&c, &idx, &x, n, k, d, m, threads).unwrap();
        prop_assert_eq!(got.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), want.iter().map(|v| v.to_bits()).collect::<Vec<_>>());
    }
}

#[test]
fn ties_keep_the_lower_column_first_and_nan_ranks_last() {
    let row = [1.0, f32::NAN, 3.0, 3.0, -2.0, 1.0];
    let (mut v, mut i) = ([0.0f32; 4], [0i64; 4]);
    topk_row(&row, 4, Eligible::All, &mut v, &mut i);
    assert_eq!(i, [2, 3, 0, 5]);
    assert_eq!(v, [3.0, 3.0, 1.0, 1.0]);
    let (mut v, mut i) = ([0.0f32; 6], [0i64; 6]);
    topk_row(&row, 6, Eligible::All, &mut v, &mut i);
    assert_eq!(i, [2, 3, 0, 5, 4, 1], "NaN comes after every number");
}

#[test]
fn eligibility_mask_restricts_the_choice_and_pads_with_negative_infinity() {
    let row = [5.0, 1.0, 4.0, 2.0, 3.0];
    let mask = [false, true, false, true, false];
    let (mut v, mut i) = ([0.0f32; 3], [0i64; 3]);
    topk_row(&row, 3, Eligible::Only(&mask), &mut v, &mut i);
    assert_eq!(i, [3, 1, 0]);
    assert_eq!(v, [2.0, 1.0, f32::NEG_INFINITY]);
}

/// `(x · W + b) ⊙ s` in f64, the reference for the fused encoder, with each element's error
/// bound as an f32 computation in any order (`sae_core::tolerance`): `ε·(Σᵢ|xᵢ·wᵢⱼ| + |bⱼ|)·|sⱼ|`
/// plus the final roundings, `ε` the bound between two implementations of a length-`d_in` sum.
fn reference_pre(x: &[f32], w: &[f32], b: &[f32], s: &[f32], n: usize, d_in: usize, d_sae: usize) -> (Vec<f32>, Vec<f64>) {
    let eps = tolerance::between_implementations(d_in + 1);
    let mut pre = vec![0.0f32; n * d_sae];
    let mut bound = vec![0.0f64; n * d_sae];
    for r in 0..n {
        for j in 0..d_sae {
            let dot: f64 = (0..d_in).map(|i| x[r * d_in + i] as f64 * w[i * d_sae + j] as f64).sum();
            let mag: f64 = (0..d_in).map(|i| (x[r * d_in + i] as f64 * w[i * d_sae + j] as f64).abs()).sum::<f64>() + (b[j] as f64).abs();
            let v = (dot + b[j] as f64) * s[j] as f64;
            pre[r * d_sae + j] = v as f32;
            bound[r * d_sae + j] = eps * mag * (s[j] as f64).abs() + 4.0 * tolerance::UNIT_ROUNDOFF * v.abs();
        }
    }
    (pre, bound)
}

/// A per-row selection (`k` slots a row, descending) equals the reference selection `want_i` on
/// `pre`, except where the two picks at a slot are within their error bounds of each other in
/// `pre` (a near-tie that another summation order, e.g. AVX2 against AVX-512 kernels, may break
/// either way); and every value is within its bound of `pre` at its index.
fn assert_selection_within(label: &str, got: (&[f32], &[i64]), want_i: &[i64], pre: &[f32], bound: &[f64], d_sae: usize, k: usize) {
    let (got_v, got_i) = got;
    assert_eq!((got_i.len(), want_i.len(), got_v.len()), (want_i.len(), got_i.len(), got_i.len()), "{label}: lengths");
    for (slot, (&a, &b)) in got_i.iter().zip(want_i).enumerate() {
        let r = slot / k.max(1);
        let at = |i: i64| r * d_sae + i as usize;
        assert!(a == b || (pre[at(a)] as f64 - pre[at(b)] as f64).abs() <= bound[at(a)] + bound[at(b)], "{label}: row {r}, slot {}: latent {a} ({}) vs {b} ({}), not a near-tie; on {}", slot % k, pre[at(a)], pre[at(b)], describe());
        let v = got_v[slot] as f64;
        assert!((v - pre[at(a)] as f64).abs() <= bound[at(a)], "{label}: row {r}: value {v} of latent {a} vs {} (bound {:.2e}); on {}", pre[at(a)], bound[at(a)], describe());
    }
}

#[test]
fn fused_encode_equals_gemm_then_topk_across_blocks_and_threads() {
    // 2 101 rows: the packed GEMM where the CPU has AVX2 + FMA (from 2 048 rows), in many 96-row
    // blocks on one thread and uneven shares on three threads.
    let (n, d_in, d_sae, k, k_aux) = (2101, 13, 70, 9, 6);
    let x = normals(n * d_in, 1);
    let w = normals(d_in * d_sae, 2);
    let b = normals(d_sae, 3);
    let s: Vec<f32> = normals(d_sae, 4).iter().map(|v| 0.5 + v.abs()).collect();
    let dead: Vec<bool> = (0..d_sae).map(|j| j % 4 == 0).collect();
    let (pre, bound) = reference_pre(&x, &w, &b, &s, n, d_in, d_sae);
    let (_, ref_i) = topk_rows(&pre, n, d_sae, k, Eligible::All, 1).unwrap();
    let (_, ref_ai) = topk_rows(&pre, n, d_sae, k_aux, Eligible::Only(&dead), 1).unwrap();
    for threads in [1, 3] {
        let enc = HostEncoder { w_enc: &w, b_enc: &b, scale: Some(&s), d_in, d_sae };
        let sel = fused_topk_encode(&x, n, &enc, k, Some(HostAuxSelect { eligible: &dead, k: k_aux }), threads).unwrap();
        assert_selection_within(&format!("{threads} threads"), (&sel.values, &sel.indices), &ref_i, &pre, &bound, d_sae, k);
        assert_selection_within(&format!("{threads} threads, AuxK"), (&sel.aux_values, &sel.aux_indices), &ref_ai, &pre, &bound, d_sae, k_aux);
        assert!(sel.aux_indices.iter().all(|j| dead[*j as usize]), "AuxK picked a live latent");
    }
    // No scale, no auxiliary selection.
    let ones = vec![1.0f32; d_sae];
    let (pre, bound) = reference_pre(&x, &w, &b, &ones, n, d_in, d_sae);
    let (_, ref_i) = topk_rows(&pre, n, d_sae, k, Eligible::All, 1).unwrap();
    let sel = fused_topk_encode(&x, n, &HostEncoder { w_enc: &w, b_enc: &b, scale: None, d_in, d_sae }, k, None, 2).unwrap();
    assert_selection_within("unscaled", (&sel.values, &sel.indices), &ref_i, &pre, &bound, d_sae, k);
    assert!(sel.aux_values.is_empty());
    // Fewer rows than that: the `gemm` crate's kernels, same selections.
    let few = 301;
    let sel = fused_topk_encode(&x[..few * d_in], few, &HostEncoder { w_enc: &w, b_enc: &b, scale: None, d_in, d_sae }, k, None, 2).unwrap();
    assert_selection_within("301 rows", (&sel.values, &sel.indices), &ref_i[..few * k], &pre[..few * d_sae], &bound[..few * d_sae], d_sae, k);
}

#[test]
fn threaded_host_gemm_equals_an_f64_gemm_at_odd_shapes() {
    use sae_core::ops::host::gemm::matmul;
    for (m, k, n, threads) in [(13, 37, 29, 3), (1, 1, 1, 2), (40, 5, 3, 7), (0, 4, 4, 2), (3, 0, 2, 2)] {
        let a = normals(m * k, 7);
        let b = normals(k * n, 8);
        let c = matmul(&a, m, &b, k, n, threads).unwrap();
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
    let want = host_f32(a.clone().matmul(b.clone()).into_data());
    let got = host_f32(sae_core::ops::matmul(a.clone(), b.clone()).into_data());
    // Two f32 products of length 9 in any orders: ε₉·Σ|aᵢbᵢ| apart (`sae_core::tolerance`).
    let (ha, hb) = (host_f32(a.clone().into_data()), host_f32(b.clone().into_data()));
    for (e, (x, y)) in got.iter().zip(&want).enumerate() {
        let (r, j) = (e / 5, e % 5);
        let mag: f64 = (0..9).map(|i| (ha[r * 9 + i] as f64 * hb[i * 5 + j] as f64).abs()).sum();
        assert!(((x - y).abs() as f64) <= tolerance::between_implementations(9) * mag, "[{r},{j}]: {x} vs {y}; on {}", describe());
    }
    // On an autodiff device it stays differentiable.
    let w = b.autodiff().require_grad();
    let g = sae_core::ops::matmul(a.autodiff(), w.clone()).sum().backward();
    assert!(w.grad(&g).is_some());
}

#[test]
fn slices_of_the_wrong_length_are_typed_errors_not_panics() {
    use sae_core::SaeError;
    use sae_core::ops::host::{gemm::matmul, sparse};
    let bad = |r: Result<Vec<f32>, SaeError>, name: &str| match r {
        Err(SaeError::ShapeMismatch { name: n, .. }) => assert_eq!(n, name),
        other => panic!("{name}: expected a shape error, got {other:?}"),
    };
    bad(matmul(&[1.0; 5], 2, &[1.0; 6], 3, 2, 2), "a");
    bad(matmul(&[1.0; 6], 2, &[1.0; 5], 3, 2, 2), "b");
    bad(sparse::sparse_decode(&[1.0; 3], &[0; 4], &[1.0; 8], 2, 2, 4, 2), "coefficients");
    bad(sparse::gather_dot(&[1.0; 7], &[0; 4], &[1.0; 8], 2, 2, 4, 2), "x");
    bad(sparse::scatter_outer(&[1.0; 4], &[0; 3], &[1.0; 8], 2, 2, 4, 2, 2), "indices");
    assert!(matches!(topk_rows(&[1.0; 5], 2, 3, 1, Eligible::All, 2), Err(SaeError::ShapeMismatch { .. })));
    let enc = HostEncoder { w_enc: &[1.0; 6], b_enc: &[0.0; 2], scale: None, d_in: 3, d_sae: 3 };
    assert!(matches!(fused_topk_encode(&[1.0; 6], 2, &enc, 1, None, 2), Err(SaeError::ShapeMismatch { .. })));
    // A mask shorter than the row selects nothing past its end instead of panicking.
    let (mut v, mut i) = ([0.0f32; 2], [0i64; 2]);
    topk_row(&[1.0, 2.0, 3.0], 2, Eligible::Only(&[true]), &mut v, &mut i);
    assert_eq!((v, i), ([1.0, f32::NEG_INFINITY], [0, 0]));
    // Out-of-range indices contribute nothing.
    assert_eq!(sparse::sparse_decode(&[2.0, 3.0], &[-1, 9], &[1.0; 4], 1, 2, 2, 1).unwrap(), vec![0.0, 0.0]);
}

#[test]
fn host_view_borrows_flex_tensors_with_and_without_autodiff_and_copies_views() {
    use sae_core::ops::host::HostF32;
    let device = Device::flex();
    let values = normals(6 * 5, 11);
    let t = Tensor::<2>::from_data(TensorData::new(values.clone(), [6, 5]), &device);
    let plain = HostF32::of(&t);
    assert!(plain.is_borrowed());
    assert_eq!(plain.as_slice(), &values[..]);
    let param = t.clone().autodiff().require_grad();
    let tracked = HostF32::of(&param);
    assert!(tracked.is_borrowed(), "an autodiff tensor's inner storage is read in place");
    assert_eq!(tracked.as_slice(), &values[..]);
    assert!(HostF32::of(&param.clone().detach()).is_borrowed());
    // A transposed view is not row-major storage: copied, in the view's order.
    let tv = HostF32::of(&t.clone().transpose());
    assert!(!tv.is_borrowed());
    assert_eq!(tv.as_slice(), &host_f32(t.transpose().into_data())[..]);
}

#[test]
fn decoder_row_projection_and_renormalisation_equal_the_portable_ops() {
    use sae_core::ops::{normalize_rows, normalize_rows_portable, project_out_rows, project_out_rows_portable};
    let device = Device::flex();
    // 131 rows: split unevenly over threads; 37 columns.
    let (rows, cols) = (131, 37);
    let w = Tensor::<2>::from_data(TensorData::new(normals(rows * cols, 21), [rows, cols]), &device);
    let unit = normalize_rows(w.clone(), f32::EPSILON);
    let want_unit = host_f32(normalize_rows_portable(w, f32::EPSILON).into_data());
    let got_unit = host_f32(unit.clone().into_data());
    // A unit row computed in two orders: the norm's sum of `cols` squares (relative error ε_cols
    // of Σv² = ‖v‖², half of it in ‖v‖) and the division, about elements of size ≤ 1.
    let eps = tolerance::between_implementations(cols) + 4.0 * tolerance::UNIT_ROUNDOFF;
    assert!(got_unit.iter().zip(&want_unit).all(|(a, b)| ((a - b).abs() as f64) <= eps), "on {}", describe());
    for r in 0..rows {
        let norm: f32 = got_unit[r * cols..(r + 1) * cols].iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!(((norm - 1.0).abs() as f64) <= 2.0 * eps, "row {r}: norm {norm}");
    }
    let g = Tensor::<2>::from_data(TensorData::new(normals(rows * cols, 22), [rows, cols]), &device);
    let want = host_f32(project_out_rows_portable(g.clone(), &unit).into_data());
    let hg = host_f32(g.clone().into_data());
    let got = host_f32(project_out_rows(g, &unit).into_data());
    // g − (g·u)·u in two orders: the dot product's ε_cols·Σ|gᵢuᵢ| ≤ ε_cols·‖g‖ (u a unit row)
    // times |u| ≤ 1, plus the roundings of the product and the difference, relative to ‖g‖.
    let row_norm = |r: usize| hg[r * cols..(r + 1) * cols].iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt();
    for (e, (a, b)) in got.iter().zip(&want).enumerate() {
        assert!(((a - b).abs() as f64) <= 2.0 * eps * row_norm(e / cols), "[{}, {}]: {a} vs {b}; on {}", e / cols, e % cols, describe());
    }
    // What is left is orthogonal to each row, up to the same errors and one more dot product.
    for r in 0..rows {
        let dot: f32 = (0..cols).map(|c| got[r * cols + c] * got_unit[r * cols + c]).sum();
        assert!((dot.abs() as f64) <= 4.0 * eps * row_norm(r), "row {r}: {dot}");
    }
}

#[test]
fn sparse_products_over_many_row_blocks_equal_plain_loops_at_any_thread_count() {
    use sae_core::ops::host::sparse;
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

/// BatchTopK by definition, from the encoder's own values (`all` holds every row's full
/// descending top-`d_sae`): the `k_total` largest positive values of the batch, ties by row then
/// column; returns each row's winners as `(value, latent)` in descending order.
fn batch_topk_by_full_sort(all_v: &[f32], all_i: &[i64], n: usize, d_sae: usize, k_total: usize) -> Vec<Vec<(f32, i64)>> {
    let mut entries: Vec<(f32, usize, i64)> =
        (0..n).flat_map(|r| (0..d_sae).map(move |p| (r, p))).map(|(r, p)| (all_v[r * d_sae + p], r, all_i[r * d_sae + p])).filter(|e| e.0 > 0.0).collect();
    entries.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)).then(a.2.cmp(&b.2)));
    entries.truncate(k_total);
    let mut rows = vec![Vec::new(); n];
    for (v, r, i) in entries {
        rows[r].push((v, i));
    }
    rows
}

#[test]
fn fused_batch_topk_equals_a_sort_of_the_whole_batch_including_rows_that_need_more_candidates() {
    use sae_core::ops::host::fused_batch_topk_encode;
    // 64 candidates per row at first (d_sae 300): every 37th row is scaled up so that it holds
    // well over 64 winners and must be encoded again with more candidates.
    let (n, d_in, d_sae) = (211, 11, 300);
    let mut x = normals(n * d_in, 51);
    for r in (0..n).step_by(37) {
        x[r * d_in..(r + 1) * d_in].iter_mut().for_each(|v| *v *= 12.0);
    }
    let w = normals(d_in * d_sae, 52);
    let dead: Vec<bool> = (0..d_sae).map(|j| j % 5 == 2).collect();
    for (bias, k_total, threads) in [(0.0f32, n * 9, 2), (0.0, 0, 1), (-9.0, n * 9, 3), (0.5, n * d_sae, 2)] {
        let b = vec![bias; d_sae];
        let enc = HostEncoder { w_enc: &w, b_enc: &b, scale: None, d_in, d_sae };
        let full = fused_topk_encode(&x, n, &enc, d_sae, None, 1).unwrap();
        let want = batch_topk_by_full_sort(&full.values, &full.indices, n, d_sae, k_total);
        // The second pass encodes some rows again in a smaller product, on other threads: its
        // values may differ from the full encode's within the f32 error bound, and so may which
        // of two latents within that bound of the batch threshold wins.
        let (pre, bound) = reference_pre(&x, &w, &b, &vec![1.0; d_sae], n, d_in, d_sae);
        let tie = 2.0 * bound.iter().fold(0f64, |a, &v| a.max(v));
        let threshold = want.iter().flatten().map(|e| e.0).fold(f32::INFINITY, f32::min);
        let threshold = if threshold.is_finite() { threshold as f64 } else { 0.0 };
        let aux = HostAuxSelect { eligible: &dead, k: 7 };
        let sel = fused_batch_topk_encode(&x, n, &enc, k_total, Some(aux), threads).unwrap();
        let width = want.iter().map(Vec::len).max().unwrap_or(0).max(1);
        if k_total == n * 9 && bias == 0.0 {
            assert!(width > 64, "no row needed a second pass ({width} winners at most): the test would not cover it");
        }
        let mut filled = 0;
        for (r, row) in want.iter().enumerate() {
            let got: Vec<(f32, i64)> = (0..sel.width).map(|p| (sel.values[r * sel.width + p], sel.indices[r * sel.width + p])).collect();
            let used = got.iter().take_while(|e| e.1 >= 0).count();
            filled = filled.max(used);
            assert!(got[used..].iter().all(|e| *e == (0.0, -1)), "row {r}: empty slots");
            assert!(got[..used].windows(2).all(|p| p[0].0 >= p[1].0), "row {r}: not descending");
            for &(v, i) in &got[..used] {
                match row.iter().find(|e| e.1 == i) {
                    Some(&(u, _)) => assert!(((v - u) as f64).abs() <= bound[r * d_sae + i as usize], "row {r}, latent {i}: {v} vs {u}; on {}", describe()),
                    None => assert!((v as f64 - threshold).abs() <= tie, "row {r}: latent {i} ({v}) selected, not a near-tie of the threshold {threshold}; on {}", describe()),
                }
            }
            for &(u, i) in row.iter().filter(|e| !got[..used].iter().any(|g| g.1 == e.1)) {
                assert!((u as f64 - threshold).abs() <= tie, "row {r}: latent {i} ({u}) missing, not a near-tie of the threshold {threshold}; on {}", describe());
            }
        }
        assert_eq!(sel.width, filled.max(1), "bias {bias}, k_total {k_total}: width is the fullest row's");
        let plain = fused_topk_encode(&x, n, &enc, 7, Some(aux), threads).unwrap();
        assert_selection_within("the AuxK selection", (&sel.aux_values, &sel.aux_indices), &plain.aux_indices, &pre, &bound, d_sae, 7);
    }
}
