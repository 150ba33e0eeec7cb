//! The synthetic generator: determinism, the hierarchy's rules, firing rates, and the files.

use sae_data::DataError;
use sae_data::store::ActivationStore;
use sae_data::synthetic::{GROUND_TRUTH_FILE, GroundTruth, SyntheticConfig, SyntheticGenerator};

fn small() -> SyntheticConfig {
    SyntheticConfig { d_in: 16, n_features: 96, tokens: 10_000, seed: 3, parents: 8, children_per_parent: 3, noise_std: 0.0, ..Default::default() }
}

#[test]
fn same_seed_same_rows_different_seed_different_rows() {
    let a = SyntheticGenerator::new(small()).unwrap();
    let b = SyntheticGenerator::new(small()).unwrap();
    let c = SyntheticGenerator::new(SyntheticConfig { seed: 4, ..small() }).unwrap();
    assert_eq!(a.block(2, 100), b.block(2, 100));
    assert_eq!(a.ground_truth(), b.ground_truth());
    assert_ne!(a.block(2, 100), c.block(2, 100));
    assert_ne!(a.block(2, 100), a.block(3, 100));
}

#[test]
fn features_are_unit_norm_and_rows_are_their_combinations() {
    let g = SyntheticGenerator::new(small()).unwrap();
    let t = g.ground_truth();
    for f in t.features.chunks(16) {
        assert!((f.iter().map(|v| v * v).sum::<f32>().sqrt() - 1.0).abs() < 1e-5);
    }
    // Without noise, a row with no active feature is exactly zero and others are not.
    let (x, active) = g.block_with_active(0, 500);
    for (row, act) in x.chunks(16).zip(&active) {
        assert_eq!(act.is_empty(), row.iter().all(|v| *v == 0.0));
    }
}

#[test]
fn children_fire_only_with_their_parent_and_exclusively() {
    let g = SyntheticGenerator::new(small()).unwrap();
    let parent = &g.ground_truth().parent;
    let (_, active) = g.block_with_active(1, 4096);
    let mut child_fired = 0;
    for act in &active {
        for &i in act {
            if let Some(p) = parent[i] {
                child_fired += 1;
                assert!(act.contains(&p), "child {i} fired without parent {p}");
                assert_eq!(act.iter().filter(|j| parent[**j] == Some(p)).count(), 1, "two children of {p} fired together");
            }
        }
    }
    assert!(child_fired > 100, "the hierarchy never fired ({child_fired})");
}

#[test]
fn firing_rates_follow_the_stated_probabilities() {
    let cfg = SyntheticConfig { correlation: 0.0, ..small() };
    let g = SyntheticGenerator::new(cfg.clone()).unwrap();
    let n_rows = 40_000;
    let mut counts = vec![0usize; cfg.n_features];
    let mut total = 0usize;
    for b in 0..(n_rows / 4096 + 1) as u64 {
        let (_, active) = g.block_with_active(b, 4096);
        for act in active {
            total += act.len();
            act.iter().for_each(|i| counts[*i] += 1);
        }
    }
    let rows = (n_rows / 4096 + 1) * 4096;
    let mean_active = total as f32 / rows as f32;
    assert!((mean_active - cfg.mean_active).abs() < 0.1, "mean active {mean_active}");
    for (i, (c, p)) in counts.iter().zip(&g.ground_truth().firing_probability).enumerate() {
        let rate = *c as f32 / rows as f32;
        let sd = (p * (1.0 - p) / rows as f32).sqrt();
        assert!((rate - p).abs() < 5.0 * sd + 1e-4, "feature {i}: rate {rate} vs p {p}");
    }
    // Zipf: the most frequent root fires far more often than the rarest.
    let roots: Vec<f32> = g.ground_truth().firing_probability.iter().zip(&g.ground_truth().parent).filter(|(_, p)| p.is_none()).map(|(f, _)| *f).collect();
    let (lo, hi) = roots.iter().fold((f32::MAX, 0f32), |(lo, hi), p| (lo.min(*p), hi.max(*p)));
    assert!(hi / lo > 5.0, "{hi} / {lo}");
}

#[test]
fn correlation_makes_group_members_fire_together() {
    let pair_rate = |correlation| {
        let g = SyntheticGenerator::new(SyntheticConfig { correlation, parents: 0, zipf_exponent: 0.0, correlation_groups: 2, ..small() }).unwrap();
        let (_, active) = g.block_with_active(0, 4096);
        // Features 0 and 2 are roots in the same group (group = rank position mod 2 over roots 0, 1, 2, ...).
        let both = active.iter().filter(|a| a.contains(&0) && a.contains(&2)).count();
        both as f32 / 4096.0
    };
    assert!(pair_rate(0.8) > 2.0 * pair_rate(0.0), "{} vs {}", pair_rate(0.8), pair_rate(0.0));
}

#[test]
fn write_store_writes_rows_and_ground_truth_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let cfg = SyntheticConfig { tokens: 70_000, ..small() };
    let g = SyntheticGenerator::new(cfg.clone()).unwrap();
    let store = g.write_store(tmp.path(), |_| {}).unwrap();
    assert_eq!(store.len(), 70_000);
    let truth = GroundTruth::load(&tmp.path().join(GROUND_TRUTH_FILE)).unwrap();
    assert_eq!(&truth, g.ground_truth());
    let mut rows = Vec::new();
    store.append_rows(4096 * 3, 10, &mut rows).unwrap();
    assert_eq!(rows, g.block(3, 10));
    // Opening again with the same settings is a no-op; other settings are refused.
    assert_eq!(g.write_store(tmp.path(), |_| {}).unwrap().len(), 70_000);
    let other = SyntheticGenerator::new(SyntheticConfig { seed: 9, ..cfg }).unwrap();
    assert!(matches!(other.write_store(tmp.path(), |_| {}), Err(DataError::Metadata { field, .. }) if field == "source"));
    drop(ActivationStore::open(tmp.path()).unwrap());
}

#[test]
fn impossible_settings_are_typed_errors() {
    for (cfg, field) in [
        (SyntheticConfig { d_in: 0, ..small() }, "d_in"),
        (SyntheticConfig { parents: 40, ..small() }, "parents"),
        (SyntheticConfig { correlation: 1.5, ..small() }, "correlation"),
        (SyntheticConfig { mean_active: -1.0, ..small() }, "mean_active"),
    ] {
        match SyntheticGenerator::new(cfg) {
            Err(DataError::Invalid { field: f, .. }) => assert_eq!(f, field),
            other => panic!("{field}: {other:?}"),
        }
    }
}
