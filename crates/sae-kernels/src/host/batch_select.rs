//! BatchTopK on the host: the `k_total` largest positive pre-activations of a whole batch,
//! found without the dense `[n, d_sae]` pre-activations and without sorting them.
//!
//! The fused encoder ([`fused_topk_encode`]) first keeps the top `c` of every row as candidates
//! (`c = 4 · k_total / n`, at least 64). Let `τ` be the `k_total`-th largest positive candidate.
//! A row whose candidates are all positive and whose smallest candidate still reaches `τ` may
//! hold more winners than it kept: only such rows are encoded again with four times as many
//! candidates, and `τ` is recomputed, until no row is cut short. Then every winner is a
//! candidate, so the selection is exact: the elements `> τ` and, in row-major order, as many
//! elements `= τ` as `k_total` leaves room for. Rows keep the winners in descending order, so
//! each row's selection is a prefix of its candidates.
//!
//! Selected zeros are left out: they would decode to nothing and carry no gradient through the
//! ReLU, so the codes are those of the dense BatchTopK (`ops::batch_topk`) with its zeros dropped.

use super::encode::{HostAuxSelect, HostEncoder, fused_topk_encode};
use super::{HostRun, check_len};
use sae_core::Result;

/// Fewest candidates kept per row in the first pass.
const MIN_CANDIDATES: usize = 64;

/// Candidates per row in the first pass, as a multiple of the mean number of winners per row.
const CANDIDATES_PER_WINNER: usize = 4;

/// A BatchTopK selection on the host, `[n, width]` row-major: each row's winners in descending
/// order of value, then empty slots (index `-1`, value `0`). `width` is the largest number of
/// winners in a row (at least 1).
#[derive(Debug, Clone, Default)]
pub struct HostBatchSelection {
    /// Slots per row.
    pub width: usize,
    /// Winning pre-activations (all positive), `0` in empty slots.
    pub values: Vec<f32>,
    /// Their latents, `-1` in empty slots.
    pub indices: Vec<i64>,
    /// The auxiliary selection, `[n, k_aux]` raw pre-activations and latents (empty without one).
    pub aux_values: Vec<f32>,
    /// Latents of the auxiliary selection.
    pub aux_indices: Vec<i64>,
}

/// One row's positive candidates, in descending order, and how many were asked for.
#[derive(Debug, Clone, Default)]
struct Candidates {
    values: Vec<f32>,
    indices: Vec<i64>,
    asked: usize,
}

impl Candidates {
    /// The positive prefix of a row of the fused encoder's output.
    fn from_row(values: &[f32], indices: &[i64]) -> Self {
        let positive = values.iter().take_while(|v| **v > 0.0).count();
        Self { values: values[..positive].to_vec(), indices: indices[..positive].to_vec(), asked: values.len() }
    }

    /// Whether the row may hold winners beyond its candidates when the threshold is `tau`.
    fn cut_short(&self, tau: f32, d_sae: usize) -> bool {
        self.asked < d_sae && self.values.len() == self.asked && self.values.last().is_some_and(|v| *v >= tau)
    }
}

/// Encodes `x` `[n, d_in]` and selects the `k_total` largest positive pre-activations of the
/// whole batch (module docs), plus the per-row auxiliary selection when `aux` is given, with
/// `run`. Slices of the wrong length are a
/// [`ShapeMismatch`](sae_core::SaeError::ShapeMismatch).
pub fn fused_batch_topk_encode(
    x: &[f32],
    n: usize,
    enc: &HostEncoder<'_>,
    k_total: usize,
    aux: Option<HostAuxSelect<'_>>,
    run: HostRun,
) -> Result<HostBatchSelection> {
    let (d_in, d_sae) = (enc.d_in, enc.d_sae);
    check_len("x", x.len(), &[n, d_in])?;
    if d_sae == 0 {
        let k_aux = aux.map_or(0, |a| a.k);
        let (aux_values, aux_indices) = (vec![0.0; n * k_aux], vec![0; n * k_aux]);
        return Ok(HostBatchSelection { width: 1, values: vec![0.0; n], indices: vec![-1; n], aux_values, aux_indices });
    }
    let c = (CANDIDATES_PER_WINNER * k_total.div_ceil(n.max(1))).max(MIN_CANDIDATES).min(d_sae);
    let first = fused_topk_encode(x, n, enc, c, aux, run)?;
    let mut rows: Vec<Candidates> =
        first.values.chunks(c).zip(first.indices.chunks(c)).map(|(v, i)| Candidates::from_row(v, i)).collect();
    loop {
        let tau = threshold(&rows, k_total);
        let short: Vec<usize> = match tau {
            Some(t) => (0..n).filter(|&r| rows[r].cut_short(t, d_sae)).collect(),
            None => Vec::new(),
        };
        if short.is_empty() {
            let mut out = assemble(&rows, k_total, tau);
            out.aux_values = first.aux_values;
            out.aux_indices = first.aux_indices;
            return Ok(out);
        }
        let asked = short.iter().map(|&r| rows[r].asked).max().unwrap_or(c);
        let more = (asked * 4).min(d_sae);
        let sub: Vec<f32> = short.iter().flat_map(|&r| x[r * d_in..(r + 1) * d_in].iter().copied()).collect();
        let again = fused_topk_encode(&sub, short.len(), enc, more, None, run)?;
        for ((v, i), &r) in again.values.chunks(more).zip(again.indices.chunks(more)).zip(&short) {
            rows[r] = Candidates::from_row(v, i);
        }
    }
}

/// The `k_total`-th largest candidate value, or the smallest positive one when there are fewer
/// (every positive candidate wins); `None` when there is no positive candidate or `k_total` is 0.
fn threshold(rows: &[Candidates], k_total: usize) -> Option<f32> {
    let mut all: Vec<f32> = rows.iter().flat_map(|r| r.values.iter().copied()).collect();
    if all.is_empty() || k_total == 0 {
        return None;
    }
    if all.len() <= k_total {
        return all.iter().copied().reduce(f32::min);
    }
    let (_, kth, _) = all.select_nth_unstable_by(k_total - 1, |a, b| b.total_cmp(a));
    Some(*kth)
}

/// The winners of every row given the threshold `tau`: values above it, then values equal to
/// it in row-major order while `k_total` allows.
fn assemble(rows: &[Candidates], k_total: usize, tau: Option<f32>) -> HostBatchSelection {
    let n = rows.len();
    let Some(tau) = tau else {
        return HostBatchSelection { width: 1, values: vec![0.0; n], indices: vec![-1; n], ..Default::default() };
    };
    let above: usize = rows.iter().map(|r| r.values.iter().take_while(|v| **v > tau).count()).sum();
    let mut ties_left = k_total.saturating_sub(above);
    let counts: Vec<usize> = rows
        .iter()
        .map(|r| {
            let strictly = r.values.iter().take_while(|v| **v > tau).count();
            let equal = r.values[strictly..].iter().take_while(|v| **v == tau).count().min(ties_left);
            ties_left -= equal;
            strictly + equal
        })
        .collect();
    let width = counts.iter().copied().max().unwrap_or(0).max(1);
    let mut out = HostBatchSelection { width, values: vec![0.0; n * width], indices: vec![-1; n * width], ..Default::default() };
    for ((r, row), &count) in rows.iter().enumerate().zip(&counts) {
        out.values[r * width..r * width + count].copy_from_slice(&row.values[..count]);
        out.indices[r * width..r * width + count].copy_from_slice(&row.indices[..count]);
    }
    out
}
