//! Dense f32 GEMM on host slices with the `gemm` crate's kernels (the ones burn's Flex backend
//! uses, with run-time AVX2 / AVX-512 dispatch) or, on x86-64 with AVX2 and FMA, the packed
//! kernel of `packed.rs`, split by rows over threads.
//!
//! Why not Flex's own matmul: it hands the whole product to the `gemm` crate's rayon
//! parallelism, which at the SAE shape (`[4096, 384] · [384, 6144]`) took 390–490 ms on this
//! project's 2-core machine, while two threads each multiplying their own rows did the GEMM *and*
//! the top-k selection of a fused TopK encode in 280–330 ms.

/// Bytes of output per thread and GEMM call. The `gemm` crate re-packs the right-hand side on
/// every call, so calls must cover many rows for that to cost little: measured at d_in 384,
/// d_sae 6144, 2 threads, 4096 rows, a fused TopK encode took 486 / 360 / 314 / 296 / 483 ms with
/// blocks of 32 / 128 / 512 / 1024 / 2048 rows. 24 MiB is 1024 rows at 6144 columns.
pub const BLOCK_BYTES: usize = 24 << 20;

use super::HostRun;
pub use super::operand::Operand;
use super::packed::PackedRhs;
use sae_core::HostGemm;

/// `dst [m, n] = a [m, k] · b [k, n]`, row-major, single-threaded. `dst` is only written.
pub(super) fn gemm_rows(a: &[f32], m: usize, b: &[f32], k: usize, n: usize, dst: &mut [f32]) {
    gemm_rows_of(Operand::row_major(&a[..m * k], m, k), 0, m, Operand::row_major(b, k, n), dst);
}

/// `dst [m, n] = a[r0 .. r0 + m] · b` with the `gemm` crate (any operand layout: it takes
/// strides), single-threaded. `dst` is only written.
fn gemm_rows_of(a: Operand<'_>, r0: usize, m: usize, b: Operand<'_>, dst: &mut [f32]) {
    let (k, n) = (b.rows, b.cols);
    if k == 0 {
        dst[..m * n].fill(0.0);
        return;
    }
    assert!(
        a.cols == k && r0 + m <= a.rows && a.data.len() >= a.rows * k && b.data.len() >= k * n && dst.len() >= m * n,
        "invariant: GEMM operand sizes"
    );
    let ((a_rs, a_cs), (b_rs, b_cs)) = (a.strides(), b.strides());
    // SAFETY: `a` covers `a.rows × k` elements at strides `(a_rs, a_cs)` and the first of rows
    // `r0 .. r0 + m` is at `r0 · a_rs`; `b` covers `k × n` at `(b_rs, b_cs)`; `dst` `m × n`
    // row-major (all checked above). `dst` does not alias the inputs (a distinct `&mut`), and
    // `read_dst = false` means it is only written.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.data.as_ptr().add(r0 * a_rs),
            a_cs as isize,
            a_rs as isize,
            b.data.as_ptr(),
            b_cs as isize,
            b_rs as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// The right-hand side of the host GEMMs: packed once for the AVX2 kernel where the CPU has it
/// ([`PackedRhs`]), else the plain row-major slice for the `gemm` crate.
pub(super) enum Rhs<'a> {
    /// Packed in 16-column panels, shared by every thread.
    Packed(PackedRhs),
    /// The operand itself, for the `gemm` crate.
    Plain(Operand<'a>),
}

impl<'a> Rhs<'a> {
    /// `b` `[k, n]` (row-major) prepared for [`Rhs::mul_rows`] on `m` rows of `a`; see
    /// [`Rhs::of`].
    pub(super) fn new(b: &'a [f32], m: usize, k: usize, n: usize, run: HostRun) -> Self {
        Self::of(Operand::row_major(b, k, n), m, run)
    }

    /// The operand `b` prepared for products with `m` rows, packed with `run.threads` threads
    /// where that pays: from [`PACKED_MIN_ROWS`] rows on. [`HostGemm::GemmCrate`] keeps the
    /// `gemm` crate's kernels (for comparisons).
    pub(super) fn of(b: Operand<'a>, m: usize, run: HostRun) -> Self {
        let crate_only = run.gemm == HostGemm::GemmCrate;
        match (!crate_only && m >= PACKED_MIN_ROWS).then(|| PackedRhs::of(b, run.threads)).flatten() {
            Some(p) => Rhs::Packed(p),
            None => Rhs::Plain(b),
        }
    }

    /// Rows per call of [`Rhs::mul_rows`]: 96 with the packed kernel (≤ 4 MiB of output), else
    /// [`BLOCK_BYTES`] of output, at least 8.
    pub(super) fn block_rows(&self, n: usize) -> usize {
        match self {
            Rhs::Packed(_) => (PACKED_BLOCK_BYTES / (4 * n.max(1))).clamp(6, 96),
            Rhs::Plain(..) => (BLOCK_BYTES / (4 * n.max(1))).max(8),
        }
    }

    /// `dst [m, n] = a [m, k] · b`, single-threaded; `a_pack` is reusable scratch.
    pub(super) fn mul_rows(&self, a: &[f32], m: usize, dst: &mut [f32], a_pack: &mut Vec<f32>) {
        match self {
            Rhs::Packed(p) => p.mul_rows(a, m, dst, a_pack),
            Rhs::Plain(b) => gemm_rows(a, m, b.data, b.rows, b.cols, dst),
        }
    }

    /// `dst [m, n] = a[r0 .. r0 + m] · b` for an operand `a` of any layout, single-threaded.
    fn mul_rows_of(&self, a: Operand<'_>, r0: usize, m: usize, dst: &mut [f32], a_pack: &mut Vec<f32>) {
        match self {
            Rhs::Packed(p) => p.mul_rows_of(a, r0, m, dst, a_pack),
            Rhs::Plain(b) => gemm_rows_of(a, r0, m, *b, dst),
        }
    }
}

/// Fewest rows for which packing the right-hand side (a copy of all of it, up front) pays.
/// Measured at d_in 384, d_sae 6144 (TopK encode, 2 threads, packed vs `gemm` crate, ms):
/// 1 row 6.4 vs 0.8, 128 rows 13–16 vs 9–12, 512 rows 31–37 vs 26–27, 1 024 rows 52–58 vs
/// 49–51, 2 048 rows 95–118 vs 100–124; at 4 096 rows the packed kernel also needs a tenth of
/// the scratch.
const PACKED_MIN_ROWS: usize = 2048;

/// Most output per thread and call with the packed kernel.
const PACKED_BLOCK_BYTES: usize = 4 << 20;

/// `a [m, k] · b [k, n]` with `run.threads` threads, each computing its own rows in blocks (96 rows
/// with the packed AVX2 kernel, else at most [`BLOCK_BYTES`] of output). Allocates the `m × n`
/// result. Slices of the wrong length are a [`ShapeMismatch`](sae_core::SaeError::ShapeMismatch).
pub fn matmul(a: &[f32], m: usize, b: &[f32], k: usize, n: usize, run: HostRun) -> sae_core::Result<Vec<f32>> {
    matmul_then(a, m, b, k, n, run, |_| {})
}

/// [`matmul`], then `epilogue` on every output row (length `n`) while its block is still in
/// cache: the bias and activation of a dense encoder cost no extra pass over `m × n` floats.
pub fn matmul_then(a: &[f32], m: usize, b: &[f32], k: usize, n: usize, run: HostRun, epilogue: impl Fn(&mut [f32]) + Sync) -> sae_core::Result<Vec<f32>> {
    super::check_len("a", a.len(), &[m, k])?;
    super::check_len("b", b.len(), &[k, n])?;
    product(Operand::row_major(a, m, k), Operand::row_major(b, k, n), run, epilogue)
}

/// `a · b` for operands of any layout (`Aᵀ · B`, `A · Bᵀ`: the gradients of a product, without
/// transposed copies), with `run` as [`matmul`]. Operands whose slices do not hold
/// `rows × cols` elements, or whose inner sizes differ, are a
/// [`ShapeMismatch`](sae_core::SaeError::ShapeMismatch).
pub fn matmul_operands(a: Operand<'_>, b: Operand<'_>, run: HostRun) -> sae_core::Result<Vec<f32>> {
    super::check_len("a", a.data.len(), &[a.rows, a.cols])?;
    super::check_len("b", b.data.len(), &[b.rows, b.cols])?;
    super::check_len("b's rows (a's columns)", b.rows, &[a.cols])?;
    product(a, b, run, |_| {})
}

/// The threaded product behind [`matmul_then`] and [`matmul_operands`] (sizes checked).
fn product(a: Operand<'_>, b: Operand<'_>, run: HostRun, epilogue: impl Fn(&mut [f32]) + Sync) -> sae_core::Result<Vec<f32>> {
    let (m, n) = (a.rows, b.cols);
    let mut out = vec![0.0f32; m * n];
    if m == 0 || n == 0 {
        return Ok(out);
    }
    let rhs = Rhs::of(b, m, run);
    let rows_per = m.div_ceil(run.threads.max(1)).max(1);
    let block = rhs.block_rows(n);
    std::thread::scope(|s| {
        for (t, part) in out.chunks_mut(rows_per * n).enumerate() {
            let first = t * rows_per;
            let (epilogue, rhs) = (&epilogue, &rhs);
            s.spawn(move || {
                let mut a_pack = Vec::new();
                for (i, dst) in part.chunks_mut(block * n).enumerate() {
                    let r0 = first + i * block;
                    let rows = dst.len() / n;
                    rhs.mul_rows_of(a, r0, rows, dst, &mut a_pack);
                    dst.chunks_mut(n).for_each(epilogue);
                }
            });
        }
    });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::{Operand, PackedRhs, Rhs};

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
            })
            .collect()
    }

    /// The deterministic error bound of an f32 dot product of length `k` in any order, with or
    /// without FMA, against the exact value: `γₖ·Σ|aᵢ·bᵢ|` (`crate::tolerance`), plus one
    /// rounding of the result.
    fn worst_case(k: usize, magnitude: f64) -> f64 {
        (sae_core::tolerance::dot_product_worst(k) + sae_core::tolerance::UNIT_ROUNDOFF) * magnitude
    }

    /// Both kernels (the `gemm` crate's and, where the CPU has AVX2 + FMA, the packed one) equal
    /// an f64 product at shapes that leave partial tiles, partial panels and a partial depth
    /// block, and write exactly `m × n` floats.
    #[test]
    fn both_kernels_equal_an_f64_product_at_odd_shapes() {
        if !super::super::packed::supported() {
            eprintln!("skipped: the packed AVX2+FMA kernel (this CPU lacks it); {}", super::super::describe());
        }
        for (m, k, n) in [(13, 300, 37), (6, 16, 16), (1, 1, 1), (97, 513, 5), (5, 7, 33), (4, 0, 3)] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let mut kernels = vec![Rhs::Plain(Operand::row_major(&b, k, n))];
            kernels.extend(PackedRhs::of(Operand::row_major(&b, k, n), 3).map(Rhs::Packed));
            for rhs in &kernels {
                let name = if matches!(rhs, Rhs::Packed(_)) { "packed" } else { "gemm crate" };
                let mut dst = vec![f32::NAN; m * n + 3];
                rhs.mul_rows(&a, m, &mut dst[..m * n], &mut Vec::new());
                for r in 0..m {
                    for j in 0..n {
                        let want: f64 = (0..k).map(|i| a[r * k + i] as f64 * b[i * n + j] as f64).sum();
                        let mag: f64 = (0..k).map(|i| (a[r * k + i] as f64 * b[i * n + j] as f64).abs()).sum();
                        let got = dst[r * n + j] as f64;
                        assert!((got - want).abs() <= worst_case(k, mag), "{name} ({m},{k},{n}) [{r},{j}]: {got} vs {want}");
                    }
                }
                assert!(dst[m * n..].iter().all(|v| v.is_nan()), "{name} wrote past the output");
            }
        }
    }

    /// `A · B`, `Aᵀ · B`, `A · Bᵀ` and `Aᵀ · Bᵀ` from the stored matrices, on both kernels, for
    /// a block of rows that starts inside `a` (`r0`), against an f64 product; and the threaded
    /// [`super::matmul_operands`] on the same operands.
    #[test]
    fn transposed_operands_equal_an_f64_product_on_both_kernels() {
        let (rows, k, n, r0, m) = (23, 301, 37, 5, 13);
        let (a_store, b_store) = (values(rows * k, 3), values(k * n, 4));
        for (ta, tb) in [(false, false), (true, false), (false, true), (true, true)] {
            // The logical a [rows, k] and b [k, n]; stored transposed where asked.
            let at = |i: usize, j: usize| if ta { a_store[j * rows + i] } else { a_store[i * k + j] };
            let bt = |i: usize, j: usize| if tb { b_store[j * k + i] } else { b_store[i * n + j] };
            let a = if ta { Operand::transpose_of(&a_store, rows, k) } else { Operand::row_major(&a_store, rows, k) };
            let b = if tb { Operand::transpose_of(&b_store, k, n) } else { Operand::row_major(&b_store, k, n) };
            let want = |r: usize, j: usize| (0..k).map(|i| at(r, i) as f64 * bt(i, j) as f64).sum::<f64>();
            let mag = |r: usize, j: usize| (0..k).map(|i| (at(r, i) as f64 * bt(i, j) as f64).abs()).sum::<f64>();
            let mut kernels = vec![Rhs::Plain(b)];
            kernels.extend(PackedRhs::of(b, 2).map(Rhs::Packed));
            for rhs in &kernels {
                let name = if matches!(rhs, Rhs::Packed(_)) { "packed" } else { "gemm crate" };
                let mut dst = vec![f32::NAN; m * n];
                rhs.mul_rows_of(a, r0, m, &mut dst, &mut Vec::new());
                for r in 0..m {
                    for j in 0..n {
                        let (got, w) = (dst[r * n + j] as f64, want(r0 + r, j));
                        assert!((got - w).abs() <= worst_case(k, mag(r0 + r, j)), "{name} ta={ta} tb={tb} [{r},{j}]: {got} vs {w}");
                    }
                }
            }
            let full = super::matmul_operands(a, b, super::HostRun::threads(3)).unwrap();
            for r in 0..rows {
                for j in 0..n {
                    let (got, w) = (full[r * n + j] as f64, want(r, j));
                    assert!((got - w).abs() <= worst_case(k, mag(r, j)), "matmul_operands ta={ta} tb={tb} [{r},{j}]");
                }
            }
        }
        assert!(super::matmul_operands(Operand::row_major(&a_store, rows, k), Operand::row_major(&b_store[..n], 1, n), super::HostRun::threads(1)).is_err(), "inner sizes differ");
    }
}
