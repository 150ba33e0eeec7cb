//! An f32 GEMM whose right-hand side is packed once and shared by every thread, with an AVX2 +
//! FMA micro-kernel: the encoder's `x · W_enc` in blocks of a few dozen rows.
//!
//! Why not only the `gemm` crate: it re-packs the right-hand side on every call, so a call must
//! cover ~1 000 rows (24 MiB of output per thread at d_sae 6144) for the packing to cost little,
//! and that block is what the fused encoder had to hold per thread. Packed once here (its own
//! 16-column panels, `W_enc`'s size), the right-hand side serves any number of small row blocks
//! without repacking, so the per-thread output block is 96 rows (2.3 MiB at d_sae 6144).
//!
//! Layout: the right-hand side `b [k, n]` becomes `⌈n / 16⌉` panels of `k × 16` floats, row `kk`
//! of a panel holding `b[kk, 16p .. 16p + 16]` (zero past `n`), panels 64-byte aligned. Any
//! `kc`-deep slice of a panel is contiguous, so the product runs in depth blocks of [`KC`] rows:
//! the 16-column slice of `b` stays in L1 while the micro-kernel sweeps a block of rows held in
//! L2, six rows × 16 columns in twelve AVX registers per step (the register tile of BLIS-style
//! kernels for 16 ymm registers).
//!
//! Only on x86-64 CPUs with AVX2 and FMA ([`PackedRhs::new`] returns `None` elsewhere, and the
//! caller uses the `gemm` crate with its own run-time dispatch), and only for 2 048 rows or more
//! (below that, packing all of `W_enc` up front costs more than it saves).

use super::operand::Operand;

/// Columns per panel (two 8-lane AVX registers).
const NR: usize = 16;
/// Rows per micro-tile.
const MR: usize = 6;
/// Most depth of one pass over a row block: `KC × 16` floats of a panel (≤ 32 KiB) stay in L1.
/// Measured at d_in 384, d_sae 6144 (fused TopK encode, 2 threads): depth blocks of 128 / 256 /
/// 384 / 512 took 302 / 273 / 234 / 227 ms: a second pass re-reads the output block from L3.
const KC: usize = 512;

/// The right-hand side of a GEMM, packed in 16-column panels (see the module docs).
#[derive(Debug)]
pub struct PackedRhs {
    buf: Vec<f32>,
    /// Offset of the first panel in `buf`, for 64-byte alignment.
    start: usize,
    k: usize,
    n: usize,
}

impl PackedRhs {
    /// Packs the operand `b` (logically `[k, n]`, stored row-major or transposed) with `threads`
    /// threads, or `None` when this CPU lacks AVX2 and FMA, or `b`'s slice is not `k × n` long.
    pub fn of(b: Operand<'_>, threads: usize) -> Option<Self> {
        let (k, n) = (b.rows, b.cols);
        if !supported() || b.data.len() != k * n {
            return None;
        }
        let panels = n.div_ceil(NR);
        let panel_len = k * NR;
        let mut buf = vec![0.0f32; panels * panel_len + NR];
        let start = (buf.as_ptr() as usize).wrapping_neg() % 64 / 4;
        let area = &mut buf[start..start + panels * panel_len];
        if panel_len > 0 {
            let per = panels.div_ceil(threads.max(1)).max(1);
            std::thread::scope(|s| {
                for (t, part) in area.chunks_mut(per * panel_len).enumerate() {
                    s.spawn(move || {
                        for (i, panel) in part.chunks_mut(panel_len).enumerate() {
                            let c0 = (t * per + i) * NR;
                            let w = NR.min(n - c0);
                            if b.transposed {
                                // Column `c` of `b` is row `c` of the stored matrix.
                                for j in 0..w {
                                    let col = &b.data[(c0 + j) * k..(c0 + j + 1) * k];
                                    col.iter().enumerate().for_each(|(kk, v)| panel[kk * NR + j] = *v);
                                }
                            } else {
                                for (kk, dst) in panel.chunks_mut(NR).enumerate() {
                                    dst[..w].copy_from_slice(&b.data[kk * n + c0..kk * n + c0 + w]);
                                }
                            }
                        }
                    });
                }
            });
        }
        Some(Self { buf, start, k, n })
    }

    fn panel(&self, p: usize) -> &[f32] {
        let len = self.k * NR;
        &self.buf[self.start + p * len..self.start + (p + 1) * len]
    }

    /// `dst [m, n] = a [m, k] · b`, single-threaded; `dst` is only written. `a_pack` is scratch
    /// for the packed rows of `a` (grown as needed, reusable across calls). Blocks of up to ~100
    /// rows keep the packed rows in L2.
    pub fn mul_rows(&self, a: &[f32], m: usize, dst: &mut [f32], a_pack: &mut Vec<f32>) {
        self.mul_rows_of(Operand::row_major(&a[..m * self.k], m, self.k), 0, m, dst, a_pack);
    }

    /// `dst [m, n] = a[r0 .. r0 + m] · b` for an operand `a` (logically `[rows, k]`, stored
    /// row-major or transposed), single-threaded; otherwise as [`PackedRhs::mul_rows`].
    pub fn mul_rows_of(&self, a: Operand<'_>, r0: usize, m: usize, dst: &mut [f32], a_pack: &mut Vec<f32>) {
        let (k, n) = (self.k, self.n);
        assert!(a.cols == k && r0 + m <= a.rows && a.data.len() >= a.rows * k && dst.len() >= m * n, "invariant: GEMM operand sizes");
        if k == 0 {
            dst[..m * n].fill(0.0);
            return;
        }
        let tiles = m.div_ceil(MR);
        // Equal depth blocks of at most KC: 384 → one block, 768 → two of 384.
        let kcb = k.div_ceil(k.div_ceil(KC));
        for k0 in (0..k).step_by(kcb) {
            let kc = kcb.min(k - k0);
            pack_rows(a, r0, m, k0, kc, a_pack);
            for p in 0..n.div_ceil(NR) {
                let b = &self.panel(p)[k0 * NR..(k0 + kc) * NR];
                let cols = NR.min(n - p * NR);
                for t in 0..tiles {
                    let rows = MR.min(m - t * MR);
                    let a_tile = &a_pack[t * MR * kc..(t + 1) * MR * kc];
                    let c = &mut dst[t * MR * n + p * NR..];
                    // SAFETY: `new` only builds a `PackedRhs` where AVX2 and FMA are present;
                    // `a_tile` holds `MR × kc` and `b` `kc × NR` floats; `c` starts at row
                    // `t·MR`, column `p·NR` of `dst`, and the kernel writes `rows` rows of `cols`
                    // columns at stride `n`, all inside `dst` (`rows ≤ m - t·MR`,
                    // `cols ≤ n - p·NR`).
                    unsafe { tile(kc, a_tile, b, c, n, rows, cols, k0 > 0) };
                }
            }
        }
    }
}

/// Whether this CPU runs the packed kernel.
pub fn supported() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Packs columns `k0 .. k0 + kc` of rows `r0 .. r0 + m` of `a` as micro-panels of `MR` rows:
/// element `[kk, r]` of tile `t` at `t·MR·kc + kk·MR + r`, zero past row `m`.
fn pack_rows(a: Operand<'_>, r0: usize, m: usize, k0: usize, kc: usize, out: &mut Vec<f32>) {
    let tiles = m.div_ceil(MR);
    let k = a.cols;
    out.clear();
    out.resize(tiles * MR * kc, 0.0);
    for t in 0..tiles {
        let tile = &mut out[t * MR * kc..(t + 1) * MR * kc];
        let (first, rows) = (r0 + t * MR, MR.min(m - t * MR));
        if a.transposed {
            // Row `first + r` of `a` is column `first + r` of the stored matrix: for each depth
            // `kk` the tile's rows are `rows` consecutive stored elements.
            for kk in 0..kc {
                let src = &a.data[(k0 + kk) * a.rows + first..(k0 + kk) * a.rows + first + rows];
                tile[kk * MR..kk * MR + rows].copy_from_slice(src);
            }
        } else {
            for r in 0..rows {
                let row = &a.data[(first + r) * k + k0..(first + r) * k + k0 + kc];
                for (kk, v) in row.iter().enumerate() {
                    tile[kk * MR + r] = *v;
                }
            }
        }
    }
}

/// One `MR × NR` tile: `c[r, j] (+)= Σ_kk a[kk, r] · b[kk, j]` for `r < rows`, `j < cols`.
///
/// # Safety
/// The CPU must have AVX2 and FMA; `a` must hold `MR·kc` floats, `b` `kc·NR`, and `c` must be
/// valid for `rows` rows of `cols` floats at stride `ldc` (`c.len() ≥ (rows-1)·ldc + cols`).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(kc: usize, a: &[f32], b: &[f32], c: &mut [f32], ldc: usize, rows: usize, cols: usize, accumulate: bool) {
    use std::arch::x86_64::*;
    debug_assert!(a.len() >= MR * kc && b.len() >= NR * kc && c.len() >= (rows - 1) * ldc + cols);
    let (a, b) = (a.as_ptr(), b.as_ptr());
    let z = _mm256_setzero_ps();
    let (mut c00, mut c01, mut c10, mut c11, mut c20, mut c21) = (z, z, z, z, z, z);
    let (mut c30, mut c31, mut c40, mut c41, mut c50, mut c51) = (z, z, z, z, z, z);
    for kk in 0..kc {
        // SAFETY: `kk < kc`, so `b + kk·NR + 8 .. + 16` and `a + kk·MR + 5` are in bounds.
        unsafe {
            let b0 = _mm256_loadu_ps(b.add(kk * NR));
            let b1 = _mm256_loadu_ps(b.add(kk * NR + 8));
            let ap = a.add(kk * MR);
            // Row `r` of the tile: broadcast a[kk, r], multiply-add into its two accumulators.
            macro_rules! row {
                ($r:expr, $lo:ident, $hi:ident) => {{
                    let v = _mm256_broadcast_ss(&*ap.add($r));
                    $lo = _mm256_fmadd_ps(v, b0, $lo);
                    $hi = _mm256_fmadd_ps(v, b1, $hi);
                }};
            }
            row!(0, c00, c01);
            row!(1, c10, c11);
            row!(2, c20, c21);
            row!(3, c30, c31);
            row!(4, c40, c41);
            row!(5, c50, c51);
        }
    }
    let acc = [[c00, c01], [c10, c11], [c20, c21], [c30, c31], [c40, c41], [c50, c51]];
    if cols == NR {
        for (r, pair) in acc.iter().enumerate().take(rows) {
            let row = &mut c[r * ldc..r * ldc + NR];
            let p = row.as_mut_ptr();
            // SAFETY: `row` holds NR = 16 floats: two 8-lane stores.
            unsafe {
                let (mut lo, mut hi) = (pair[0], pair[1]);
                if accumulate {
                    lo = _mm256_add_ps(lo, _mm256_loadu_ps(p));
                    hi = _mm256_add_ps(hi, _mm256_loadu_ps(p.add(8)));
                }
                _mm256_storeu_ps(p, lo);
                _mm256_storeu_ps(p.add(8), hi);
            }
        }
        return;
    }
    let mut tmp = [0.0f32; NR];
    for (r, pair) in acc.iter().enumerate().take(rows) {
        // SAFETY: `tmp` holds 16 floats.
        unsafe {
            _mm256_storeu_ps(tmp.as_mut_ptr(), pair[0]);
            _mm256_storeu_ps(tmp.as_mut_ptr().add(8), pair[1]);
        }
        let row = &mut c[r * ldc..r * ldc + cols];
        if accumulate {
            row.iter_mut().zip(&tmp).for_each(|(d, v)| *d += v);
        } else {
            row.copy_from_slice(&tmp[..cols]);
        }
    }
}

/// Never called: [`PackedRhs::new`] returns `None` off x86-64.
#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
unsafe fn tile(_kc: usize, _a: &[f32], _b: &[f32], _c: &mut [f32], _ldc: usize, _rows: usize, _cols: usize, _accumulate: bool) {}
