//! The fused TopK and BatchTopK encoders against an f64 GEMM followed by a full sort, with
//! near-ties allowed to break either way within the f32 error bound.

use sae_kernels::host::{Eligible, HostAuxSelect, HostEncoder, HostRun, describe, fused_topk_encode, topk_rows};
use sae_core::tolerance;

use super::normals;

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
        let sel = fused_topk_encode(&x, n, &enc, k, Some(HostAuxSelect { eligible: &dead, k: k_aux }), HostRun::threads(threads)).unwrap();
        assert_selection_within(&format!("{threads} threads"), (&sel.values, &sel.indices), &ref_i, &pre, &bound, d_sae, k);
        assert_selection_within(&format!("{threads} threads, AuxK"), (&sel.aux_values, &sel.aux_indices), &ref_ai, &pre, &bound, d_sae, k_aux);
        assert!(sel.aux_indices.iter().all(|j| dead[*j as usize]), "AuxK picked a live latent");
    }
    // No scale, no auxiliary selection.
    let ones = vec![1.0f32; d_sae];
    let (pre, bound) = reference_pre(&x, &w, &b, &ones, n, d_in, d_sae);
    let (_, ref_i) = topk_rows(&pre, n, d_sae, k, Eligible::All, 1).unwrap();
    let sel = fused_topk_encode(&x, n, &HostEncoder { w_enc: &w, b_enc: &b, scale: None, d_in, d_sae }, k, None, HostRun::threads(2)).unwrap();
    assert_selection_within("unscaled", (&sel.values, &sel.indices), &ref_i, &pre, &bound, d_sae, k);
    assert!(sel.aux_values.is_empty());
    // Fewer rows than that: the `gemm` crate's kernels, same selections.
    let few = 301;
    let sel = fused_topk_encode(&x[..few * d_in], few, &HostEncoder { w_enc: &w, b_enc: &b, scale: None, d_in, d_sae }, k, None, HostRun::threads(2)).unwrap();
    assert_selection_within("301 rows", (&sel.values, &sel.indices), &ref_i[..few * k], &pre[..few * d_sae], &bound[..few * d_sae], d_sae, k);
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
    use sae_kernels::host::fused_batch_topk_encode;
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
        let full = fused_topk_encode(&x, n, &enc, d_sae, None, HostRun::threads(1)).unwrap();
        let want = batch_topk_by_full_sort(&full.values, &full.indices, n, d_sae, k_total);
        // The second pass encodes some rows again in a smaller product, on other threads: its
        // values may differ from the full encode's within the f32 error bound, and so may which
        // of two latents within that bound of the batch threshold wins.
        let (pre, bound) = reference_pre(&x, &w, &b, &vec![1.0; d_sae], n, d_in, d_sae);
        let tie = 2.0 * bound.iter().fold(0f64, |a, &v| a.max(v));
        let threshold = want.iter().flatten().map(|e| e.0).fold(f32::INFINITY, f32::min);
        let threshold = if threshold.is_finite() { threshold as f64 } else { 0.0 };
        let aux = HostAuxSelect { eligible: &dead, k: 7 };
        let sel = fused_batch_topk_encode(&x, n, &enc, k_total, Some(aux), HostRun::threads(threads)).unwrap();
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
        let plain = fused_topk_encode(&x, n, &enc, 7, Some(aux), HostRun::threads(threads)).unwrap();
        assert_selection_within("the AuxK selection", (&sel.aux_values, &sel.aux_indices), &plain.aux_indices, &pre, &bound, d_sae, 7);
    }
}
