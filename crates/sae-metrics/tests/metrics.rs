//! Metrics against hand-computed cases, brute force and reference numbers of numpy/scipy
//! (`fixtures/generate_stability.py`), and SAEBench's absorption eval
//! (`fixtures/generate_absorption.py`).

#[path = "metrics/absorption.rs"]
mod absorption;

use burn::tensor::{Device, Tensor};
use proptest::prelude::*;
use sae_core::SparseCodes;
use sae_metrics::hungarian::assign_min_cost;
use sae_metrics::reconstruction::ReconstructionAccumulator;
use sae_metrics::recovery::feature_recovery;
use sae_metrics::stability::{Directions, stability};

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

fn stability_case(name: &str) -> (Directions, Directions, serde_json::Value) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/reference/stability").join(name);
    let read = |f: &str| sae_core::format::npy::read_npy(&dir.join(format!("{f}.npy"))).unwrap();
    let dirs = |dec: &str, enc: &str| {
        let (dec, enc) = (read(dec), read(enc));
        Directions { n: dec.shape[0], d: dec.shape[1], decoder: dec.values, encoder: enc.values }
    };
    let expected = serde_json::from_str(&std::fs::read_to_string(dir.join("expected.json")).unwrap()).unwrap();
    (dirs("a_dec", "a_enc"), dirs("b_dec", "b_enc"), expected)
}

#[test]
fn stability_matches_scipy_on_planted_and_random_dictionaries() {
    let device = Device::flex();
    for name in ["planted", "random"] {
        let (a, b, want) = stability_case(name);
        let s = stability(&a, &b, &device, |_, _| {}).unwrap();
        // Cosines come from an f32 product of unit rows of width d: each within d·2⁻²³ of the
        // f64 reference, and so is a mean of them.
        let tol = 4.0 * a.d as f64 * f32::EPSILON as f64;
        for (key, got) in [("decoder_alignment", s.decoder_alignment), ("encoder_alignment", s.encoder_alignment)] {
            let w = want[key].as_f64().unwrap();
            assert!((got - w).abs() <= tol, "{name} {key}: {got} vs scipy {w}");
        }
        // The generator keeps every cosine over 1e-3 from the threshold: the fractions are exact.
        assert_eq!(s.shared_fraction, want["shared_fraction"].as_f64().unwrap(), "{name}");
        assert_eq!(s.same_match_fraction, want["same_match_fraction"].as_f64().unwrap(), "{name}");
        let partners = |k: &str| want[k].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect::<Vec<_>>();
        assert_eq!(s.decoder.partner, partners("decoder_partner"), "{name}");
        assert_eq!(s.encoder.partner, partners("encoder_partner"), "{name}");
        // The comparison is symmetric in the scores when widths are equal, and swaps otherwise.
        let back = stability(&b, &a, &device, |_, _| {}).unwrap();
        assert!((back.decoder_alignment - s.decoder_alignment).abs() <= tol && back.swapped == (a.n < b.n), "{name}");
    }
}

#[test]
fn stability_of_an_sae_with_itself_is_perfect_and_bad_input_is_an_error() {
    let device = Device::flex();
    let (a, b, _) = stability_case("planted");
    let s = stability(&a, &a, &device, |_, _| {}).unwrap();
    assert!((s.decoder_alignment - 1.0).abs() < 1e-5 && (s.encoder_alignment - 1.0).abs() < 1e-5);
    assert_eq!((s.shared_fraction, s.same_match_fraction), (1.0, 1.0));
    assert_eq!(s.decoder.partner, (0..a.n).collect::<Vec<_>>());
    let narrow = Directions { d: 8, decoder: a.decoder[..a.n * 8].to_vec(), encoder: a.encoder[..a.n * 8].to_vec(), ..a.clone() };
    assert!(stability(&narrow, &b, &device, |_, _| {}).unwrap_err().to_string().contains("d_in"));
    let mut nan = a.clone();
    nan.decoder[3] = f32::NAN;
    assert!(stability(&nan, &b, &device, |_, _| {}).unwrap_err().to_string().contains("NaN"));
    let short = Directions { decoder: a.decoder[..10].to_vec(), ..a.clone() };
    assert!(stability(&short, &b, &device, |_, _| {}).is_err());
}

#[test]
fn synthetic_classification_uniqueness_and_absorption_by_hand() {
    use sae_metrics::synthetic::SyntheticAccumulator;
    // Features: 0 a parent, 1 its child, 2 a root. Latents 0 and 1 point at features 0 and 1,
    // latent 2 also at feature 1 (a duplicate), though the Hungarian match gives it feature 2.
    let abs_cos = [0.9, 0.1, 0.2, /**/ 0.1, 0.8, 0.3, /**/ 0.0, 0.6, 0.5];
    let mut acc = SyntheticAccumulator::new(&abs_cos, 3, vec![Some(0), Some(1), Some(2)], vec![None, Some(0), None]).unwrap();
    let rows: [(&[usize], [f32; 3]); 5] = [
        (&[0], [1.0, 0.0, 0.0]),
        (&[0, 1], [0.0, 1.0, 0.0]), // the parent's latent is silent: absorbed by the child's
        (&[0, 1], [1.0, 1.0, 0.0]),
        (&[2], [0.0, 0.0, 1.0]),
        (&[], [1.0, 0.0, 0.0]),
    ];
    let codes: Vec<f32> = rows.iter().flat_map(|r| r.1).collect();
    let active: Vec<Vec<usize>> = rows.iter().map(|r| r.0.to_vec()).collect();
    assert!(acc.update(&codes, &active));
    let m = acc.finish();
    // Latent 0: TP 2, FP 1, FN 1, TN 1; latent 1: TP 2, TN 3; latent 2: FP 1, FN 2, TN 2.
    let close = |a: f64, b: f64| (a - b).abs() < 1e-12;
    assert!(close(m.precision, 5.0 / 9.0) && close(m.recall, 5.0 / 9.0) && close(m.f1, 5.0 / 9.0), "{m:?}");
    assert!(close(m.accuracy, 2.0 / 3.0) && close(m.uniqueness, 2.0 / 3.0) && close(m.true_l0, 1.2), "{m:?}");
    assert_eq!(m.pairs.len(), 1);
    let pair = &m.pairs[0];
    assert_eq!((pair.parent, pair.child, pair.parent_latent, pair.child_rows), (0, 1, 0, 2));
    assert!(close(pair.absorption, 0.5) && close(pair.parent_alone_recall, 1.0) && m.absorption == Some(0.5) && m.parent_alone_recall == Some(1.0), "{m:?}");
    // A feature listed twice in a row counts once: the same metrics.
    let mut twice = SyntheticAccumulator::new(&abs_cos, 3, vec![Some(0), Some(1), Some(2)], vec![None, Some(0), None]).unwrap();
    let doubled: Vec<Vec<usize>> = active.iter().map(|a| a.iter().chain(a).copied().collect()).collect();
    assert!(twice.update(&codes, &doubled));
    assert_eq!(twice.finish(), m);
    // Sizes that disagree add nothing.
    assert!(!acc.update(&codes[..4], &active));
    assert!(!acc.update(&codes, &[vec![7], vec![], vec![], vec![], vec![]]));
    assert!(SyntheticAccumulator::new(&abs_cos, 3, vec![Some(5), None, None], vec![None; 3]).is_none());
}
