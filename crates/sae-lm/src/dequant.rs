//! GGML storage types and their dequantisation to f32 (F32, F16, Q4_0, Q4_1, Q8_0), as
//! llama.cpp defines the blocks.

/// How a tensor's elements are stored (the GGML type ids this reader knows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    /// 32-bit floats.
    F32,
    /// 16-bit floats.
    F16,
    /// Blocks of 32: an f16 scale `d` and 4-bit `q`; value `d · (q − 8)`.
    Q4_0,
    /// Blocks of 32: f16 scale `d`, f16 minimum `m` and 4-bit `q`; value `d · q + m`.
    Q4_1,
    /// Blocks of 32: an f16 scale `d` and signed bytes `q`; value `d · q`.
    Q8_0,
}

impl GgmlType {
    /// The type with GGML id `id`, if this crate dequantises it.
    pub fn from_id(id: u32) -> Option<Self> {
        Some(match id {
            0 => Self::F32,
            1 => Self::F16,
            2 => Self::Q4_0,
            3 => Self::Q4_1,
            8 => Self::Q8_0,
            _ => return None,
        })
    }

    /// `(elements per block, bytes per block)`.
    pub fn block(self) -> (usize, usize) {
        match self {
            Self::F32 => (1, 4),
            Self::F16 => (1, 2),
            Self::Q4_0 => (32, 18),
            Self::Q4_1 => (32, 20),
            Self::Q8_0 => (32, 34),
        }
    }
}

/// IEEE half → f32.
pub fn f16_to_f32(bits: u16) -> f32 {
    let sign = ((bits >> 15) as u32) << 31;
    let exp = ((bits >> 10) & 0x1f) as u32;
    let man = (bits & 0x3ff) as u32;
    let out = match (exp, man) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: value m · 2^-24.
            let v = m as f32 * f32::powi(2.0, -24);
            return if sign != 0 { -v } else { v };
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 127 - 15) << 23) | (m << 13),
    };
    f32::from_bits(out)
}

/// Dequantises `bytes` of type `dtype` (a whole number of blocks) to f32.
pub fn dequantize(dtype: GgmlType, bytes: &[u8]) -> Vec<f32> {
    let (per, size) = dtype.block();
    let mut out = Vec::with_capacity(bytes.len() / size * per);
    let half = |b: &[u8]| f16_to_f32(u16::from_le_bytes([b[0], b[1]]));
    for block in bytes.chunks_exact(size) {
        match dtype {
            GgmlType::F32 => out.push(f32::from_le_bytes(block.try_into().expect("4 bytes"))),
            GgmlType::F16 => out.push(half(block)),
            GgmlType::Q4_0 => {
                let d = half(block);
                let qs = &block[2..18];
                out.extend(qs.iter().map(|q| ((q & 0x0f) as f32 - 8.0) * d));
                out.extend(qs.iter().map(|q| ((q >> 4) as f32 - 8.0) * d));
            }
            GgmlType::Q4_1 => {
                let (d, m) = (half(block), half(&block[2..]));
                let qs = &block[4..20];
                out.extend(qs.iter().map(|q| (q & 0x0f) as f32 * d + m));
                out.extend(qs.iter().map(|q| (q >> 4) as f32 * d + m));
            }
            GgmlType::Q8_0 => {
                let d = half(block);
                out.extend(block[2..34].iter().map(|&q| q as i8 as f32 * d));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn half_floats_convert_exactly() {
        for (bits, v) in [(0x3c00u16, 1.0f32), (0xc000, -2.0), (0x3555, 0.333_251_95), (0x7bff, 65504.0), (0x0001, 5.960_464_5e-8), (0x0000, 0.0)] {
            assert_eq!(f16_to_f32(bits), v, "{bits:#06x}");
        }
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        // Against the `half` crate over every bit pattern that is not NaN.
        for bits in 0..=u16::MAX {
            let want = half::f16::from_bits(bits).to_f32();
            if !want.is_nan() {
                assert_eq!(f16_to_f32(bits).to_bits(), want.to_bits(), "{bits:#06x}");
            }
        }
    }

    /// Blocks built by hand: Q4_1 with d = 0.5, m = −1 and nibbles 0..15 (low) / 15..0 (high);
    /// Q8_0 with d = 2 and bytes −16..15; Q4_0 with d = 1.
    #[test]
    fn quantised_blocks_dequantise_as_ggml_defines_them() {
        let mut q41 = vec![0x00, 0x38, 0x00, 0xbc]; // d = 0.5, m = -1
        q41.extend((0..16u8).map(|j| j | ((15 - j) << 4)));
        let v = dequantize(GgmlType::Q4_1, &q41);
        let want: Vec<f32> = (0..16).map(|j| j as f32 * 0.5 - 1.0).chain((0..16).map(|j| (15 - j) as f32 * 0.5 - 1.0)).collect();
        assert_eq!(v, want);
        let mut q8 = vec![0x00, 0x40]; // d = 2
        q8.extend((-16i8..16).map(|q| q as u8));
        assert_eq!(dequantize(GgmlType::Q8_0, &q8), (-16..16).map(|q| q as f32 * 2.0).collect::<Vec<_>>());
        let mut q40 = vec![0x00, 0x3c];
        q40.extend((0..16u8).map(|j| j | (j << 4)));
        let v = dequantize(GgmlType::Q4_0, &q40);
        assert_eq!(v[..16], (0..16).map(|j| j as f32 - 8.0).collect::<Vec<_>>()[..]);
        assert_eq!(v[16..], v[..16]);
    }
}
