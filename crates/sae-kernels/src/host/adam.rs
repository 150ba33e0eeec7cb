//! One Adam update on host slices, in place, every core: the optimiser step of the CPU
//! backends in one pass over the parameter, its gradient and the two moments, instead of the
//! dozen element-wise tensor operations (each a pass over memory and an allocation) of the
//! portable version ([`crate::portable`]). Same formula, same f32 operations in the same order:
//!
//! `m ← β₁·m + (1−β₁)·g`, `v ← β₂·v + (1−β₂)·g²`, `p ← p − lr · (m / c₁) / (√(v / c₂) + ε)`,
//! where `c₁ = 1 − β₁ᵗ` and `c₂ = 1 − β₂ᵗ` are the bias corrections.

use super::check_len;
use super::simd::multiversion;
use crate::adam::AdamCoefficients;
use sae_core::Result;

/// Updates `p`, `m` and `v` in place from the gradient `g` with `threads` threads. The four
/// slices must have the same length (else a
/// [`ShapeMismatch`](sae_core::SaeError::ShapeMismatch), nothing written). Each element's result
/// depends on that element only, so the thread count does not change it.
pub fn adam_update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: AdamCoefficients, threads: usize) -> Result<()> {
    let n = p.len();
    check_len("gradient", g.len(), &[n])?;
    check_len("first moment", m.len(), &[n])?;
    check_len("second moment", v.len(), &[n])?;
    if n == 0 {
        return Ok(());
    }
    let chunk = n.div_ceil(threads.max(1)).max(4096);
    std::thread::scope(|s| {
        for (((p, g), m), v) in p.chunks_mut(chunk).zip(g.chunks(chunk)).zip(m.chunks_mut(chunk)).zip(v.chunks_mut(chunk)) {
            s.spawn(move || update(p, g, m, v, c));
        }
    });
    Ok(())
}

/// [`adam_update`] for a `[rows, cols]` parameter whose gradient is stored transposed, `gt`
/// `[cols, rows]` (`g[i, j] = gt[j · rows + i]`): the gradient of `W_enc` as the sparse backward
/// produces it, one row per latent. Read in 16 × 64 tiles, so neither side is copied into the
/// other's layout; the same operations per element as [`adam_update`], so the same results.
#[allow(clippy::too_many_arguments)]
pub fn adam_update_transposed(p: &mut [f32], gt: &[f32], m: &mut [f32], v: &mut [f32], rows: usize, cols: usize, c: AdamCoefficients, threads: usize) -> Result<()> {
    check_len("parameter", p.len(), &[rows, cols])?;
    check_len("gradient", gt.len(), &[cols, rows])?;
    check_len("first moment", m.len(), &[rows, cols])?;
    check_len("second moment", v.len(), &[rows, cols])?;
    if rows == 0 || cols == 0 {
        return Ok(());
    }
    let rows_per = rows.div_ceil(threads.max(1)).next_multiple_of(TILE_ROWS);
    let span = rows_per * cols;
    std::thread::scope(|s| {
        for (t, ((p, m), v)) in p.chunks_mut(span).zip(m.chunks_mut(span)).zip(v.chunks_mut(span)).enumerate() {
            s.spawn(move || update_transposed(p, gt, m, v, rows, cols, t * rows_per, c));
        }
    });
    Ok(())
}

/// Rows and columns of the tiles [`adam_update_transposed`] reads the gradient in.
const TILE_ROWS: usize = 16;
const TILE_COLS: usize = 64;

multiversion! {
    /// [`adam_update_transposed`] of the parameter rows from `first` on (`p`, `m`, `v` hold just
    /// those rows).
    fn update_transposed(p: &mut [f32], gt: &[f32], m: &mut [f32], v: &mut [f32], rows: usize, cols: usize, first: usize, c: AdamCoefficients) {
        let mine = p.len() / cols;
        for i0 in (0..mine).step_by(TILE_ROWS) {
            let i1 = (i0 + TILE_ROWS).min(mine);
            for j0 in (0..cols).step_by(TILE_COLS) {
                let j1 = (j0 + TILE_COLS).min(cols);
                for i in i0..i1 {
                    let at = i * cols;
                    for j in j0..j1 {
                        let g = gt[j * rows + first + i];
                        update_one(&mut p[at + j], g, &mut m[at + j], &mut v[at + j], c);
                    }
                }
            }
        }
    }
}

#[inline(always)]
fn update_one(p: &mut f32, g: f32, m: &mut f32, v: &mut f32, c: AdamCoefficients) {
    *m = *m * c.beta1 + g * c.one_minus_beta1;
    *v = *v * c.beta2 + g * g * c.one_minus_beta2;
    let denom = (*v / c.correction2).sqrt() + c.eps;
    *p -= *m / c.correction1 / denom * c.lr;
}

multiversion! {
    /// The update of one thread's share of the elements.
    fn update(p: &mut [f32], g: &[f32], m: &mut [f32], v: &mut [f32], c: AdamCoefficients) {
        for (((p, &g), m), v) in p.iter_mut().zip(g).zip(m.iter_mut()).zip(v.iter_mut()) {
            update_one(p, g, m, v, c);
        }
    }
}
