//! Per-row updates of the decoder on host slices, in place, every core: the gradient projection
//! and the renormalisation that keep decoder rows on the unit sphere, in one pass each instead of
//! five tensor operations with an allocation each.

use super::check_len;
use super::simd::multiversion;
use sae_core::Result;

/// `g[i] ← g[i] − w[i] · ⟨g[i], w[i]⟩` for each row `i` of `g` and `w` `[rows, cols]`.
pub fn project_out_rows(g: &mut [f32], w: &[f32], rows: usize, cols: usize, threads: usize) -> Result<()> {
    check_len("gradient", g.len(), &[rows, cols])?;
    check_len("rows", w.len(), &[rows, cols])?;
    for_row_chunks(g, Some(w), rows, cols, threads, |g, w| project_part(g, w, cols));
    Ok(())
}

/// `w[i] ← w[i] / (‖w[i]‖ + eps)` for each row `i` of `w` `[rows, cols]`.
pub fn normalize_rows(w: &mut [f32], rows: usize, cols: usize, eps: f32, threads: usize) -> Result<()> {
    check_len("rows", w.len(), &[rows, cols])?;
    for_row_chunks(w, None, rows, cols, threads, |w, _| normalize_part(w, cols, eps));
    Ok(())
}

multiversion! {
    /// [`project_out_rows`] of the rows in `g` (and the matching rows `w`).
    fn project_part(g: &mut [f32], w: &[f32], cols: usize) {
        for (g, w) in g.chunks_mut(cols).zip(w.chunks(cols)) {
            let dot: f32 = g.iter().zip(w).map(|(a, b)| a * b).sum();
            g.iter_mut().zip(w).for_each(|(a, b)| *a -= b * dot);
        }
    }
}

multiversion! {
    /// [`normalize_rows`] of the rows in `w`.
    fn normalize_part(w: &mut [f32], cols: usize, eps: f32) {
        for w in w.chunks_mut(cols) {
            let norm = w.iter().map(|v| v * v).sum::<f32>().sqrt() + eps;
            w.iter_mut().for_each(|v| *v /= norm);
        }
    }
}

/// Calls `f(rows of a, the same rows of b or [])` on each thread's share of the rows.
fn for_row_chunks(a: &mut [f32], b: Option<&[f32]>, rows: usize, cols: usize, threads: usize, f: impl Fn(&mut [f32], &[f32]) + Sync) {
    if rows == 0 || cols == 0 {
        return;
    }
    let per = rows.div_ceil(threads.max(1)).max(64) * cols;
    std::thread::scope(|s| {
        for (t, part) in a.chunks_mut(per).enumerate() {
            let f = &f;
            let other = b.map(|b| &b[t * per..t * per + part.len()]);
            s.spawn(move || f(part, other.unwrap_or(&[])));
        }
    });
}
