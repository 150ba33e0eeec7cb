//! The CubeCL kernel source of the sparse products: one source, compiled just in time for the
//! runtime of the tensors' device (WGSL/SPIR-V for WGPU, PTX for CUDA).
//!
//! Every kernel computes each output element in one thread, summing in a fixed order, so the
//! results are the same from run to run (no float atomics). Indices are `i32`; one outside
//! `0..m` contributes nothing.

use burn_cubecl::cubecl;
use cubecl::prelude::*;

/// `out[r, c] = Σ_j coeffs[r, j] · rows[indices[r, j], c]`; one thread per `(r, c)`, so the
/// threads of a cube read consecutive elements of each gathered row.
#[cube(launch)]
pub fn sparse_decode_kernel(coeffs: &[f32], indices: &[i32], rows: &[f32], out: &mut [f32], k: usize, d: usize, m: i32) {
    let pos = ABSOLUTE_POS;
    if pos >= out.len() {
        terminate!();
    }
    let r = pos / d;
    let c = pos % d;
    let mut acc = 0.0f32;
    for j in 0..k {
        let i = indices[r * k + j];
        if i >= 0 && i < m {
            acc += coeffs[r * k + j] * rows[usize::cast_from(i) * d + c];
        }
    }
    out[pos] = acc;
}

/// `out[r, j] = Σ_c x[r, c] · rows[indices[r, j], c]`; one thread per `(r, j)`.
#[cube(launch)]
pub fn gather_dot_kernel(x: &[f32], indices: &[i32], rows: &[f32], out: &mut [f32], k: usize, d: usize, m: i32) {
    let pos = ABSOLUTE_POS;
    if pos >= out.len() {
        terminate!();
    }
    let r = pos / k;
    let i = indices[pos];
    let mut acc = 0.0f32;
    if i >= 0 && i < m {
        let base = usize::cast_from(i) * d;
        for c in 0..d {
            acc += x[r * d + c] * rows[base + c];
        }
    }
    out[pos] = acc;
}

/// Counts, per latent, the entries of `indices` that name it: `counts[i] += 1` (integer atomics,
/// so the counts do not depend on the order the threads run in). One thread per entry.
#[cube(launch)]
pub fn count_kernel(indices: &[i32], counts: &[Atomic<i32>], m: i32) {
    let p = ABSOLUTE_POS;
    if p >= indices.len() {
        terminate!();
    }
    let i = indices[p];
    if i >= 0 && i < m {
        counts[usize::cast_from(i)].fetch_add(1i32);
    }
}

/// Writes each entry's flat position `p` into its latent's segment of `perm`, at
/// `cursor[i]++` (`cursor` starts as the segments' starts). The order inside a segment is
/// whatever order the threads ran in; [`sort_segments_kernel`] fixes it.
#[cube(launch)]
pub fn place_kernel(indices: &[i32], cursor: &[Atomic<i32>], perm: &mut [i32], m: i32) {
    let p = ABSOLUTE_POS;
    if p >= indices.len() {
        terminate!();
    }
    let i = indices[p];
    if i >= 0 && i < m {
        let slot = cursor[usize::cast_from(i)].fetch_add(1i32);
        perm[usize::cast_from(slot)] = i32::cast_from(p);
    }
}

/// Sorts each latent's segment `perm[starts[i] .. starts[i] + counts[i]]` ascending (Shell sort
/// with halving gaps), one thread per latent, so that the sums of [`scatter_outer_kernel`] run
/// in row order whatever order [`place_kernel`]'s threads ran in.
#[cube(launch)]
pub fn sort_segments_kernel(perm: &mut [i32], starts: &[i32], counts: &[i32], m: usize) {
    let i = ABSOLUTE_POS;
    if i >= m {
        terminate!();
    }
    let s = usize::cast_from(starts[i]);
    let len = usize::cast_from(counts[i]);
    let mut gap = len / 2;
    loop {
        if gap == 0 {
            break;
        }
        for a in gap..len {
            let v = perm[s + a];
            let mut b = a;
            loop {
                if b < gap {
                    break;
                }
                let u = perm[s + b - gap];
                if u <= v {
                    break;
                }
                perm[s + b] = u;
                b -= gap;
            }
            perm[s + b] = v;
        }
        gap /= 2;
    }
}

/// `out[i, c] = Σ_{p in segment i} coeffs[p] · x[p / k, c]`: the transposed product, one
/// thread per `(i, c)`, reading only the entries that name latent `i`.
#[cube(launch)]
pub fn scatter_outer_kernel(
    coeffs: &[f32],
    x: &[f32],
    perm: &[i32],
    starts: &[i32],
    counts: &[i32],
    out: &mut [f32],
    k: usize,
    d: usize,
) {
    let pos = ABSOLUTE_POS;
    if pos >= out.len() {
        terminate!();
    }
    let i = pos / d;
    let c = pos % d;
    let s = usize::cast_from(starts[i]);
    let len = usize::cast_from(counts[i]);
    let mut acc = 0.0f32;
    for t in 0..len {
        let p = usize::cast_from(perm[s + t]);
        acc += coeffs[p] * x[(p / k) * d + c];
    }
    out[pos] = acc;
}
