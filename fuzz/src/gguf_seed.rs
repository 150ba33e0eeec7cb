//! A small, valid GGUF file (a byte-level BPE tokenizer in its metadata and one tensor of each
//! supported type) as the seed of the `gguf` target: the real SmolLM2 file is 90 MB.

/// GGUF metadata value types used here.
const U32: u32 = 4;
const BOOL: u32 = 7;
const STRING: u32 = 8;
const ARRAY: u32 = 9;
const I32: u32 = 5;

fn string(f: &mut Vec<u8>, s: &str) {
    f.extend((s.len() as u64).to_le_bytes());
    f.extend(s.as_bytes());
}

fn key(f: &mut Vec<u8>, k: &str, ty: u32) {
    string(f, k);
    f.extend(ty.to_le_bytes());
}

fn strings(f: &mut Vec<u8>, k: &str, items: &[&str]) {
    key(f, k, ARRAY);
    f.extend(STRING.to_le_bytes());
    f.extend((items.len() as u64).to_le_bytes());
    for s in items {
        string(f, s);
    }
}

/// The file: metadata (architecture, a five-token vocabulary with one merge, token types, BOS),
/// then tensors F32 `[2, 4]`, F16 `[8]`, Q4_0, Q4_1 and Q8_0 `[32]` at 32-byte alignment.
pub fn tiny_llama() -> Vec<u8> {
    // (name, GGML type, elements, bytes)
    let tensors: [(&str, u32, usize, usize); 5] = [("w.f32", 0, 8, 32), ("w.f16", 1, 8, 16), ("w.q4_0", 2, 32, 18), ("w.q4_1", 3, 32, 20), ("w.q8_0", 8, 32, 34)];
    let mut f = b"GGUF".to_vec();
    f.extend(3u32.to_le_bytes());
    f.extend((tensors.len() as u64).to_le_bytes());
    f.extend(7u64.to_le_bytes());
    key(&mut f, "general.architecture", STRING);
    string(&mut f, "llama");
    key(&mut f, "tokenizer.ggml.model", STRING);
    string(&mut f, "gpt2");
    strings(&mut f, "tokenizer.ggml.tokens", &["a", "b", "ab", "Ġ", "<s>"]);
    strings(&mut f, "tokenizer.ggml.merges", &["a b"]);
    key(&mut f, "tokenizer.ggml.token_type", ARRAY);
    f.extend(I32.to_le_bytes());
    f.extend(5u64.to_le_bytes());
    for t in [1i32, 1, 1, 1, 3] {
        f.extend(t.to_le_bytes());
    }
    key(&mut f, "tokenizer.ggml.bos_token_id", U32);
    f.extend(4u32.to_le_bytes());
    key(&mut f, "tokenizer.ggml.add_bos_token", BOOL);
    f.push(1);
    let mut offset = 0u64;
    let mut data = Vec::new();
    for (i, (name, ty, n, bytes)) in tensors.iter().enumerate() {
        string(&mut f, name);
        if *n == 8 && i == 0 {
            f.extend(2u32.to_le_bytes());
            f.extend(4u64.to_le_bytes());
            f.extend(2u64.to_le_bytes());
        } else {
            f.extend(1u32.to_le_bytes());
            f.extend((*n as u64).to_le_bytes());
        }
        f.extend(ty.to_le_bytes());
        f.extend(offset.to_le_bytes());
        // Half-precision 1.0 as every scale, small nibbles and bytes as the values.
        let mut t: Vec<u8> = (0..*bytes).map(|b| (b % 7) as u8).collect();
        match ty {
            0 => t = (0..8).flat_map(|v| (v as f32 * 0.5).to_le_bytes()).collect(),
            1 => t = (0..8).flat_map(|_| 0x3c00u16.to_le_bytes()).collect(),
            2 | 8 => t[..2].copy_from_slice(&0x3c00u16.to_le_bytes()),
            _ => {
                t[..2].copy_from_slice(&0x3c00u16.to_le_bytes());
                t[2..4].copy_from_slice(&0x3c00u16.to_le_bytes());
            }
        }
        data.extend(&t);
        while data.len() % 32 != 0 {
            data.push(0);
        }
        offset = data.len() as u64;
    }
    while f.len() % 32 != 0 {
        f.push(0);
    }
    f.extend(data);
    f
}
