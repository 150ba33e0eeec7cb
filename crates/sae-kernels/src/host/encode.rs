//! The TopK encoder fused on the CPU: GEMM, bias, column scale and top-k selection, one block of
//! rows at a time, so the dense `[n, d_sae]` pre-activations never exist in full.
//!
//! `W_enc` is packed once per call and shared (the AVX2 + FMA kernel of `packed.rs`; where
//! the CPU lacks them, or for fewer than 2 048 rows, the `gemm` crate's kernels with their run-time
//! dispatch). Each thread owns
//! a contiguous range of rows and a block-of-rows × `d_sae` scratch buffer. For each block it
//! runs one single-threaded GEMM, adds `b_enc`, multiplies by the column scale, and selects the
//! top-k of every row while the block is still in cache. Splitting rows
//! between threads, rather than letting the GEMM split its columns, keeps the selection parallel
//! too and needs no synchronisation.

use super::gemm::Rhs;
use super::{HostRun, check_len};
use sae_core::Result;
use super::select::{Eligible, topk_row};


/// The encoder on the host: `pre = (x · W_enc + b_enc) ⊙ scale`.
#[derive(Debug, Clone, Copy)]
pub struct HostEncoder<'a> {
    /// `W_enc` `[d_in, d_sae]`, row-major.
    pub w_enc: &'a [f32],
    /// `b_enc` `[d_sae]`.
    pub b_enc: &'a [f32],
    /// Per-latent multiplier `[d_sae]` (decoder-norm rescaling), if any.
    pub scale: Option<&'a [f32]>,
    /// Input width.
    pub d_in: usize,
    /// Number of latents.
    pub d_sae: usize,
}

/// A second selection made in the same pass (AuxK): the `k` largest among the flagged latents.
#[derive(Debug, Clone, Copy)]
pub struct HostAuxSelect<'a> {
    /// Which latents may be selected (`[d_sae]`).
    pub eligible: &'a [bool],
    /// How many per row.
    pub k: usize,
}

/// The selections of a fused encode, row-major `[n, k]` (and `[n, k_aux]`), values raw (before
/// any ReLU) and in descending order per row.
#[derive(Debug, Clone, Default)]
pub struct HostSelections {
    /// Values of the main top-k.
    pub values: Vec<f32>,
    /// Latent indices of the main top-k.
    pub indices: Vec<i64>,
    /// Values of the auxiliary selection (empty without one).
    pub aux_values: Vec<f32>,
    /// Latent indices of the auxiliary selection (empty without one).
    pub aux_indices: Vec<i64>,
}

/// Encodes `x` `[n, d_in]` and selects the `k` largest pre-activations per row (and the
/// auxiliary selection, when given) with `run.threads` threads. Allocates a block of rows × `d_sae`
/// of scratch per thread (96 rows, at most 4 MiB, with the packed AVX2 kernel; 24 MiB with the
/// `gemm` crate's), never `n × d_sae` at once for large `n`, plus the packed `W_enc`. Slices of the
/// wrong length are a [`ShapeMismatch`](sae_core::SaeError::ShapeMismatch).
pub fn fused_topk_encode(x: &[f32], n: usize, enc: &HostEncoder<'_>, k: usize, aux: Option<HostAuxSelect<'_>>, run: HostRun) -> Result<HostSelections> {
    let (d_in, d_sae) = (enc.d_in, enc.d_sae);
    check_len("x", x.len(), &[n, d_in])?;
    check_len("W_enc", enc.w_enc.len(), &[d_in, d_sae])?;
    check_len("b_enc", enc.b_enc.len(), &[d_sae])?;
    if let Some(s) = enc.scale {
        check_len("scale", s.len(), &[d_sae])?;
    }
    if let Some(a) = aux {
        check_len("eligible", a.eligible.len(), &[d_sae])?;
    }
    let k = k.min(d_sae);
    let k_aux = aux.map_or(0, |a| a.k);
    let mut out = HostSelections {
        values: vec![0.0; n * k],
        indices: vec![0; n * k],
        aux_values: vec![0.0; n * k_aux],
        aux_indices: vec![0; n * k_aux],
    };
    if n == 0 || k == 0 {
        return Ok(out);
    }
    let rhs = Rhs::new(enc.w_enc, n, d_in, d_sae, run);
    let rows_per = n.div_ceil(run.threads.max(1)).max(1);
    let HostSelections { values, indices, aux_values, aux_indices } = &mut out;
    std::thread::scope(|s| {
        let parts = values
            .chunks_mut(rows_per * k)
            .zip(indices.chunks_mut(rows_per * k))
            .zip(chunks_or_empty(aux_values, rows_per * k_aux))
            .zip(chunks_or_empty(aux_indices, rows_per * k_aux))
            .zip(chunks_or_repeat(x, rows_per * d_in));
        for ((((vals, idx), aux_vals), aux_idx), rows) in parts {
            let rhs = &rhs;
            s.spawn(move || encode_rows(rows, rhs, enc, k, aux, Outputs { vals, idx, aux_vals, aux_idx }));
        }
    });
    Ok(out)
}

/// One thread's share of the outputs.
struct Outputs<'a> {
    vals: &'a mut [f32],
    idx: &'a mut [i64],
    aux_vals: &'a mut [f32],
    aux_idx: &'a mut [i64],
}

/// Splits `v` into chunks of `size`, or yields empty slices forever when `size` is 0.
fn chunks_or_empty<T>(v: &mut [T], size: usize) -> Box<dyn Iterator<Item = &mut [T]> + '_> {
    if size == 0 { Box::new(std::iter::repeat_with(<&mut [T]>::default)) } else { Box::new(v.chunks_mut(size)) }
}

/// Splits `v` into chunks of `size`, or yields empty slices forever when `size` is 0.
fn chunks_or_repeat<T>(v: &[T], size: usize) -> Box<dyn Iterator<Item = &[T]> + '_> {
    if size == 0 { Box::new(std::iter::repeat(&v[..0])) } else { Box::new(v.chunks(size)) }
}

fn encode_rows(rows: &[f32], rhs: &Rhs<'_>, enc: &HostEncoder<'_>, k: usize, aux: Option<HostAuxSelect<'_>>, out: Outputs<'_>) {
    let (d_in, d_sae) = (enc.d_in, enc.d_sae);
    let n = out.vals.len() / k; // k ≥ 1: checked by the caller
    let k_aux = aux.map_or(0, |a| a.k);
    let block_rows = rhs.block_rows(d_sae);
    let mut pre = vec![0.0f32; block_rows.min(n) * d_sae];
    let mut a_pack = Vec::new();
    let mut start = 0;
    while start < n {
        let m = block_rows.min(n - start);
        let block = &mut pre[..m * d_sae];
        rhs.mul_rows(&rows[start * d_in..(start + m) * d_in], m, block, &mut a_pack);
        for (r, row) in block.chunks_mut(d_sae).enumerate() {
            match enc.scale {
                Some(scale) => row.iter_mut().zip(enc.b_enc).zip(scale).for_each(|((p, b), s)| *p = (*p + b) * s),
                None => row.iter_mut().zip(enc.b_enc).for_each(|(p, b)| *p += b),
            }
            let i = start + r;
            topk_row(row, k, Eligible::All, &mut out.vals[i * k..(i + 1) * k], &mut out.idx[i * k..(i + 1) * k]);
            if let Some(a) = aux {
                let (v, ix) = (&mut out.aux_vals[i * k_aux..(i + 1) * k_aux], &mut out.aux_idx[i * k_aux..(i + 1) * k_aux]);
                topk_row(row, k_aux, Eligible::Only(a.eligible), v, ix);
            }
        }
        start += m;
    }
}
