//! Per-letter results of the first-letter task: the ground-truth probe's quality, the k-sparse
//! probes on SAE latents and the feature-splitting rule (SAEBench `evals/absorption/
//! k_sparse_probing.py`).
//!
//! For each letter and each k, the latents of the k-sparse probe are the k largest weights (not
//! magnitudes: latents that predict the letter) of the letter's row of an L1-penalised probe on
//! the latents, and the probe itself a balanced logistic regression on those k latents. A
//! letter's *split latents* are those of the k-sparse probe at the last k whose test F1 beat the
//! previous best by more than `f1_jump` (0.03), going up from k = 1.

use serde::Serialize;

use super::logistic::{Logistic, fit_balanced};
use super::probe::LinearProbe;
use super::rows::{FeatureRows, SparseRows};
use sae_core::Result;

/// A binary classifier's precision, recall and F1 (scikit-learn's conventions: 0 where a ratio
/// is 0/0).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BinaryScores {
    /// TP / (TP + FP).
    pub precision: f64,
    /// TP / (TP + FN).
    pub recall: f64,
    /// 2 TP / (2 TP + FP + FN).
    pub f1: f64,
}

impl BinaryScores {
    /// Scores of predictions `pred` against `truth`.
    pub fn of(pred: impl IntoIterator<Item = bool>, truth: impl IntoIterator<Item = bool>) -> Self {
        let (mut tp, mut fp, mut fneg) = (0usize, 0usize, 0usize);
        for (p, t) in pred.into_iter().zip(truth) {
            match (p, t) {
                (true, true) => tp += 1,
                (true, false) => fp += 1,
                (false, true) => fneg += 1,
                _ => {}
            }
        }
        let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
        Self { precision: ratio(tp, tp + fp), recall: ratio(tp, tp + fneg), f1: ratio(2 * tp, 2 * tp + fp + fneg) }
    }
}

/// A probe on k SAE latents.
#[derive(Debug, Clone, PartialEq)]
pub struct KSparseProbe {
    /// The latents it reads, in the order of the L1 probe's weights (largest first).
    pub latents: Vec<u32>,
    /// The logistic model on them.
    pub model: Logistic,
}

impl KSparseProbe {
    /// The decision value on one row of codes.
    pub fn decision(&self, codes: &dyn FeatureRows, i: usize) -> f64 {
        let row = codes.row(i);
        self.latents.iter().zip(&self.model.coef).map(|(&j, w)| w * row.get(j as usize) as f64).sum::<f64>() + self.model.intercept
    }
}

/// The `k` latents with the largest weights in `weights` (ties: the lower index first).
pub fn top_latents(weights: &[f32], k: usize) -> Vec<u32> {
    let mut order: Vec<u32> = (0..weights.len() as u32).collect();
    order.sort_by(|&a, &b| weights[b as usize].total_cmp(&weights[a as usize]).then(a.cmp(&b)));
    order.truncate(k);
    order
}

/// The k-sparse probes of every letter for k = 1..=max_k (`[letter][k − 1]`), from the L1 probe
/// on the latents and the training codes. A letter without training words of both kinds has
/// none.
pub fn k_sparse_probes(l1: &LinearProbe, codes: &SparseRows, labels: &[usize], max_k: usize) -> Result<Vec<Vec<KSparseProbe>>> {
    let mut out = Vec::with_capacity(l1.classes());
    for letter in 0..l1.classes() {
        let y: Vec<bool> = labels.iter().map(|&l| l == letter).collect();
        let both = y.iter().any(|&v| v) && y.iter().any(|&v| !v);
        let mut probes = Vec::new();
        for k in 1..=max_k.min(l1.d) {
            if !both {
                break;
            }
            let latents = top_latents(l1.class_weights(letter), k);
            let mut x = Vec::with_capacity(codes.len() * k);
            for i in 0..codes.len() {
                let row = codes.row(i);
                x.extend(latents.iter().map(|&j| row.get(j as usize)));
            }
            probes.push(KSparseProbe { model: fit_balanced(&x, k, &y, 1.0)?, latents });
        }
        out.push(probes);
    }
    Ok(out)
}

/// One k-sparse probe's test scores.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KSparseScores {
    /// k.
    pub k: usize,
    /// Its latents.
    pub latents: Vec<u32>,
    /// Its test precision, recall and F1 (decision > 0).
    pub scores: BinaryScores,
}

/// The split latents by the feature-splitting rule: going up from k = 1, each k whose F1 beats
/// the best so far by more than `jump` replaces them; the first k that does not ends the search.
pub fn split_latents(k_sparse: &[KSparseScores], jump: f64) -> Vec<u32> {
    let mut best = -100.0;
    let mut split = Vec::new();
    for s in k_sparse {
        if s.scores.f1 > best + jump {
            best = s.scores.f1;
            split = s.latents.clone();
        } else {
            break;
        }
    }
    split
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scores_follow_scikit_learn_conventions() {
        let s = BinaryScores::of([true, true, false, false], [true, false, true, false]);
        assert_eq!((s.precision, s.recall, s.f1), (0.5, 0.5, 0.5));
        let none = BinaryScores::of([false, false], [false, false]);
        assert_eq!((none.precision, none.recall, none.f1), (0.0, 0.0, 0.0));
    }

    #[test]
    fn the_splitting_rule_stops_at_the_first_small_gain() {
        let at = |k: usize, f1: f64| KSparseScores { k, latents: (0..k as u32).collect(), scores: BinaryScores { precision: 0.0, recall: 0.0, f1 } };
        let ks = [at(1, 0.5), at(2, 0.6), at(3, 0.62), at(4, 0.9)];
        assert_eq!(split_latents(&ks, 0.03), vec![0, 1]);
        assert_eq!(top_latents(&[0.1, 0.3, -0.5, 0.3], 3), vec![1, 3, 0]);
    }
}
