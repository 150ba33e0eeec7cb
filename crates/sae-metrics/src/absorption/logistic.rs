//! Binary L2-regularised logistic regression with an unpenalised intercept and "balanced" class
//! weights: the model scikit-learn's `LogisticRegression(class_weight="balanced")` fits (C = 1),
//! which SAEBench uses for its k-sparse probes. The objective is strictly convex, so its one
//! minimiser is found here by Newton's method with a backtracking line search (to a gradient
//! below 1e-9) instead of scikit-learn's L-BFGS; the two agree to the precision of L-BFGS's
//! stopping rule (cross-checked in the tests against scikit-learn's coefficients).

use sae_core::{Result, SaeError};

/// A fitted binary logistic model `P(y = 1 | x) = σ(w·x + b)`.
#[derive(Debug, Clone, PartialEq)]
pub struct Logistic {
    /// Coefficients, one per feature.
    pub coef: Vec<f64>,
    /// Intercept.
    pub intercept: f64,
}

impl Logistic {
    /// The decision value `w·x + b` of one row.
    pub fn decision(&self, x: &[f32]) -> f64 {
        self.coef.iter().zip(x).map(|(w, &v)| w * v as f64).sum::<f64>() + self.intercept
    }
}

/// Fits the model on rows `x` (`[n, k]`, row-major) with labels `y`, inverse regularisation
/// strength `c` (scikit-learn's `C`). Both classes must be present.
pub fn fit_balanced(x: &[f32], k: usize, y: &[bool], c: f64) -> Result<Logistic> {
    let n = y.len();
    if x.len() != n * k || n == 0 {
        return Err(SaeError::Unsupported(format!("logistic regression: {} values are not {n} rows of {k} features", x.len())));
    }
    let n1 = y.iter().filter(|&&v| v).count();
    if n1 == 0 || n1 == n {
        return Err(SaeError::Unsupported("logistic regression needs rows of both classes".into()));
    }
    // "balanced": each class weighs n / (2 · its count), so both classes weigh n/2 in total.
    let (w1, w0) = (n as f64 / (2.0 * n1 as f64), n as f64 / (2.0 * (n - n1) as f64));
    let s: Vec<f64> = y.iter().map(|&v| c * if v { w1 } else { w0 }).collect();
    let p = k + 1;
    let mut theta = vec![0f64; p];
    let row = |i: usize| &x[i * k..(i + 1) * k];
    let objective = |t: &[f64]| -> f64 {
        let mut f = 0.5 * t[..k].iter().map(|v| v * v).sum::<f64>();
        for i in 0..n {
            let z = row(i).iter().zip(t).map(|(&a, b)| a as f64 * b).sum::<f64>() + t[k];
            // log(1 + e^{−z}) for y = 1, log(1 + e^{z}) for y = 0, without overflow.
            let m = if y[i] { -z } else { z };
            f += s[i] * (m.max(0.0) + (-m.abs()).exp().ln_1p());
        }
        f
    };
    let mut f = objective(&theta);
    for _ in 0..100 {
        let mut g = vec![0f64; p];
        let mut h = vec![0f64; p * p];
        g[..k].copy_from_slice(&theta[..k]);
        for j in 0..k {
            h[j * p + j] = 1.0;
        }
        for i in 0..n {
            let xi = row(i);
            let z = xi.iter().zip(&theta).map(|(&a, b)| a as f64 * b).sum::<f64>() + theta[k];
            let pr = 1.0 / (1.0 + (-z).exp());
            let r = s[i] * (pr - y[i] as u8 as f64);
            let q = s[i] * pr * (1.0 - pr);
            for a in 0..p {
                let xa = if a < k { xi[a] as f64 } else { 1.0 };
                g[a] += r * xa;
                for b in 0..=a {
                    let xb = if b < k { xi[b] as f64 } else { 1.0 };
                    h[a * p + b] += q * xa * xb;
                }
            }
        }
        if g.iter().fold(0f64, |m, v| m.max(v.abs())) < 1e-9 {
            break;
        }
        let step = cholesky_solve(&mut h, &g, p).ok_or_else(|| SaeError::Unsupported("logistic regression: the Hessian is not positive definite".into()))?;
        let mut alpha = 1.0;
        loop {
            let cand: Vec<f64> = theta.iter().zip(&step).map(|(t, d)| t - alpha * d).collect();
            let fc = objective(&cand);
            let decrease = alpha * g.iter().zip(&step).map(|(a, b)| a * b).sum::<f64>();
            if fc <= f - 1e-4 * decrease || alpha < 1e-10 {
                theta = cand;
                f = fc;
                break;
            }
            alpha *= 0.5;
        }
    }
    let intercept = theta[k];
    theta.truncate(k);
    Ok(Logistic { coef: theta, intercept })
}

/// Solves `H d = g` for symmetric positive definite `H` (lower triangle filled), in place.
fn cholesky_solve(h: &mut [f64], g: &[f64], p: usize) -> Option<Vec<f64>> {
    for j in 0..p {
        let mut diag = h[j * p + j];
        for m in 0..j {
            diag -= h[j * p + m] * h[j * p + m];
        }
        if !(diag > 0.0) {
            return None;
        }
        let l = diag.sqrt();
        h[j * p + j] = l;
        for i in j + 1..p {
            let mut v = h[i * p + j];
            for m in 0..j {
                v -= h[i * p + m] * h[j * p + m];
            }
            h[i * p + j] = v / l;
        }
    }
    let mut z = g.to_vec();
    for i in 0..p {
        for m in 0..i {
            z[i] -= h[i * p + m] * z[m];
        }
        z[i] /= h[i * p + i];
    }
    for i in (0..p).rev() {
        for m in i + 1..p {
            z[i] -= h[m * p + i] * z[m];
        }
        z[i] /= h[i * p + i];
    }
    Some(z)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gradient_of_the_objective_vanishes_at_the_fit() {
        // Overlapping classes in two features: a finite optimum.
        let x = [0.0f32, 1.0, 1.0, 0.5, 2.0, 2.0, 3.0, 0.0, 0.5, 0.2, 2.5, 1.5, 1.0, 1.0];
        let y = [false, false, true, false, true, true, true];
        let fit = fit_balanced(&x, 2, &y, 1.0).unwrap();
        let (n1, n) = (4.0, 7.0);
        let s = |v: bool| if v { n / (2.0 * n1) } else { n / (2.0 * (n - n1)) };
        let mut g = [fit.coef[0], fit.coef[1], 0.0];
        for i in 0..7 {
            let row = &x[i * 2..i * 2 + 2];
            let p = 1.0 / (1.0 + (-fit.decision(row)).exp());
            let r = s(y[i]) * (p - y[i] as u8 as f64);
            g[0] += r * row[0] as f64;
            g[1] += r * row[1] as f64;
            g[2] += r;
        }
        assert!(g.iter().all(|v| v.abs() < 1e-8), "{g:?}");
    }

    #[test]
    fn one_class_is_an_error() {
        assert!(fit_balanced(&[1.0, 2.0], 1, &[true, true], 1.0).is_err());
    }
}
