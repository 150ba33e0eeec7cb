//! Adam, the schedules, clipping and dead-latent resampling against hand-computed values.

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::{KernelPolicy, ParamSet, ParamTensor, SaeConfig};
use sae_train::adam::{Adam, clip_grad_norm};
use sae_train::resample::resample_dead_latents;
use sae_train::schedule::{LrDecay, LrSchedule, sparsity_scale};

fn vector(v: &[f32]) -> ParamTensor {
    ParamTensor::Vector(Tensor::from_data(TensorData::new(v.to_vec(), [v.len()]), &Device::flex()))
}

#[test]
fn adam_matches_the_update_rule_by_hand() {
    let mut p = ParamSet::new();
    p.insert("w", vector(&[1.0, -2.0]));
    let mut g = ParamSet::new();
    g.insert("w", vector(&[0.5, -4.0]));
    let mut adam = Adam::new(0.9, 0.999, 1e-8);
    // Step 1: m̂ = g, v̂ = g², so the update is lr·g/(|g| + eps) = lr·sign(g).
    let p1 = adam.step(&p, &g, 0.1, KernelPolicy::default()).unwrap();
    let w1 = p1.get("w").unwrap().to_vec().unwrap();
    assert!((w1[0] - 0.9).abs() < 1e-6 && (w1[1] + 1.9).abs() < 1e-6, "{w1:?}");
    // Step 2 with gradient 0: m = 0.09·g0... computed in f64 below.
    let mut g0 = ParamSet::new();
    g0.insert("w", vector(&[0.0, 0.0]));
    let p2 = adam.step(&p1, &g0, 0.1, KernelPolicy::default()).unwrap();
    let w2 = p2.get("w").unwrap().to_vec().unwrap();
    for (j, g) in [0.5f64, -4.0].iter().enumerate() {
        let m = 0.9 * 0.1 * g;
        let v = 0.999 * 0.001 * g * g;
        let upd = 0.1 * (m / (1.0 - 0.81)) / ((v / (1.0 - 0.999f64.powi(2))).sqrt() + 1e-8);
        assert!((w2[j] as f64 - (w1[j] as f64 - upd)).abs() < 1e-5, "{j}: {} vs {}", w2[j], w1[j] as f64 - upd);
    }
    // A parameter without a gradient is left alone.
    p.insert("buffer", vector(&[7.0]));
    let out = adam.step(&p, &g, 0.1, KernelPolicy::default()).unwrap();
    assert_eq!(out.get("buffer").unwrap().to_vec().unwrap(), vec![7.0]);
}

#[test]
fn clipping_scales_to_the_max_norm() {
    let mut g = ParamSet::new();
    g.insert("a", vector(&[3.0]));
    g.insert("b", vector(&[4.0]));
    let norm = clip_grad_norm(&mut g, 1.0).unwrap();
    assert!((norm - 5.0).abs() < 1e-9);
    assert!((g.get("a").unwrap().to_vec().unwrap()[0] - 0.6).abs() < 1e-6);
    assert!((g.get("b").unwrap().to_vec().unwrap()[0] - 0.8).abs() < 1e-6);
}

#[test]
fn schedules_by_hand() {
    let s = LrSchedule { lr: 1.0, warmup_steps: 4, decay: LrDecay::Linear, decay_fraction: 0.5, total_steps: 20 };
    assert_eq!(s.at(0), 0.25);
    assert_eq!(s.at(3), 1.0);
    assert_eq!(s.at(9), 1.0);
    assert!((s.at(15) - 0.5).abs() < 1e-12);
    let c = LrSchedule { decay: LrDecay::Cosine, ..s };
    assert!((c.at(15) - 0.5).abs() < 1e-12);
    assert!((c.at(10) - 1.0).abs() < 1e-12);
    assert_eq!(sparsity_scale(0, 10), 0.1);
    assert_eq!(sparsity_scale(50, 10), 1.0);
    assert_eq!(sparsity_scale(0, 0), 1.0);
}

#[test]
fn resampling_points_dead_latents_at_badly_reconstructed_inputs() {
    let device = Device::flex();
    let mut sae = sae_arch::registry().init(SaeConfig::new("standard", 3, 4), &device, 1).unwrap();
    let before_dec = sae.params().get("W_dec").unwrap().to_vec().unwrap();
    let mut adam = Adam::new(0.9, 0.999, 1e-8);
    let mut g = ParamSet::new();
    for (n, t) in sae.params().iter() {
        g.insert(n, t.clone());
    }
    let updated = adam.step(sae.params(), &g, 0.0, KernelPolicy::default()).unwrap();
    *sae.params_mut() = updated;
    // Only the second row is reconstructed badly, so every dead latent takes its direction.
    let x = [1.0, 0.0, 0.0, 0.0, 3.0, 4.0];
    let recon = [1.0, 0.0, 0.0, 0.0, 0.0, 0.0];
    let dead = [false, true, false, true];
    assert_eq!(resample_dead_latents(sae.as_mut(), &mut adam, &dead, &x, &recon, 3, 9).unwrap(), 2);
    let w_dec = sae.params().get("W_dec").unwrap().to_vec().unwrap();
    for i in 0..4 {
        let row = &w_dec[i * 3..(i + 1) * 3];
        if dead[i] {
            assert!((row[0]).abs() < 1e-7 && (row[1] - 0.6).abs() < 1e-6 && (row[2] - 0.8).abs() < 1e-6, "{row:?}");
        } else {
            assert_eq!(row, &before_dec[i * 3..(i + 1) * 3]);
        }
    }
    let b_enc = sae.params().get("b_enc").unwrap().to_vec().unwrap();
    assert_eq!((b_enc[1], b_enc[3]), (0.0, 0.0));
    let m_dec = adam.m.get("W_dec").unwrap().to_vec().unwrap();
    assert!(m_dec[3..6].iter().all(|v| *v == 0.0) && m_dec[0..3].iter().any(|v| *v != 0.0));
    // Nothing dead: nothing changes.
    assert_eq!(resample_dead_latents(sae.as_mut(), &mut adam, &[false; 4], &x, &recon, 3, 9).unwrap(), 0);
}
