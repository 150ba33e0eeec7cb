//! Top-k of each row of a host matrix without sorting the row.
//!
//! One pass per row keeps the `k` best `(value, index)` pairs seen so far in a small buffer and
//! remembers which of them is the worst; a new element only costs a comparison unless it beats
//! that worst one. On random rows the buffer changes about `k · ln(d / k)` times, so the pass
//! is close to a plain read of the row (a full sort, what burn's `topk` does, is `d · log d`).
//! Each change costs `O(k)`, so for large `k` (AuxK selects `d_in / 2`, e.g. 192) the row is
//! instead partitioned around its k-th element (`select_nth_unstable`, linear on average) and
//! only the winners are sorted.
//!
//! Long rows (at least four chunks per wanted element) take a third path, [`by_chunk_maxima`]:
//! the maximum of every chunk of the row is taken in vector lanes, the `k`-th largest of those
//! maxima is a value `t` that at least `k` elements reach, so the top-k are among the elements
//! `≥ t`, which live in at most `k` chunks (plus ties): a vector pass over the row and a
//! selection among a few hundred candidates, instead of a comparison per element. All paths use
//! the same total order, so they agree exactly.

use std::cmp::Ordering;
use super::simd::multiversion;

/// Above this `k` the partition path is faster than the running buffer (`k² · ln(d/k)` vs `d`).
const BUFFER_MAX_K: usize = 32;

/// Elements whose maximum is compared with the worst kept value before looking at them one by
/// one: after the first few hundred columns almost every chunk is skipped.
const SKIP_CHUNK: usize = 32;

/// Which elements of a row may be selected.
#[derive(Debug, Clone, Copy)]
pub enum Eligible<'a> {
    /// Every column.
    All,
    /// Only the columns whose flag is `true` (AuxK: the dead latents).
    Only(&'a [bool]),
}

impl Eligible<'_> {
    fn allows(&self, j: usize) -> bool {
        match self {
            Eligible::All => true,
            Eligible::Only(mask) => mask.get(j).copied().unwrap_or(false),
        }
    }
}

multiversion! {
    /// The `k` largest elements of `row` among the eligible columns, written to `values` and
    /// `indices` (both of length `k`) in descending order of value; equal values keep the lower
    /// column first, as a stable descending sort would. NaN never beats a number. When fewer than
    /// `k` columns are eligible, the tail is filled with `-inf` and index 0.
    pub fn topk_row(row: &[f32], k: usize, eligible: Eligible<'_>, values: &mut [f32], indices: &mut [i64]) {
        debug_assert!(values.len() == k && indices.len() == k);
        if k == 0 {
            return;
        }
        if by_chunk_maxima(row, k, eligible, values, indices) {
            return;
        }
        if k > BUFFER_MAX_K {
            let mut cand: Vec<(f32, usize)> = row.iter().enumerate().filter(|(j, _)| eligible.allows(*j)).map(|(j, v)| (*v, j)).collect();
            if cand.len() > k {
                cand.select_nth_unstable_by(k - 1, order);
                cand.truncate(k);
            }
            cand.sort_unstable_by(order);
            write_sorted(&cand, values, indices);
            return;
        }
        let mut buf: Vec<(f32, usize)> = Vec::with_capacity(k);
        let mut worst = 0usize; // position in `buf` of the worst kept element
        // Offers column `j`: columns arrive in increasing order, so an equal value never displaces
        // a kept one.
        let offer = |buf: &mut Vec<(f32, usize)>, worst: &mut usize, v: f32, j: usize| {
            if buf.len() < k {
                buf.push((v, j));
                if buf.len() == k {
                    *worst = worst_position(buf);
                }
            } else if ranks_before(v, j, buf[*worst].0, buf[*worst].1) {
                buf[*worst] = (v, j);
                *worst = worst_position(buf);
            }
        };
        match eligible {
            Eligible::All => {
                let fill = k.min(row.len());
                row[..fill].iter().enumerate().for_each(|(j, v)| offer(&mut buf, &mut worst, *v, j));
                for (c, chunk) in row[fill..].chunks(SKIP_CHUNK).enumerate() {
                    // Skip a chunk whose largest number does not beat the worst kept value: equal
                    // values come later and lose, NaN never wins.
                    let threshold = buf.get(worst).map_or(f32::NAN, |w| w.0);
                    let max = chunk_max(chunk);
                    if !threshold.is_nan() && max <= threshold {
                        continue;
                    }
                    let first = fill + c * SKIP_CHUNK;
                    chunk.iter().enumerate().for_each(|(o, v)| offer(&mut buf, &mut worst, *v, first + o));
                }
            }
            Eligible::Only(_) => {
                for (j, &v) in row.iter().enumerate() {
                    if eligible.allows(j) {
                        offer(&mut buf, &mut worst, v, j);
                    }
                }
            }
        }
        buf.sort_by(order);
        write_sorted(&buf, values, indices);
    }
}

/// Chunk widths tried by [`by_chunk_maxima`], widest first: a row needs at least
/// `MIN_CHUNKS_PER_K · k` chunks of the chosen width.
const CHUNK_WIDTHS: [usize; 3] = [32, 16, 8];

/// Rows with fewer chunks than this many per wanted element use the other paths: the
/// candidates would cover too much of the row to gain anything.
const MIN_CHUNKS_PER_K: usize = 4;

/// The top-k of `row` by the maxima of its chunks (module docs). Returns `false`, writing
/// nothing, when the row is too short for `k` or when fewer than `k` chunks hold an eligible
/// number (NaN, `-inf` or ineligible columns would then reach the top-k): the caller falls back
/// to the general paths, which handle those.
#[inline(always)]
fn by_chunk_maxima(row: &[f32], k: usize, eligible: Eligible<'_>, values: &mut [f32], indices: &mut [i64]) -> bool {
    let Some(width) = CHUNK_WIDTHS.into_iter().find(|w| row.len() / w >= MIN_CHUNKS_PER_K * k) else { return false };
    let mut maxima: Vec<f32> = match eligible {
        Eligible::All => row.chunks(width).map(chunk_max).collect(),
        Eligible::Only(mask) => row.chunks(width).zip(mask.chunks(width).chain(std::iter::repeat(&[][..]))).map(|(c, m)| masked_chunk_max(c, m)).collect(),
    };
    // The k-th largest chunk maximum: k distinct elements reach it, so the k-th largest
    // element does too.
    let (_, kth, _) = maxima.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    let t = *kth;
    if t == f32::NEG_INFINITY || t.is_nan() {
        return false;
    }
    let mut cand: Vec<(f32, usize)> = Vec::with_capacity(4 * k);
    for (c, chunk) in row.chunks(width).enumerate() {
        if chunk_max(chunk) < t {
            continue;
        }
        let first = c * width;
        for (o, &v) in chunk.iter().enumerate() {
            if v >= t && eligible.allows(first + o) {
                cand.push((v, first + o));
            }
        }
    }
    if cand.len() < k {
        // Unreachable (k chunk maxima are eligible numbers ≥ t), kept as a guard.
        return false;
    }
    cand.select_nth_unstable_by(k - 1, order);
    cand.truncate(k);
    cand.sort_unstable_by(order);
    write_sorted(&cand, values, indices);
    true
}

/// The largest eligible number in `chunk` (`mask` holds the flags of its columns; a missing
/// flag is ineligible), or `-inf` when there is none.
#[inline(always)]
fn masked_chunk_max(chunk: &[f32], mask: &[bool]) -> f32 {
    chunk.iter().zip(mask).fold(f32::NEG_INFINITY, |m, (&x, &ok)| if ok && x > m { x } else { m })
}

/// The largest number in `chunk` (NaN ignored; `-inf` when there is none), in eight independent
/// lanes so that it compiles to vector max instructions without reassociating floats.
#[inline(always)]
fn chunk_max(chunk: &[f32]) -> f32 {
    let mut lanes = [f32::NEG_INFINITY; 8];
    let mut parts = chunk.chunks_exact(8);
    for part in &mut parts {
        for (m, &x) in lanes.iter_mut().zip(part) {
            *m = if x > *m { x } else { *m };
        }
    }
    let tail = parts.remainder().iter().fold(f32::NEG_INFINITY, |m, &x| if x > m { x } else { m });
    lanes.iter().fold(tail, |m, &x| if x > m { x } else { m })
}

/// The total order of the selection: larger values first, NaN after every number, equal values
/// (and NaNs) by lower column. `ranks_before(a, ia, b, ib)`: `a` at column `ia` comes first.
fn ranks_before(a: f32, ia: usize, b: f32, ib: usize) -> bool {
    match (a.is_nan(), b.is_nan()) {
        (false, true) => true,
        (true, false) => false,
        (true, true) => ia < ib,
        (false, false) => a > b || (a == b && ia < ib),
    }
}

/// [`ranks_before`] as a total order (`Equal` only for the same column).
fn order(a: &(f32, usize), b: &(f32, usize)) -> Ordering {
    if ranks_before(a.0, a.1, b.0, b.1) {
        Ordering::Less
    } else if ranks_before(b.0, b.1, a.0, a.1) {
        Ordering::Greater
    } else {
        Ordering::Equal
    }
}

/// Writes the sorted winners, padding with `(-inf, 0)` when there are fewer than `k`.
fn write_sorted(sorted: &[(f32, usize)], values: &mut [f32], indices: &mut [i64]) {
    for (p, (value, index)) in values.iter_mut().zip(indices.iter_mut()).enumerate() {
        (*value, *index) = match sorted.get(p) {
            Some(&(v, j)) => (v, j as i64),
            None => (f32::NEG_INFINITY, 0),
        };
    }
}

fn worst_position(buf: &[(f32, usize)]) -> usize {
    let mut w = 0;
    for (p, &(v, j)) in buf.iter().enumerate().skip(1) {
        if ranks_before(buf[w].0, buf[w].1, v, j) {
            w = p;
        }
    }
    w
}

/// Top-k of every row of `data` `[n, d]` (row-major), split over `threads` threads. Returns
/// `(values [n, k], indices [n, k])` row-major, each row as [`topk_row`] orders it, or a
/// [`ShapeMismatch`](sae_core::SaeError::ShapeMismatch) when `data` is not `n × d` long.
pub fn topk_rows(data: &[f32], n: usize, d: usize, k: usize, eligible: Eligible<'_>, threads: usize) -> sae_core::Result<(Vec<f32>, Vec<i64>)> {
    super::check_len("data", data.len(), &[n, d])?;
    let mut values = vec![0.0f32; n * k];
    let mut indices = vec![0i64; n * k];
    if n == 0 || k == 0 || d == 0 {
        return Ok((values, indices));
    }
    let rows_per = n.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for ((vals, idx), rows) in values.chunks_mut(rows_per * k).zip(indices.chunks_mut(rows_per * k)).zip(data.chunks(rows_per * d)) {
            s.spawn(move || {
                for ((row, v), i) in rows.chunks(d).zip(vals.chunks_mut(k)).zip(idx.chunks_mut(k)) {
                    topk_row(row, k, eligible, v, i);
                }
            });
        }
    });
    Ok((values, indices))
}
