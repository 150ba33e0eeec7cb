//! A reader for GGUF files (versions 2 and 3, the format of llama.cpp): the metadata key/values,
//! the tensor directory, and the tensors dequantised to f32 (F32, F16, Q4_0, Q4_1, Q8_0).
//!
//! Every length and offset read from the file is checked against the file's size before it is
//! used, so a truncated or corrupt file is a [`LmError::BadFile`] naming the byte offset and what
//! was being read, never a panic or a huge allocation.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::dequant::{GgmlType, dequantize};
use crate::error::{LmError, Result};

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    /// Any unsigned integer type (u8 … u64).
    Uint(u64),
    /// Any signed integer type (i8 … i64).
    Int(i64),
    /// f32 or f64.
    Float(f64),
    /// A boolean.
    Bool(bool),
    /// A UTF-8 string.
    Str(String),
    /// An array (of one element type).
    Array(Vec<GgufValue>),
}

impl GgufValue {
    /// The value as an unsigned integer, if it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            Self::Uint(v) => Some(v),
            Self::Int(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }
    /// The value as a float, if it is a number.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            Self::Float(v) => Some(v),
            Self::Uint(v) => Some(v as f64),
            Self::Int(v) => Some(v as f64),
            _ => None,
        }
    }
    /// The value as a string, if it is one.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::Str(s) => Some(s),
            _ => None,
        }
    }
}

/// One entry of the tensor directory.
#[derive(Debug, Clone)]
pub struct GgufTensorInfo {
    /// Tensor name (`blk.0.attn_q.weight`).
    pub name: String,
    /// Shape, outermost first (the file stores it innermost first; this is reversed, so a
    /// linear layer's weight reads `(out, in)` as in PyTorch).
    pub shape: Vec<usize>,
    /// Storage type.
    pub dtype: GgmlType,
    /// Offset of the data from the start of the file.
    pub offset: usize,
    /// Size of the data in bytes.
    pub bytes: usize,
}

/// A GGUF file read into memory.
#[derive(Debug)]
pub struct GgufFile {
    path: PathBuf,
    data: Vec<u8>,
    /// Format version (2 or 3).
    pub version: u32,
    /// Metadata, by key.
    pub metadata: BTreeMap<String, GgufValue>,
    /// The tensor directory, by name.
    pub tensors: BTreeMap<String, GgufTensorInfo>,
}

struct Cursor<'a> {
    path: &'a Path,
    data: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn bad(&self, what: &str) -> LmError {
        LmError::BadFile { path: self.path.into(), reason: format!("GGUF: {what} at byte {} (file of {} bytes: truncated or corrupt)", self.pos, self.data.len()) }
    }
    fn take(&mut self, n: usize, what: &str) -> Result<&[u8]> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.data.len()).ok_or_else(|| self.bad(&format!("{what} of {n} bytes runs past the end")))?;
        let s = &self.data[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn u32(&mut self, what: &str) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4, what)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self, what: &str) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8, what)?.try_into().expect("8 bytes")))
    }
    /// A count that must fit in what is left of the file, `min_bytes` per item.
    fn count(&mut self, what: &str, min_bytes: usize) -> Result<usize> {
        let n = self.u64(what)?;
        let left = (self.data.len() - self.pos) as u64;
        if n.saturating_mul(min_bytes.max(1) as u64) > left {
            return Err(self.bad(&format!("{what} {n} is more than the rest of the file can hold")));
        }
        Ok(n as usize)
    }
    fn string(&mut self, what: &str) -> Result<String> {
        let n = self.count(&format!("length of {what}"), 1)?;
        let bytes = self.take(n, what)?.to_vec();
        String::from_utf8(bytes).map_err(|_| self.bad(&format!("{what} is not UTF-8")))
    }
    fn value(&mut self, ty: u32, what: &str, depth: usize) -> Result<GgufValue> {
        Ok(match ty {
            0 => GgufValue::Uint(self.take(1, what)?[0] as u64),
            1 => GgufValue::Int(self.take(1, what)?[0] as i8 as i64),
            2 => GgufValue::Uint(u16::from_le_bytes(self.take(2, what)?.try_into().expect("2")) as u64),
            3 => GgufValue::Int(i16::from_le_bytes(self.take(2, what)?.try_into().expect("2")) as i64),
            4 => GgufValue::Uint(self.u32(what)? as u64),
            5 => GgufValue::Int(self.u32(what)? as i32 as i64),
            6 => GgufValue::Float(f32::from_bits(self.u32(what)?) as f64),
            7 => GgufValue::Bool(self.take(1, what)?[0] != 0),
            8 => GgufValue::Str(self.string(what)?),
            9 => {
                if depth > 4 {
                    return Err(self.bad(&format!("{what}: arrays nested too deep")));
                }
                let inner = self.u32(what)?;
                let n = self.count(&format!("length of {what}"), 1)?;
                let mut items = Vec::with_capacity(n.min(1 << 20));
                for _ in 0..n {
                    items.push(self.value(inner, what, depth + 1)?);
                }
                GgufValue::Array(items)
            }
            10 => GgufValue::Uint(self.u64(what)?),
            11 => GgufValue::Int(self.u64(what)? as i64),
            12 => GgufValue::Float(f64::from_bits(self.u64(what)?)),
            other => return Err(self.bad(&format!("{what}: unknown value type {other}"))),
        })
    }
}

impl GgufFile {
    /// Reads and checks the file at `path`.
    pub fn open(path: &Path) -> Result<Self> {
        let data = std::fs::read(path).map_err(|e| LmError::BadFile { path: path.into(), reason: e.to_string() })?;
        Self::parse(path, data)
    }

    /// Parses GGUF bytes; `path` names them in errors.
    pub fn parse(path: &Path, data: Vec<u8>) -> Result<Self> {
        let mut c = Cursor { path, data: &data, pos: 0 };
        if c.take(4, "magic")? != b"GGUF" {
            return Err(LmError::BadFile { path: path.into(), reason: "not a GGUF file (no `GGUF` magic)".into() });
        }
        let version = c.u32("version")?;
        if !(2..=3).contains(&version) {
            return Err(LmError::BadFile { path: path.into(), reason: format!("GGUF version {version} is not supported (2 and 3 are)") });
        }
        let n_tensors = c.count("tensor count", 24)?;
        let n_kv = c.count("metadata count", 12)?;
        let mut metadata = BTreeMap::new();
        for _ in 0..n_kv {
            let key = c.string("metadata key")?;
            let ty = c.u32(&key)?;
            let v = c.value(ty, &key, 0)?;
            metadata.insert(key, v);
        }
        let mut infos = Vec::with_capacity(n_tensors);
        for _ in 0..n_tensors {
            let name = c.string("tensor name")?;
            let n_dims = c.u32(&name)? as usize;
            if n_dims > 8 {
                return Err(c.bad(&format!("tensor `{name}` has {n_dims} dimensions")));
            }
            let mut shape = Vec::with_capacity(n_dims);
            for _ in 0..n_dims {
                shape.push(c.u64(&name)? as usize);
            }
            shape.reverse();
            let ty = c.u32(&name)?;
            let dtype = GgmlType::from_id(ty).ok_or_else(|| c.bad(&format!("tensor `{name}` has GGML type {ty}, which this reader does not dequantise (F32, F16, Q4_0, Q4_1 and Q8_0 are supported)")))?;
            let offset = c.u64(&name)? as usize;
            infos.push((name, shape, dtype, offset));
        }
        let align = match metadata.get("general.alignment") {
            Some(v) => v.as_u64().filter(|&a| a > 0 && a <= 1 << 16).ok_or_else(|| c.bad("general.alignment is not a small positive integer"))? as usize,
            None => 32,
        };
        let start = c.pos.div_ceil(align) * align;
        let mut tensors = BTreeMap::new();
        for (name, shape, dtype, rel) in infos {
            let (per, size) = dtype.block();
            let n = shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d)).ok_or_else(|| c.bad(&format!("tensor `{name}`: shape {shape:?} overflows")))?;
            if n % per != 0 {
                return Err(c.bad(&format!("tensor `{name}`: {n} elements is not a whole number of {per}-element blocks")));
            }
            let bytes = (n / per).checked_mul(size).ok_or_else(|| c.bad(&format!("tensor `{name}`: {n} elements overflow a byte count")))?;
            if rel % align != 0 {
                return Err(c.bad(&format!("tensor `{name}`: offset {rel} is not a multiple of the alignment {align}")));
            }
            let offset = start.checked_add(rel).ok_or_else(|| c.bad(&format!("tensor `{name}`: offset overflows")))?;
            if offset.checked_add(bytes).is_none_or(|e| e > data.len()) {
                return Err(LmError::BadFile {
                    path: path.into(),
                    reason: format!("GGUF: tensor `{name}` ({bytes} bytes at byte {offset}) runs past the end of the file ({} bytes): truncated or corrupt", data.len()),
                });
            }
            tensors.insert(name.clone(), GgufTensorInfo { name, shape, dtype, offset, bytes });
        }
        // Two tensors sharing bytes would both load, one of them garbage.
        let mut spans: Vec<(usize, usize, &str)> = tensors.values().map(|t| (t.offset, t.offset + t.bytes, t.name.as_str())).collect();
        spans.sort();
        if let Some(w) = spans.windows(2).find(|w| w[1].0 < w[0].1) {
            return Err(LmError::BadFile { path: path.into(), reason: format!("GGUF: tensors `{}` and `{}` overlap (bytes {}..{} and {}..{})", w[0].2, w[1].2, w[0].0, w[0].1, w[1].0, w[1].1) });
        }
        Ok(Self { path: path.into(), data, version, metadata, tensors })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The metadata value `key`, or a [`LmError::BadFile`] naming it.
    pub fn meta(&self, key: &str) -> Result<&GgufValue> {
        self.metadata.get(key).ok_or_else(|| LmError::BadFile { path: self.path.clone(), reason: format!("GGUF: no metadata key `{key}`") })
    }

    /// The metadata value `key` as an unsigned integer.
    pub fn meta_usize(&self, key: &str) -> Result<usize> {
        self.meta(key)?.as_u64().map(|v| v as usize).ok_or_else(|| LmError::BadFile { path: self.path.clone(), reason: format!("GGUF: `{key}` is not an unsigned integer") })
    }

    /// The metadata value `key` as a float.
    pub fn meta_f64(&self, key: &str) -> Result<f64> {
        self.meta(key)?.as_f64().ok_or_else(|| LmError::BadFile { path: self.path.clone(), reason: format!("GGUF: `{key}` is not a number") })
    }

    /// The metadata array `key` as strings.
    pub fn meta_strings(&self, key: &str) -> Result<Vec<&str>> {
        let bad = || LmError::BadFile { path: self.path.clone(), reason: format!("GGUF: `{key}` is not an array of strings") };
        match self.meta(key)? {
            GgufValue::Array(items) => items.iter().map(|v| v.as_str().ok_or_else(bad)).collect(),
            _ => Err(bad()),
        }
    }

    /// The tensor `name` dequantised to f32, row-major in [`GgufTensorInfo::shape`], after
    /// checking that the shape is `shape`.
    pub fn tensor_f32(&self, name: &str, shape: &[usize]) -> Result<Vec<f32>> {
        let info = self.tensors.get(name).ok_or_else(|| sae_core::SaeError::MissingTensor { path: self.path.clone(), name: name.into(), architecture: "GGUF model".into() })?;
        if info.shape != shape {
            return Err(sae_core::SaeError::ShapeMismatch { path: self.path.clone(), name: name.into(), actual: info.shape.clone(), expected: shape.to_vec() }.into());
        }
        let values = dequantize(info.dtype, &self.data[info.offset..info.offset + info.bytes]);
        // Block scales or floats read as the wrong type show up as NaN or infinities.
        if let Some(i) = values.iter().position(|v| !v.is_finite()) {
            return Err(LmError::BadFile { path: self.path.clone(), reason: format!("GGUF: tensor `{name}` ({:?}) dequantises to a non-finite value at element {i}: corrupt, or not of the type it says", info.dtype) });
        }
        Ok(values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny_file() -> Vec<u8> {
        let mut f = b"GGUF".to_vec();
        f.extend(3u32.to_le_bytes());
        f.extend(1u64.to_le_bytes()); // tensors
        f.extend(2u64.to_le_bytes()); // metadata
        let s = |f: &mut Vec<u8>, t: &str| {
            f.extend((t.len() as u64).to_le_bytes());
            f.extend(t.as_bytes());
        };
        s(&mut f, "general.architecture");
        f.extend(8u32.to_le_bytes());
        s(&mut f, "llama");
        s(&mut f, "tokenizer.ggml.tokens");
        f.extend(9u32.to_le_bytes());
        f.extend(8u32.to_le_bytes());
        f.extend(2u64.to_le_bytes());
        s(&mut f, "a");
        s(&mut f, "b");
        s(&mut f, "w");
        f.extend(2u32.to_le_bytes());
        f.extend(3u64.to_le_bytes()); // innermost: 3 columns
        f.extend(2u64.to_le_bytes()); // 2 rows
        f.extend(0u32.to_le_bytes()); // F32
        f.extend(0u64.to_le_bytes());
        while !f.len().is_multiple_of(32) {
            f.push(0);
        }
        for v in 1..=6 {
            f.extend((v as f32).to_le_bytes());
        }
        f
    }

    /// A file with two F32 tensors of 4 values, the second at byte `second` of the data.
    fn two_tensors(second: u64) -> Vec<u8> {
        let mut f = b"GGUF".to_vec();
        f.extend(3u32.to_le_bytes());
        f.extend(2u64.to_le_bytes());
        f.extend(0u64.to_le_bytes());
        for (name, at) in [("a", 0u64), ("b", second)] {
            f.extend(1u64.to_le_bytes());
            f.extend(name.as_bytes());
            f.extend(1u32.to_le_bytes());
            f.extend(4u64.to_le_bytes());
            f.extend(0u32.to_le_bytes());
            f.extend(at.to_le_bytes());
        }
        while !f.len().is_multiple_of(32) {
            f.push(0);
        }
        f.extend(std::iter::repeat_n(0u8, 64));
        f
    }

    #[test]
    fn overlapping_tensors_misaligned_offsets_and_non_finite_values_are_errors() {
        assert!(GgufFile::parse(Path::new("t.gguf"), two_tensors(32)).is_ok());
        let e = GgufFile::parse(Path::new("t.gguf"), two_tensors(0)).unwrap_err().to_string();
        assert!(e.contains("`a` and `b` overlap"), "{e}");
        let e = GgufFile::parse(Path::new("t.gguf"), two_tensors(20)).unwrap_err().to_string();
        assert!(e.contains("not a multiple of the alignment"), "{e}");
        let mut nan = tiny_file();
        let n = nan.len();
        nan[n - 4..].copy_from_slice(&f32::NAN.to_le_bytes());
        let g = GgufFile::parse(Path::new("t.gguf"), nan).unwrap();
        let e = g.tensor_f32("w", &[2, 3]).unwrap_err().to_string();
        assert!(e.contains("non-finite value at element 5"), "{e}");
    }

    #[test]
    fn a_hand_built_file_reads_back_and_every_truncation_is_an_error() {
        let bytes = tiny_file();
        let g = GgufFile::parse(Path::new("t.gguf"), bytes.clone()).unwrap();
        assert_eq!(g.meta("general.architecture").unwrap().as_str(), Some("llama"));
        assert_eq!(g.meta_strings("tokenizer.ggml.tokens").unwrap(), vec!["a", "b"]);
        assert_eq!(g.tensor_f32("w", &[2, 3]).unwrap(), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        assert!(matches!(g.tensor_f32("w", &[3, 2]), Err(LmError::Core(sae_core::SaeError::ShapeMismatch { .. }))));
        assert!(g.tensor_f32("nope", &[1]).is_err());
        for cut in 0..bytes.len() {
            let r = GgufFile::parse(Path::new("t.gguf"), bytes[..cut].to_vec());
            assert!(matches!(r, Err(LmError::BadFile { .. })), "cut at {cut} was accepted");
        }
        // A corrupt length (a string of 2^60 bytes) is an error, not an allocation.
        let mut corrupt = bytes.clone();
        corrupt[24..32].copy_from_slice(&(1u64 << 60).to_le_bytes());
        let e = GgufFile::parse(Path::new("t.gguf"), corrupt).unwrap_err().to_string();
        assert!(e.contains("t.gguf") && e.contains("metadata key"), "{e}");
        let mut wrong = bytes;
        wrong[0] = b'X';
        assert!(GgufFile::parse(Path::new("t.gguf"), wrong).unwrap_err().to_string().contains("magic"));
    }
}
