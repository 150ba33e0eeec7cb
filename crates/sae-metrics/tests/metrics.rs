//! Metrics against hand-computed cases and brute force.

use burn::tensor::{Device, Tensor};
use proptest::prelude::*;
use sae_core::SparseCodes;
use sae_metrics::hungarian::assign_min_cost;
use sae_metrics::reconstruction::ReconstructionAccumulator;
use sae_metrics::recovery::feature_recovery;

fn brute_force(cost: &[f64], n: usize, m: usize) -> f64 {
    fn go(cost: &[f64], n: usize, m: usize, row: usize, used: &mut Vec<bool>) -> f64 {
        if row == n {
            return 0.0;
        }
        let mut best = f64::INFINITY;
        for j in 0..m {
            if !used[j] {
                used[j] = true;
                best = best.min(cost[row * m + j] + go(cost, n, m, row + 1, used));
                used[j] = false;
            }
        }
        best
    }
    go(cost, n, m, 0, &mut vec![false; m])
}

proptest! {
    #[test]
    fn hungarian_finds_the_brute_force_optimum(n in 1usize..6, extra in 0usize..3, seed in any::<u64>()) {
        let m = n + extra;
        let mut rng = sae_core::rng::SplitMix64::new(seed);
        let cost: Vec<f64> = (0..n * m).map(|_| rng.next_f64() * 10.0 - 5.0).collect();
        let a = assign_min_cost(&cost, n, m).unwrap();
        let mut cols = a.clone();
        cols.sort_unstable();
        cols.dedup();
        prop_assert_eq!(cols.len(), n);
        let total: f64 = a.iter().enumerate().map(|(i, j)| cost[i * m + j]).sum();
        prop_assert!((total - brute_force(&cost, n, m)).abs() < 1e-9);
    }
}

#[test]
fn recovery_by_hand() {
    // True features e1, e2; latents: 0.6e1+0.8e2, e2, -e1. Best: e1→latent 2 (1.0), e2→latent 1 (1.0).
    let r = feature_recovery(&[1.0, 0.0, 0.0, 1.0], &[0.6, 0.8, 0.0, 1.0, -1.0, 0.0], 2, 0.9).unwrap();
    assert_eq!(r.matched_latent, vec![2, 1]);
    assert!((r.mcc - 1.0).abs() < 1e-12 && r.recovered_frac == 1.0);
    // One latent for two features: the unmatched feature counts as 0.
    let r = feature_recovery(&[1.0, 0.0, 0.0, 1.0], &[0.6, 0.8], 2, 0.7).unwrap();
    assert!((r.mcc - 0.4).abs() < 1e-6, "{}", r.mcc);
    assert_eq!(r.recovered_frac, 0.5);
    assert!(feature_recovery(&[1.0, 0.0, 0.0], &[1.0, 0.0], 2, 0.9).is_none());
}

#[test]
fn reconstruction_metrics_by_hand() {
    let device = Device::flex();
    // x rows (1, 0) and (0, 2); recon (1, 0) and (0, 1).
    let x = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 2.0]], &device);
    let recon = Tensor::<2>::from_floats([[1.0, 0.0], [0.0, 1.0]], &device);
    let codes = SparseCodes::dense(Tensor::<2>::from_floats([[0.5, 0.0, 0.0], [0.0, 2.0, 1.0]], &device));
    let mut acc = ReconstructionAccumulator::default();
    acc.update(x, recon, &codes).unwrap();
    let m = acc.finish();
    // Squared error 1; mean row (0.5, 1); total variance 0.25+1 + 0.25+1 = 2.5.
    assert_eq!(m.rows, 2);
    assert!((m.mse - 0.25).abs() < 1e-12);
    assert!((m.fvu - 0.4).abs() < 1e-9);
    assert!((m.explained_variance - 0.6).abs() < 1e-9);
    assert!((m.cosine - 1.0).abs() < 1e-9);
    assert!((m.l2_ratio - 0.75).abs() < 1e-9);
    // Σ‖x̂‖² = 2, Σ⟨x̂, x⟩ = 1 + 2 = 3.
    assert!((m.relative_reconstruction_bias - 2.0 / 3.0).abs() < 1e-9);
    assert!((m.l0 - 1.5).abs() < 1e-12);
    assert_eq!(m.feature_density, vec![0.5, 0.5, 0.5]);
    assert_eq!((m.dead_fraction, m.dense_fraction), (0.0, 1.0));
}

#[test]
fn evaluating_no_usable_row_is_an_error_not_a_perfect_score() {
    use sae_core::{InMemorySource, SaeConfig};
    use sae_metrics::evaluate::{EvalOptions, evaluate};
    let device = Device::flex();
    let sae = sae_arch::registry().init(SaeConfig::new("topk", 2, 4).with("k", 1), &device, 0).unwrap();
    let options = EvalOptions { rows: 100, batch_size: 8, ground_truth: None };
    let nan = InMemorySource { rows: vec![f32::NAN; 6], d_in: 2, meta: None };
    let err = evaluate(sae.as_ref(), &nan, &options, |_| {}).unwrap_err().to_string();
    assert!(err.contains("no row to evaluate") && err.contains("3 of them non-finite"), "{err}");
    let empty = InMemorySource { rows: vec![], d_in: 2, meta: None };
    assert!(evaluate(sae.as_ref(), &empty, &options, |_| {}).is_err());
    let one = InMemorySource { rows: vec![f32::NAN, 0.0, 1.0, 2.0], d_in: 2, meta: None };
    let report = evaluate(sae.as_ref(), &one, &options, |_| {}).unwrap();
    assert_eq!(report.skipped_rows, 1);
}
