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

#[cfg(test)]
mod tests {
    use super::*;

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
