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
    let entries = header_dict(header).map_err(bad)?;
    let get = |key: &str| entries.iter().find(|(k, _)| k == key).map(|(_, v)| *v).ok_or_else(|| bad(format!("header has no `{key}`")));
    let (descr, fortran, shape_text) = (get("descr")?, get("fortran_order")?, get("shape")?);
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
    let count = shape.iter().try_fold(1usize, |n, d| n.checked_mul(*d)).ok_or_else(|| bad(format!("shape {shape:?} has more elements than memory can address")))?;
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

/// The keys of a NumPy header dict.
const HEADER_KEYS: [&str; 3] = ["descr", "fortran_order", "shape"];

/// The `(key, value text)` entries of a NumPy header dict (`{'descr': '<f4', 'fortran_order':
/// False, 'shape': (3, 4), }`), split at top-level commas. NumPy writes exactly the three
/// [`HEADER_KEYS`]; a header with another key, or with one twice (where Python's dict would keep
/// the last and a first-match scan the first), is refused rather than guessed at.
fn header_dict(header: &str) -> std::result::Result<Vec<(String, &str)>, String> {
    let body = header.trim().strip_prefix('{').and_then(|b| b.strip_suffix('}')).ok_or("header is not a dict")?;
    let mut entries: Vec<(String, &str)> = Vec::new();
    let (mut depth, mut from) = (0i32, 0usize);
    let mut pieces = Vec::new();
    for (i, ch) in body.char_indices() {
        match ch {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                pieces.push(&body[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    pieces.push(&body[from..]);
    for piece in pieces.into_iter().filter(|p| !p.trim().is_empty()) {
        let (key, value) = piece.split_once(':').ok_or_else(|| format!("header entry `{}` has no value", piece.trim()))?;
        let key = key.trim();
        let unquoted = key.strip_prefix('\'').and_then(|k| k.strip_suffix('\'')).or_else(|| key.strip_prefix('"').and_then(|k| k.strip_suffix('"')));
        let key = unquoted.ok_or_else(|| format!("header key {key} is not a quoted string"))?;
        if !HEADER_KEYS.contains(&key) {
            return Err(format!("unknown header key `{key}` (a NumPy header has {})", HEADER_KEYS.join(", ")));
        }
        if entries.iter().any(|(k, _)| k == key) {
            return Err(format!("header key `{key}` appears twice"));
        }
        entries.push((key.to_string(), value));
    }
    Ok(entries)
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

    /// A version-1 `.npy` with `header` (padded as NumPy pads it) and `data`.
    fn with_header(header: &str, data: &[u8]) -> Vec<u8> {
        let mut h = header.to_string();
        while (10 + h.len() + 1) % 64 != 0 {
            h.push(' ');
        }
        h.push('\n');
        let mut out = MAGIC.to_vec();
        out.extend_from_slice(&[1, 0]);
        out.extend_from_slice(&(h.len() as u16).to_le_bytes());
        out.extend_from_slice(h.as_bytes());
        out.extend_from_slice(data);
        out
    }

    #[test]
    fn overflowing_shapes_duplicate_and_unknown_keys_are_typed_errors() {
        let origin = Path::new("x.npy");
        let ok = with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), }", &[0; 8]);
        assert_eq!(parse_npy(&ok, origin).unwrap().values, vec![0.0, 0.0]);
        // 2^32 · 2^32 wraps to 0 in a plain multiply, which an empty data section would satisfy.
        let huge = with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (4294967296, 4294967296), }", &[]);
        let err = parse_npy(&huge, origin).unwrap_err().to_string();
        assert!(err.contains("more elements than memory"), "{err}");
        let twice = with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'shape': (1,), }", &[0; 8]);
        assert!(parse_npy(&twice, origin).unwrap_err().to_string().contains("appears twice"));
        let extra = with_header("{'descr': '<f4', 'fortran_order': False, 'shape': (2,), 'align': True}", &[0; 8]);
        assert!(parse_npy(&extra, origin).unwrap_err().to_string().contains("unknown header key `align`"));
        let not_dict = with_header("'descr': '<f4'", &[]);
        assert!(parse_npy(&not_dict, origin).unwrap_err().to_string().contains("not a dict"));
    }

    #[test]
    fn garbage_is_a_typed_error() {
        assert!(matches!(parse_npy(b"hello world", Path::new("g")), Err(SaeError::CorruptFile { .. })));
    }
}
