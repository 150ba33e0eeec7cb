//! The three sparse products of a TopK SAE on host slices, each `O(n · k · d)`, never touching
//! the `n × d_sae` dense codes:
//!
//! - [`sparse_decode`]: `out[r] = Σ_j c[r, j] · rows[idx[r, j]]` (the decoder, and the input
//!   gradient of [`gather_dot`]);
//! - [`gather_dot`]: `out[r, j] = ⟨x[r], rows[idx[r, j]]⟩` (the selected encoder
//!   pre-activations, and the coefficient gradient of [`sparse_decode`]);
//! - [`scatter_outer`]: `out[idx[r, j]] += c[r, j] · x[r]` (the weight gradient of both).
//!
//! Shapes: `c`, `idx` are `[n, k]`; `x`, `out` of `sparse_decode` are `[n, d]`; `rows` is
//! `[m, d]`. An index outside `0..m` selects nothing (contributes zero): the selections this
//! crate makes are always in range, and a bad index from elsewhere must not read out of bounds.
//! Slices whose lengths disagree with the shapes are a
//! [`ShapeMismatch`](sae_core::SaeError::ShapeMismatch).

use super::check_len;
use super::simd::multiversion;
use sae_core::Result;

/// Checks the coefficient and index operands, `[n, k]` each. (`rows` needs no check: only
/// whole rows inside it are read, and [`Groups`] leaves out indices past its end.)
fn check_common(c_len: usize, idx: &[i64], n: usize, k: usize) -> Result<()> {
    check_len("coefficients", c_len, &[n, k])?;
    check_len("indices", idx.len(), &[n, k])
}

/// Splits `0..n` into `threads` contiguous ranges of near-equal size and runs `f` on each,
/// with the matching chunk of `out` (`per` elements per item).
fn par_rows<T: Send>(out: &mut [T], n: usize, per: usize, threads: usize, f: impl Fn(usize, &mut [T]) + Sync) {
    if n == 0 || per == 0 {
        return;
    }
    let chunk = n.div_ceil(threads.max(1)).max(1);
    std::thread::scope(|s| {
        for (t, part) in out.chunks_mut(chunk * per).enumerate() {
            let f = &f;
            s.spawn(move || f(t * chunk, part));
        }
    });
}

/// `out [n, d] = Σ_j c[r, j] · rows[idx[r, j]]`.
pub fn sparse_decode(c: &[f32], idx: &[i64], rows: &[f32], n: usize, k: usize, d: usize, threads: usize) -> Result<Vec<f32>> {
    check_common(c.len(), idx, n, k)?;
    let mut out = vec![0.0f32; n * d];
    par_rows(&mut out, n, d, threads, |first, part| decode_rows(c, idx, rows, k, d, first, part));
    Ok(out)
}

multiversion! {
    /// [`sparse_decode`] of the output rows from `first` on, into `part`: block by block of
    /// rows, each decoder row read once per block and added to every output row that selected
    /// it ([`Groups`]).
    fn decode_rows(c: &[f32], idx: &[i64], rows: &[f32], k: usize, d: usize, first: usize, part: &mut [f32]) {
        let m = rows.len().checked_div(d).unwrap_or(0);
        let mut groups = Groups::default();
        let n_mine = part.len() / d.max(1);
        for b0 in (0..n_mine).step_by(BLOCK_ROWS) {
            let b1 = (b0 + BLOCK_ROWS).min(n_mine);
            groups.build(idx, first + b0, first + b1, k, m);
            for l in 0..m {
                let pairs = groups.of(l);
                if pairs.is_empty() {
                    continue;
                }
                let w = &rows[l * d..(l + 1) * d];
                for &p in pairs {
                    let (r, cv) = (p / k - first, c[p]);
                    part[r * d..(r + 1) * d].iter_mut().zip(w).for_each(|(o, w)| *o += cv * w);
                }
            }
        }
    }
}

/// Rows per block of the grouped kernels: a block's rows of `x` or of the output (1.5 KiB each
/// at d = 384) stay in L2 while the pairs are visited latent by latent.
const BLOCK_ROWS: usize = 128;

/// The pairs `(r, j)` of a block of rows, as flat positions `r · k + j`, grouped by the latent
/// they select (rows in increasing order within a latent); invalid indices are left out.
///
/// Why: AuxK selects `k_aux` (192 at d_in 384) of the ~1 500 dead latents per row, so a block of
/// 128 rows selects each dead latent ~16 times. Visiting the pairs latent by latent reads (or
/// writes) each latent's 1.5 KiB row once per block instead of once per pair, which took the
/// three sparse products from L3 bandwidth to L1/L2.
#[derive(Debug, Default)]
struct Groups {
    starts: Vec<usize>,
    pairs: Vec<usize>,
}

impl Groups {
    /// Groups the pairs of rows `r0..r1` (`k` per row, latents `0..m`): a counting sort.
    #[inline(always)]
    fn build(&mut self, idx: &[i64], r0: usize, r1: usize, k: usize, m: usize) {
        let valid = |i: i64| usize::try_from(i).ok().filter(|l| *l < m);
        self.starts.clear();
        self.starts.resize(m + 1, 0);
        for &i in &idx[r0 * k..r1 * k] {
            if let Some(l) = valid(i) {
                self.starts[l + 1] += 1;
            }
        }
        for l in 0..m {
            self.starts[l + 1] += self.starts[l];
        }
        self.pairs.clear();
        self.pairs.resize(self.starts[m], 0);
        // `starts[l]` serves as the cursor of latent `l`, then is restored.
        for (p, &i) in idx[r0 * k..r1 * k].iter().enumerate() {
            if let Some(l) = valid(i) {
                self.pairs[self.starts[l]] = r0 * k + p;
                self.starts[l] += 1;
            }
        }
        for l in (1..=m).rev() {
            self.starts[l] = self.starts[l - 1];
        }
        self.starts[0] = 0;
    }

    /// The pairs that select latent `l`.
    #[inline(always)]
    fn of(&self, l: usize) -> &[usize] {
        &self.pairs[self.starts[l]..self.starts[l + 1]]
    }
}

/// `out [n, k] = ⟨x[r], rows[idx[r, j]]⟩`.
pub fn gather_dot(x: &[f32], idx: &[i64], rows: &[f32], n: usize, k: usize, d: usize, threads: usize) -> Result<Vec<f32>> {
    check_common(n * k, idx, n, k)?;
    check_len("x", x.len(), &[n, d])?;
    let mut out = vec![0.0f32; n * k];
    par_rows(&mut out, n, k, threads, |first, part| dot_rows(x, idx, rows, k, d, first, part));
    Ok(out)
}

multiversion! {
    /// [`gather_dot`] of the rows from `first` on, into `part`, latent by latent within blocks of
    /// rows ([`Groups`]); each value is the same dot product as row by row.
    fn dot_rows(x: &[f32], idx: &[i64], rows: &[f32], k: usize, d: usize, first: usize, part: &mut [f32]) {
        let m = rows.len().checked_div(d).unwrap_or(0);
        let mut groups = Groups::default();
        let n_mine = part.len() / k.max(1);
        part.fill(0.0);
        for b0 in (0..n_mine).step_by(BLOCK_ROWS) {
            let b1 = (b0 + BLOCK_ROWS).min(n_mine);
            groups.build(idx, first + b0, first + b1, k, m);
            for l in 0..m {
                let w = &rows[l * d..(l + 1) * d];
                for &p in groups.of(l) {
                    let r = p / k;
                    part[p - first * k] = dot(&x[r * d..(r + 1) * d], w);
                }
            }
        }
    }
}

/// A dot product in eight independent lanes, so the compiler vectorises it.
#[inline(always)]
fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let tail: f32 = ca.remainder().iter().zip(cb.remainder()).map(|(x, y)| x * y).sum();
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `out [m, d]` with `out[idx[r, j]] += c[r, j] · x[r]`. Threads split the `d` columns, so no
/// two threads ever write the same element and the sum order per element is fixed (results do
/// not depend on the thread count).
pub fn scatter_outer(c: &[f32], idx: &[i64], x: &[f32], n: usize, k: usize, d: usize, m: usize, threads: usize) -> Result<Vec<f32>> {
    check_common(c.len(), idx, n, k)?;
    check_len("x", x.len(), &[n, d])?;
    let mut out = vec![0.0f32; m * d];
    if n == 0 || d == 0 || m == 0 {
        return Ok(out);
    }
    let threads = threads.clamp(1, d.div_ceil(16));
    let width = d.div_ceil(threads);
    // Column blocks are strided in `out`, so each thread writes through its own column range of
    // every row; `split_columns` hands out those disjoint pieces safely.
    let mut blocks: Vec<Vec<&mut [f32]>> = (0..threads).map(|_| Vec::with_capacity(m)).collect();
    for out_row in out.chunks_mut(d) {
        for (t, piece) in out_row.chunks_mut(width).enumerate() {
            blocks[t].push(piece);
        }
    }
    std::thread::scope(|s| {
        for (t, mut pieces) in blocks.into_iter().enumerate() {
            let c0 = t * width;
            s.spawn(move || scatter_columns(c, idx, x, n, k, d, c0, &mut pieces));
        }
    });
    Ok(out)
}

multiversion! {
    /// [`scatter_outer`] into one thread's column range: `pieces[l]` is columns `c0..` of output
    /// row `l`. Latent by latent within blocks of rows ([`Groups`]), adding to the output row in
    /// increasing row order: per element the same sums in the same order as the plain loop.
    fn scatter_columns(c: &[f32], idx: &[i64], x: &[f32], n: usize, k: usize, d: usize, c0: usize, pieces: &mut [&mut [f32]]) {
        let m = pieces.len();
        let mut groups = Groups::default();
        for b0 in (0..n).step_by(BLOCK_ROWS) {
            let b1 = (b0 + BLOCK_ROWS).min(n);
            groups.build(idx, b0, b1, k, m);
            for (l, piece) in pieces.iter_mut().enumerate() {
                for &p in groups.of(l) {
                    let (r, cv) = (p / k, c[p]);
                    piece.iter_mut().zip(&x[r * d + c0..(r + 1) * d]).for_each(|(o, v)| *o += cv * v);
                }
            }
        }
    }
}
