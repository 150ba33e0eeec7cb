//! Checks on user-supplied activations.

use crate::error::{Result, SaeError};

/// Returns an error if any value is NaN or infinite, naming the first offending row and column
/// of a row-major `[_, cols]` array and the source (a file path or `<memory>`).
pub fn check_finite(values: &[f32], cols: usize, source_name: &str) -> Result<()> {
    let mut first = None;
    let mut count = 0;
    for (i, v) in values.iter().enumerate() {
        if !v.is_finite() {
            count += 1;
            first.get_or_insert(i);
        }
    }
    match first {
        None => Ok(()),
        Some(i) => Err(SaeError::NonFinite {
            source_name: source_name.to_string(),
            count,
            row: i / cols.max(1),
            col: i % cols.max(1),
        }),
    }
}

/// Drops, in place, every row of the row-major `rows` (width `d`) that holds a NaN or an
/// infinity; returns how many were dropped.
pub fn drop_nonfinite_rows(rows: &mut Vec<f32>, d: usize) -> usize {
    if d == 0 || rows.iter().all(|v| v.is_finite()) {
        return 0;
    }
    let before = rows.len() / d;
    let kept: Vec<f32> = rows.chunks_exact(d).filter(|r| r.iter().all(|v| v.is_finite())).flatten().copied().collect();
    *rows = kept;
    before - rows.len() / d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_with_a_nan_or_inf_are_dropped_and_counted() {
        let mut rows = vec![1.0, 2.0, f32::NAN, 4.0, 5.0, 6.0, 7.0, f32::INFINITY];
        assert_eq!(drop_nonfinite_rows(&mut rows, 2), 2);
        assert_eq!(rows, vec![1.0, 2.0, 5.0, 6.0]);
    }

    #[test]
    fn reports_first_position_and_count() {
        let v = [0.0, 1.0, f32::NAN, 2.0, f32::INFINITY, 3.0];
        match check_finite(&v, 3, "x.npy") {
            Err(SaeError::NonFinite { count, row, col, .. }) => assert_eq!((count, row, col), (2, 0, 2)),
            other => panic!("{other:?}"),
        }
        assert!(check_finite(&[1.0, 2.0], 2, "ok").is_ok());
    }
}
