//! Top-k selection of rows (`topk_rows`, `topk_row`) against burn's sort and a full sort: ties,
//! NaN, eligibility masks.

use burn::tensor::{Device, Tensor, TensorData};
use proptest::prelude::*;
use sae_kernels::host::{Eligible, topk_row, topk_rows};
use sae_core::params::host_f32;
use sae_core::rng::SplitMix64;

use super::normals;

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
        prop_assert_eq!(&values, &host_f32(bv.into_data()).unwrap());
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
