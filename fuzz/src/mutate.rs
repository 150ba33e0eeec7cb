//! The mutations: byte-level edits that keep most of a valid file and break one thing, the way
//! a truncated download, a bit flip or a hostile edit does. Every choice comes from a seeded
//! SplitMix64, so a run is replayed exactly by its seed and execution count.

use sae_core::rng::SplitMix64;

/// Numbers that break size arithmetic and float parsing when spliced into text.
const TEXT_NUMBERS: [&str; 12] = ["0", "-1", "1e309", "NaN", "-0", "18446744073709551616", "9223372036854775807", "4294967296", "1.5", "[]", "{}", "null"];

/// Little-endian integers at the edges of their types, for binary headers.
const EDGE_U64: [u64; 8] = [0, 1, 0x7f, 0xff, 0xffff_ffff, 1 << 32, u64::MAX / 2, u64::MAX];

fn below(rng: &mut SplitMix64, n: usize) -> usize {
    if n == 0 { 0 } else { (rng.next_u64() % n as u64) as usize }
}

/// Applies one to four mutations to `data`, splicing from `corpus` now and then.
pub fn mutate(rng: &mut SplitMix64, data: &mut Vec<u8>, corpus: &[Vec<u8>]) {
    for _ in 0..1 + below(rng, 4) {
        let len = data.len();
        match below(rng, 9) {
            0 if len > 0 => {
                let i = below(rng, len);
                data[i] ^= 1 << below(rng, 8);
            }
            1 if len > 0 => {
                let i = below(rng, len);
                data[i] = rng.next_u64() as u8;
            }
            2 if len >= 8 => {
                let i = below(rng, len - 7);
                let width = [1usize, 2, 4, 8][below(rng, 4)];
                let v = EDGE_U64[below(rng, EDGE_U64.len())].to_le_bytes();
                data[i..i + width].copy_from_slice(&v[..width]);
            }
            3 if len > 0 => {
                let a = below(rng, len);
                let b = (a + 1 + below(rng, 64)).min(len);
                data.drain(a..b);
            }
            4 if len > 0 => {
                let a = below(rng, len);
                let b = (a + 1 + below(rng, 64)).min(len);
                let piece = data[a..b].to_vec();
                let at = below(rng, len + 1);
                data.splice(at..at, piece);
            }
            5 => data.truncate(below(rng, len + 1)),
            6 if !corpus.is_empty() => {
                let other = &corpus[below(rng, corpus.len())];
                if !other.is_empty() {
                    let a = below(rng, other.len());
                    let b = (a + 1 + below(rng, 256)).min(other.len());
                    let at = below(rng, len + 1);
                    data.splice(at..at, other[a..b].iter().copied());
                }
            }
            7 => {
                // Replace a run of digits (a size, a shape, a count) with an edge number.
                let digits: Vec<usize> = (0..len).filter(|&i| data[i].is_ascii_digit()).collect();
                if !digits.is_empty() {
                    let start = digits[below(rng, digits.len())];
                    let end = (start..len).find(|&i| !data[i].is_ascii_digit()).unwrap_or(len);
                    let with = TEXT_NUMBERS[below(rng, TEXT_NUMBERS.len())].as_bytes().to_vec();
                    data.splice(start..end, with);
                }
            }
            _ => {
                // Duplicate a JSON key or line (`"k": 1` twice), as hand edits do.
                if let Some(nl) = data.iter().position(|&b| b == b',') {
                    let a = data[..nl].iter().rposition(|&b| b == b'{' || b == b',').map_or(0, |p| p + 1);
                    let piece = data[a..=nl].to_vec();
                    data.splice(a..a, piece);
                }
            }
        }
    }
}
