//! Dense f32 GEMM on host slices with the `gemm` crate's kernels (the ones burn's Flex backend
//! uses, with run-time AVX2 / AVX-512 dispatch), split by rows over threads.
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

/// `dst [m, n] = a [m, k] · b [k, n]`, row-major, single-threaded. `dst` is only written.
pub(super) fn gemm_rows(a: &[f32], m: usize, b: &[f32], k: usize, n: usize, dst: &mut [f32]) {
    if k == 0 {
        dst.fill(0.0);
        return;
    }
    assert!(a.len() >= m * k && b.len() >= k * n && dst.len() >= m * n, "invariant: GEMM operand sizes");
    // SAFETY: the three pointers cover `m × k`, `k × n` and `m × n` row-major elements (checked
    // above), `dst` does not alias the inputs (it is a distinct `&mut`), and `read_dst = false`
    // means `dst` is only written.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0f32,
            1.0f32,
            false,
            false,
            false,
            gemm::Parallelism::None,
        );
    }
}

/// `a [m, k] · b [k, n]` with `threads` threads, each computing its own rows in blocks of at
/// most [`BLOCK_BYTES`] of output. Allocates the `m × n` result. Slices of the wrong length are a
/// [`ShapeMismatch`](crate::SaeError::ShapeMismatch).
pub fn matmul(a: &[f32], m: usize, b: &[f32], k: usize, n: usize, threads: usize) -> crate::Result<Vec<f32>> {
    matmul_then(a, m, b, k, n, threads, |_| {})
}

/// [`matmul`], then `epilogue` on every output row (length `n`) while its block is still in
/// cache: the bias and activation of a dense encoder cost no extra pass over `m × n` floats.
pub fn matmul_then(a: &[f32], m: usize, b: &[f32], k: usize, n: usize, threads: usize, epilogue: impl Fn(&mut [f32]) + Sync) -> crate::Result<Vec<f32>> {
    super::check_len("a", a.len(), &[m, k])?;
    super::check_len("b", b.len(), &[k, n])?;
    let mut out = vec![0.0f32; m * n];
    if m == 0 || n == 0 {
        return Ok(out);
    }
    let rows_per = m.div_ceil(threads.max(1)).max(1);
    let block = (BLOCK_BYTES / (4 * n)).max(8);
    std::thread::scope(|s| {
        for (t, part) in out.chunks_mut(rows_per * n).enumerate() {
            let first = t * rows_per;
            let epilogue = &epilogue;
            s.spawn(move || {
                for (i, dst) in part.chunks_mut(block * n).enumerate() {
                    let r0 = first + i * block;
                    let rows = dst.len() / n;
                    gemm_rows(&a[r0 * k..(r0 + rows) * k], rows, b, k, n, dst);
                    dst.chunks_mut(n).for_each(epilogue);
                }
            });
        }
    });
    Ok(out)
}
