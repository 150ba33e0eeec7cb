//! Normalisation statistics, the geometric median and non-finite filtering.

use proptest::prelude::*;
use sae_data::DataError;
use sae_data::stats::{NonFinitePolicy, NormStats, filter_nonfinite, geometric_median};

#[test]
fn norm_stats_by_hand() {
    // Rows (3, 4) and (0, 0): mean (1.5, 2), mean norm 2.5, scale √2 / 2.5.
    let s = NormStats::from_rows(&[3.0, 4.0, 0.0, 0.0, f32::NAN, 1.0], 2).unwrap();
    assert_eq!(s.mean, vec![1.5, 2.0]);
    assert_eq!(s.mean_norm, 2.5);
    assert_eq!(s.rows, 2);
    assert!((s.scale() - 2f32.sqrt() / 2.5).abs() < 1e-7);
}

#[test]
fn geometric_median_resists_an_outlier() {
    // Five points at 0 on a line and one at 1000: the median stays near 0, the mean does not.
    let rows = [0.0, 0.0, 0.0, 0.0, 0.0, 1000.0];
    let m = geometric_median(&rows, 1, 200, 1e-9).unwrap();
    assert!(m[0].abs() < 1e-3, "{m:?}");
}

proptest! {
    #[test]
    fn geometric_median_of_a_symmetric_set_is_its_centre(cx in -5.0f32..5.0, cy in -5.0f32..5.0, r in 0.5f32..3.0) {
        let rows = [cx + r, cy, cx - r, cy, cx, cy + r, cx, cy - r, cx + 0.1, cy + 0.2, cx - 0.1, cy - 0.2];
        let m = geometric_median(&rows, 2, 500, 1e-9).unwrap();
        prop_assert!((m[0] - cx).abs() < 1e-3 && (m[1] - cy).abs() < 1e-3, "{:?} vs ({}, {})", m, cx, cy);
    }
}

#[test]
fn nonfinite_rows_are_skipped_and_counted_or_refused() {
    let mut rows = vec![1.0, 2.0, f32::NAN, 0.0, 3.0, f32::INFINITY, 5.0, 6.0];
    let dropped = filter_nonfinite(&mut rows, 2, NonFinitePolicy::Skip, "batch", 0).unwrap();
    assert_eq!((dropped, rows), (2, vec![1.0, 2.0, 5.0, 6.0]));
    let mut rows = vec![1.0, 2.0, 3.0, f32::NEG_INFINITY];
    match filter_nonfinite(&mut rows, 2, NonFinitePolicy::Error, "store x", 40) {
        Err(DataError::NonFinite { origin, row, column, .. }) => assert_eq!((origin.as_str(), row, column), ("store x", 41, 1)),
        other => panic!("{other:?}"),
    }
}
