//! `.npy` arrays (NumPy format 1.0–3.0): read f32/f64/f16 little-endian C-order arrays as f32;
//! write f32. Used for activations, codes and reconstructions on the command line, and inside
//! Gemma Scope's `params.npz`.

use std::path::Path;

use half::f16;

use super::atomic::{read_file, write_atomic};
use crate::error::{Result, SaeError};

const MAGIC: &[u8] = b"\x93NUMPY";

/// A host array: shape and row-major f32 values.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    /// Shape.
    pub shape: Vec<usize>,
    /// Values in C order.
    pub values: Vec<f32>,
}

impl NpyArray {
    /// The shape as `[rows, cols]`, or an error naming `origin` if the array is not 2-D.
    pub fn as_matrix_shape(&self, origin: &Path, name: &str) -> Result<[usize; 2]> {
        match self.shape.as_slice() {
            [r, c] => Ok([*r, *c]),
            _ => Err(SaeError::ShapeMismatch {
                path: origin.to_path_buf(),
                name: name.to_string(),
                actual: self.shape.clone(),
                expected: vec![0, 0],
            }),
        }
    }
}

/// Reads an `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray> {
    parse_npy(&read_file(path)?, path)
}

/// Parses `.npy` bytes; `origin` names the file (or `archive:member`) in errors.
pub fn parse_npy(bytes: &[u8], origin: &Path) -> Result<NpyArray> {
    let bad = |reason: String| SaeError::corrupt(origin, "npy", reason);
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(bad("missing NumPy magic header".into()));
    }
    let major = bytes[6];
    let (header_len, start): (usize, usize) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(bad("truncated header".into()));
            }
            (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12)
        }
        v => return Err(bad(format!("unsupported format version {v}"))),
    };
    let end = start.checked_add(header_len).filter(|e| *e <= bytes.len()).ok_or_else(|| bad("truncated header".into()))?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad("header is not text".into()))?;
    let descr = dict_value(header, "descr").ok_or_else(|| bad("header has no `descr`".into()))?;
    let fortran = dict_value(header, "fortran_order").ok_or_else(|| bad("header has no `fortran_order`".into()))?;
    let shape_text = dict_value(header, "shape").ok_or_else(|| bad("header has no `shape`".into()))?;
    if fortran.trim() != "False" {
        return Err(bad("Fortran-order arrays are not supported; save with np.ascontiguousarray".into()));
    }
    let shape = shape_text
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad(format!("bad shape entry `{s}`"))))
        .collect::<Result<Vec<_>>>()?;
    let count: usize = shape.iter().product();
    let descr = descr.trim().trim_matches('\'').trim_matches('"');
    let data = &bytes[end..];
    let width = match descr {
        "<f4" => 4,
        "<f8" => 8,
        "<f2" => 2,
        other => {
            return Err(SaeError::UnsupportedDtype {
                path: origin.to_path_buf(),
                name: "array".into(),
                dtype: other.to_string(),
                supported: "<f4, <f8, <f2 (little-endian floats)",
            });
        }
    };
    let needed = count.checked_mul(width).ok_or_else(|| bad("shape too large".into()))?;
    if data.len() < needed {
        return Err(bad(format!("truncated: shape {shape:?} needs {needed} bytes of data, file has {}", data.len())));
    }
    let data = &data[..needed];
    let values = match width {
        4 => data.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect(),
        8 => data
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]) as f32)
            .collect(),
        _ => data.chunks_exact(2).map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32()).collect(),
    };
    Ok(NpyArray { shape, values })
}

/// Extracts the text of `'key': value` from a NumPy header dict (value ends at the next
/// top-level comma or closing brace).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let pat_single = format!("'{key}':");
    let pat_double = format!("\"{key}\":");
    let pos = header.find(&pat_single).map(|p| p + pat_single.len()).or_else(|| header.find(&pat_double).map(|p| p + pat_double.len()))?;
    let rest = &header[pos..];
    let mut depth = 0i32;
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(&rest[..i]),
            _ => {}
        }
    }
    None
}

/// Serialises an f32 array as `.npy` (format 1.0) bytes.
pub fn npy_bytes(shape: &[usize], values: &[f32]) -> Vec<u8> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        _ => format!("({})", shape.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape_text}, }}");
    let unpadded = MAGIC.len() + 2 + 2 + header.len() + 1;
    header.push_str(&" ".repeat((64 - unpadded % 64) % 64));
    header.push('\n');
    let mut out = Vec::with_capacity(10 + header.len() + values.len() * 4);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Writes an f32 array to `path` atomically.
pub fn write_npy(path: &Path, shape: &[usize], values: &[f32]) -> Result<()> {
    write_atomic(path, &npy_bytes(shape, values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_header_alignment() {
        let bytes = npy_bytes(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let header_end = 10 + u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!(header_end % 64, 0);
        let a = parse_npy(&bytes, Path::new("x.npy")).unwrap();
        assert_eq!(a.shape, vec![2, 3]);
        assert_eq!(a.values, vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn truncated_data_is_a_typed_error() {
        let bytes = npy_bytes(&[4, 4], &[0.5; 16]);
        let err = parse_npy(&bytes[..bytes.len() - 3], Path::new("t.npy")).unwrap_err();
        assert!(matches!(err, SaeError::CorruptFile { .. }), "{err}");
        assert!(err.to_string().contains("t.npy"));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert!(matches!(parse_npy(b"hello world", Path::new("g")), Err(SaeError::CorruptFile { .. })));
    }
}
