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
//! [`ShapeMismatch`](crate::SaeError::ShapeMismatch).

use super::check_len;
use crate::error::Result;

/// Checks the coefficient and index operands, `[n, k]` each. (`rows` needs no check: every
/// access goes through [`row`], which treats a row past its end as absent.)
fn check_common(c_len: usize, idx: &[i64], n: usize, k: usize) -> Result<()> {
    check_len("coefficients", c_len, &[n, k])?;
    check_len("indices", idx.len(), &[n, k])
}

/// Row `i` of `rows` (`[m, d]`), or `None` when `i` is not a valid row.
fn row(rows: &[f32], d: usize, i: i64) -> Option<&[f32]> {
    let i = usize::try_from(i).ok()?;
    rows.get(i * d..(i + 1) * d)
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
    par_rows(&mut out, n, d, threads, |first, part| {
        for (r, o) in part.chunks_mut(d).enumerate() {
            let r = first + r;
            for j in 0..k {
                let cv = c[r * k + j];
                if let Some(w) = row(rows, d, idx[r * k + j]) {
                    o.iter_mut().zip(w).for_each(|(o, w)| *o += cv * w);
                }
            }
        }
    });
    Ok(out)
}

/// `out [n, k] = ⟨x[r], rows[idx[r, j]]⟩`.
pub fn gather_dot(x: &[f32], idx: &[i64], rows: &[f32], n: usize, k: usize, d: usize, threads: usize) -> Result<Vec<f32>> {
    check_common(n * k, idx, n, k)?;
    check_len("x", x.len(), &[n, d])?;
    let mut out = vec![0.0f32; n * k];
    par_rows(&mut out, n, k, threads, |first, part| {
        for (r, o) in part.chunks_mut(k).enumerate() {
            let r = first + r;
            let xr = &x[r * d..(r + 1) * d];
            for (j, o) in o.iter_mut().enumerate() {
                *o = row(rows, d, idx[r * k + j]).map_or(0.0, |w| dot(xr, w));
            }
        }
    });
    Ok(out)
}

/// A dot product in eight independent lanes, so the compiler vectorises it.
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
            s.spawn(move || {
                for r in 0..n {
                    let xr = &x[r * d..(r + 1) * d];
                    for j in 0..k {
                        let Some(target) = usize::try_from(idx[r * k + j]).ok().filter(|i| *i < m) else { continue };
                        let cv = c[r * k + j];
                        let piece = &mut pieces[target];
                        piece.iter_mut().zip(&xr[c0..]).for_each(|(o, v)| *o += cv * v);
                    }
                }
            });
        }
    });
    Ok(out)
}
