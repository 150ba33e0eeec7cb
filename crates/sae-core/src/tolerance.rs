//! An error model for comparing two f32 computations of one quantity that may add up in another
//! order: another CPU's SIMD width (AVX2 or AVX-512 GEMM kernels), another blocking, another
//! backend, another library (PyTorch for the reference fixtures). Tests derive their tolerances
//! from it, so that a pass or a failure does not depend on the machine's rounding, only on
//! whether the two computations agree as well as any two conforming f32 implementations must.
//!
//! **The model.** A dot product of length `k` computed in f32 in any order, with or without
//! fused multiply-adds, satisfies `|fl(a·b) − a·b| ≤ λ·√k·u·Σ|aᵢ·bᵢ|` with probability at least
//! `1 − 2·exp(−λ²(1 − u)²/2)`, where `u = 2⁻²⁴` is f32's unit roundoff (Higham & Mary, "A new
//! approach to probabilistic rounding error analysis", SIAM J. Sci. Comput. 41(5), 2019,
//! Theorem 3.1: the rounding errors are modelled as independent and mean-zero, which blocked
//! and SIMD summation satisfy in practice). With [`LAMBDA`] = 6 that probability is above
//! 1 − 4·10⁻⁸ per element, so a test over millions of elements still fails by chance with
//! probability well under 10⁻¹. The deterministic worst case, `γₖ = k·u/(1 − k·u)`, is
//! [`dot_product_worst`]. Two computations that each satisfy the bound differ from each other by
//! at most twice it ([`between_implementations`]).
//!
//! A deep network adds such an error in every product and carries the earlier ones forward:
//! [`network_depth`] sums one bound per product along the longest chain, relative to the size
//! of the operands (normwise), which is how [`compare_rows`] measures the result.
//!
//! ```
//! use sae_core::tolerance::{between_implementations, compare_rows};
//!
//! // Two 1×4 rows that differ in the last bit of one element.
//! let a = [1.0f32, 2.0, 3.0, 4.0];
//! let b = [1.0f32, 2.0, 3.0, f32::from_bits(4.0f32.to_bits() + 1)];
//! let cmp = compare_rows(&a, &b, 4).unwrap();
//! assert!(cmp.worst_relative < between_implementations(4));
//! ```

/// f32's unit roundoff `u = 2⁻²⁴`: the largest relative error of one rounding.
pub const UNIT_ROUNDOFF: f64 = f32::EPSILON as f64 / 2.0;

/// The confidence multiplier λ of the probabilistic bound: with λ = 6 one element exceeds it
/// with probability below `2·exp(−18)` ≈ 3·10⁻⁸.
pub const LAMBDA: f64 = 6.0;

/// The probabilistic bound on one f32 dot product of length `k`, relative to `Σ|aᵢ·bᵢ|`:
/// `λ·√k·u`.
pub fn dot_product(k: usize) -> f64 {
    LAMBDA * (k.max(1) as f64).sqrt() * UNIT_ROUNDOFF
}

/// The deterministic worst case of one f32 dot product of length `k`, relative to `Σ|aᵢ·bᵢ|`:
/// `γₖ = k·u / (1 − k·u)` (Higham, *Accuracy and Stability of Numerical Algorithms*, §3.1).
pub fn dot_product_worst(k: usize) -> f64 {
    let ku = k.max(1) as f64 * UNIT_ROUNDOFF;
    ku / (1.0 - ku).max(f64::MIN_POSITIVE)
}

/// How far apart two f32 computations of one dot product of length `k` may be, relative to
/// `Σ|aᵢ·bᵢ|`, when each is within [`dot_product`] of the exact value: twice that bound.
pub fn between_implementations(k: usize) -> f64 {
    2.0 * dot_product(k)
}

/// How far apart two f32 computations of a network may be, normwise relative to a row of the
/// result, when the longest chain of products from input to that result passes `products`
/// products whose inner dimension is at most `k`: one [`between_implementations`] bound per
/// product, added up (first order: products of small errors are dropped), times `growth`, the
/// allowance for errors carried forward growing through the layers in between (1 where the
/// layers are normalised; the caller states why it picks another).
pub fn network_depth(products: usize, k: usize, growth: f64) -> f64 {
    products.max(1) as f64 * between_implementations(k) * growth
}

/// What [`compare_rows`] found: the largest per-row relative difference and where it is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RowComparison {
    /// `max_r ‖ours_r − reference_r‖₂ / ‖reference_r‖₂` over the rows (rows whose reference is
    /// zero count their absolute difference).
    pub worst_relative: f64,
    /// The row where [`RowComparison::worst_relative`] is reached.
    pub worst_row: usize,
    /// The largest absolute difference of one element, anywhere.
    pub max_abs: f64,
    /// The largest absolute value of the reference, anywhere.
    pub max_reference: f64,
}

/// Compares two row-major arrays of rows of `width` elements, row by row, normwise: the
/// measure an error bound relative to the operands' size ([`network_depth`]) speaks about.
/// `None` when the lengths differ or are not a multiple of `width`.
pub fn compare_rows(ours: &[f32], reference: &[f32], width: usize) -> Option<RowComparison> {
    if ours.len() != reference.len() || width == 0 || !ours.len().is_multiple_of(width) {
        return None;
    }
    let mut out = RowComparison { worst_relative: 0.0, worst_row: 0, max_abs: 0.0, max_reference: 0.0 };
    for (r, (a, b)) in ours.chunks(width).zip(reference.chunks(width)).enumerate() {
        let (mut diff, mut norm) = (0f64, 0f64);
        for (&x, &y) in a.iter().zip(b) {
            let d = (x as f64 - y as f64).abs();
            diff += d * d;
            norm += y as f64 * y as f64;
            out.max_abs = out.max_abs.max(d);
            out.max_reference = out.max_reference.max((y as f64).abs());
        }
        let rel = if norm > 0.0 { (diff / norm).sqrt() } else { diff.sqrt() };
        // NaN counts as the worst difference.
        if rel.is_nan() || rel > out.worst_relative {
            out.worst_relative = if rel.is_nan() { f64::INFINITY } else { rel };
            out.worst_row = r;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bounds_are_the_published_formulas() {
        // λ·√k·u at k = 1536: 6 · 39.19 · 5.96e-8.
        assert!((dot_product(1536) - 6.0 * 1536f64.sqrt() * 2f64.powi(-24)).abs() < 1e-18);
        assert!((dot_product_worst(1000) - 1000.0 * 2f64.powi(-24) / (1.0 - 1000.0 * 2f64.powi(-24))).abs() < 1e-18);
        assert_eq!(between_implementations(64), 2.0 * dot_product(64));
        assert_eq!(network_depth(3, 64, 2.0), 6.0 * between_implementations(64));
    }

    #[test]
    fn a_real_f32_dot_product_stays_inside_the_bound_in_two_orders() {
        // Hand-made operands: a long sum whose forward and reverse f32 orders round differently.
        let k = 4096;
        let a: Vec<f32> = (0..k).map(|i| ((i * 7919 % 1000) as f32 / 997.0) - 0.5).collect();
        let b: Vec<f32> = (0..k).map(|i| ((i * 104_729 % 1000) as f32 / 991.0) - 0.5).collect();
        let exact: f64 = a.iter().zip(&b).map(|(&x, &y)| x as f64 * y as f64).sum();
        let scale: f64 = a.iter().zip(&b).map(|(&x, &y)| (x as f64 * y as f64).abs()).sum();
        let fwd = a.iter().zip(&b).fold(0f32, |s, (x, y)| s + x * y);
        let rev = a.iter().zip(&b).rev().fold(0f32, |s, (x, y)| s + x * y);
        for v in [fwd, rev] {
            assert!((v as f64 - exact).abs() <= dot_product_worst(k) * scale);
        }
        assert!(((fwd - rev) as f64).abs() <= between_implementations(k) * scale);
    }

    #[test]
    fn rows_are_compared_normwise_and_nan_is_the_worst() {
        let cmp = compare_rows(&[1.0, 0.0, 3.0, 4.0], &[1.0, 0.0, 3.0, 4.5], 2).unwrap();
        assert_eq!(cmp.worst_row, 1);
        assert!((cmp.worst_relative - 0.5 / (9.0f64 + 20.25).sqrt()).abs() < 1e-12);
        assert_eq!(cmp.max_abs, 0.5);
        assert_eq!(cmp.max_reference, 4.5);
        assert_eq!(compare_rows(&[f32::NAN, 1.0], &[0.0, 1.0], 1).unwrap().worst_relative, f64::INFINITY);
        assert!(compare_rows(&[1.0], &[1.0, 2.0], 1).is_none());
        assert!(compare_rows(&[1.0, 2.0, 3.0], &[1.0, 2.0, 3.0], 2).is_none());
    }
}
