//! Timing one training step or one encode at a given shape, doing the same work per step as the
//! Python baselines (`shared/baseline/bench_anchor.py`, `bench_sae.py`), and reporting it in
//! their `SUMMARY` line format so that one program can compare the two.
//!
//! A training step is [`optimisation_step`] (forward with the loss terms, backward, the
//! architecture's gradient projection, Adam, decoder renormalisation) plus the dead-latent
//! bookkeeping the trainer does (firing counts read back, counters updated). With
//! `dead_frac > 0` a fixed random set of latents is treated as dead, so AuxK runs on every step,
//! as in the baselines. TopK is configured as sparsify trains it: FVU loss, unit-norm decoder
//! with projected gradients, AuxK weight 1/32.

use std::time::Instant;

use burn::tensor::{Bool, Device, Tensor, TensorData};
use sae_core::rng::SplitMix64;
use sae_core::{Sae, SaeConfig, TrainContext};

use crate::adam::Adam;
use crate::dead::DeadTracker;
use crate::error::{Result, TrainError};
use crate::step::optimisation_step;

/// What is timed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchMode {
    /// One full training step.
    Train,
    /// Encoding a batch to sparse codes.
    Encode,
    /// Encoding and decoding a batch.
    EncDec,
}

impl BenchMode {
    /// The name used in `SUMMARY` lines.
    pub fn name(self) -> &'static str {
        match self {
            BenchMode::Train => "train",
            BenchMode::Encode => "encode",
            BenchMode::EncDec => "encdec",
        }
    }
}

/// The architectures `sae bench` times, each configured to do the work its Python baseline does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BenchArch {
    /// TopK as sparsify trains it (FVU loss, unit-norm decoder, AuxK 1/32).
    TopK,
    /// BatchTopK.
    BatchTopK,
    /// JumpReLU.
    JumpRelu,
    /// ReLU with an L1 penalty (SAELens `standard`).
    ReluL1,
    /// Matryoshka BatchTopK with prefixes d_sae/8, d_sae/2, d_sae.
    Matryoshka,
}

impl BenchArch {
    /// Every one, in the baselines' order.
    pub const ALL: [BenchArch; 5] = [BenchArch::TopK, BenchArch::BatchTopK, BenchArch::JumpRelu, BenchArch::ReluL1, BenchArch::Matryoshka];

    /// The baselines' name (what `SUMMARY` lines print).
    pub fn name(self) -> &'static str {
        match self {
            BenchArch::TopK => "topk",
            BenchArch::BatchTopK => "batchtopk",
            BenchArch::JumpRelu => "jumprelu",
            BenchArch::ReluL1 => "relu_l1",
            BenchArch::Matryoshka => "matryoshka",
        }
    }
}

/// One benchmark: architecture, mode and shape.
#[derive(Debug, Clone)]
pub struct BenchSpec {
    /// What is benchmarked.
    pub arch: BenchArch,
    /// What is timed.
    pub mode: BenchMode,
    /// Input width.
    pub d_in: usize,
    /// Latents.
    pub d_sae: usize,
    /// Active latents per row (TopK family).
    pub k: usize,
    /// Rows per batch.
    pub batch: usize,
    /// Fraction of latents treated as dead (AuxK on when > 0, training only).
    pub dead_frac: f64,
    /// Untimed repetitions first.
    pub warmup: usize,
    /// Timed repetitions.
    pub reps: usize,
    /// Distinct input batches cycled through.
    pub pool: usize,
    /// Seed of the weights, inputs and dead set.
    pub seed: u64,
}

impl BenchSpec {
    /// The baselines' default shape (d_in 384, d_sae 6144, k 32, batch 4096) for `arch`.
    pub fn new(arch: BenchArch, mode: BenchMode) -> Self {
        Self { arch, mode, d_in: 384, d_sae: 6144, k: 32, batch: 4096, dead_frac: 0.0, warmup: 2, reps: 7, pool: 4, seed: 0 }
    }

    /// The SAE config that does the same work as the baseline for this architecture.
    pub fn sae_config(&self) -> Result<SaeConfig> {
        let cfg = match self.arch {
            BenchArch::TopK => SaeConfig::new("topk", self.d_in, self.d_sae).with("k", self.k).with("normalize_decoder", true).with("loss", "fvu").with("aux_loss_coefficient", 1.0 / 32.0),
            BenchArch::BatchTopK => SaeConfig::new("batchtopk", self.d_in, self.d_sae).with("k", self.k as f64),
            BenchArch::JumpRelu => SaeConfig::new("jumprelu", self.d_in, self.d_sae),
            BenchArch::ReluL1 => SaeConfig::new("standard", self.d_in, self.d_sae),
            BenchArch::Matryoshka => {
                let widths = [self.d_sae / 8, self.d_sae / 2, self.d_sae];
                SaeConfig::new("matryoshka_batchtopk", self.d_in, self.d_sae).with("k", self.k as f64).with("matryoshka_widths", serde_json::json!(widths))
            }
        };
        Ok(cfg)
    }

    fn validate(&self) -> Result<()> {
        let bad = |field: &str, reason: String| Err(TrainError::config("<flags>", field, reason));
        if self.d_in == 0 || self.d_sae == 0 || self.batch == 0 {
            return bad("d_in/d_sae/batch", "must be > 0".into());
        }
        if self.k == 0 || self.k > self.d_sae {
            return bad("k", format!("must be in 1..={}, got {}", self.d_sae, self.k));
        }
        if !(0.0..1.0).contains(&self.dead_frac) {
            return bad("dead_frac", format!("must be in [0, 1), got {}", self.dead_frac));
        }
        if self.reps == 0 || self.pool == 0 {
            return bad("reps/pool", "must be > 0".into());
        }
        Ok(())
    }
}

/// The timings of one benchmark.
#[derive(Debug, Clone)]
pub struct BenchReport {
    /// What was run.
    pub spec: BenchSpec,
    /// The backend's name (`flex`, `wgpu`, ...).
    pub backend: String,
    /// Seconds per repetition, in order.
    pub seconds: Vec<f64>,
    /// Whether AuxK ran.
    pub auxk: bool,
}

impl BenchReport {
    /// Median seconds per repetition.
    pub fn median(&self) -> f64 {
        let mut s = self.seconds.clone();
        s.sort_by(f64::total_cmp);
        let n = s.len();
        if n % 2 == 1 { s[n / 2] } else { (s[n / 2 - 1] + s[n / 2]) / 2.0 }
    }

    /// The one-line summary in the baselines' format (`SUMMARY sae key=value ...`).
    pub fn summary_line(&self) -> String {
        let s = &self.spec;
        let (med, lo, hi) = (self.median(), self.seconds.iter().copied().fold(f64::INFINITY, f64::min), self.seconds.iter().copied().fold(0.0, f64::max));
        let b = s.batch as f64;
        format!(
            "SUMMARY sae lib=sae-rs arch={} mode={} backend={} auxk={} d_in={} d_sae={} k={} batch={} reps={} ms_median={:.2} ms_min={:.2} ms_max={:.2} steps_per_s={:.4} tok_per_s_median={:.0} tok_per_s_min={:.0} tok_per_s_max={:.0}",
            s.arch.name(),
            s.mode.name(),
            self.backend,
            self.auxk as u8,
            s.d_in,
            s.d_sae,
            s.k,
            s.batch,
            s.reps,
            med * 1e3,
            lo * 1e3,
            hi * 1e3,
            1.0 / med,
            b / med,
            b / hi,
            b / lo,
        )
    }
}

/// Standard-normal inputs `[rows, cols]` from `seed`.
fn normal_batch(rows: usize, cols: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = SplitMix64::new(seed);
    let v: Vec<f32> = (0..rows * cols).map(|_| rng.normal()).collect();
    Tensor::from_data(TensorData::new(v, [rows, cols]), device)
}

/// A fixed random dead set of about `frac · d_sae` latents.
fn dead_mask(d_sae: usize, frac: f64, seed: u64, device: &Device) -> (Tensor<1, Bool>, usize) {
    let mut rng = SplitMix64::new(seed ^ 0xdead);
    let dead: Vec<f32> = (0..d_sae).map(|_| (rng.next_f64() < frac) as u8 as f32).collect();
    let n = dead.iter().filter(|d| **d > 0.0).count();
    (Tensor::<1>::from_data(TensorData::new(dead, [d_sae]), device).greater_elem(0.5), n)
}

/// Runs one benchmark on `device` (named `backend` in the report).
pub fn run_bench(spec: &BenchSpec, device: &Device, backend: &str, registry: &sae_core::Registry) -> Result<BenchReport> {
    spec.validate()?;
    let mut sae = registry.init(spec.sae_config()?, device, spec.seed)?;
    let xs: Vec<Tensor<2>> = (0..spec.pool).map(|i| normal_batch(spec.batch, spec.d_in, spec.seed + 1 + i as u64, device)).collect();
    let auxk = spec.mode == BenchMode::Train && spec.dead_frac > 0.0;
    let ctx = if auxk {
        let (mask, n_dead) = dead_mask(spec.d_sae, spec.dead_frac, spec.seed, device);
        TrainContext { dead_mask: Some(mask), n_dead, sparsity_scale: 1.0 }
    } else {
        TrainContext::plain()
    };
    let mut adam = Adam::new(0.9, 0.999, 1e-8);
    let mut tracker = DeadTracker::new(spec.d_sae, u64::MAX);
    let mut seconds = Vec::with_capacity(spec.reps);
    for i in 0..spec.warmup + spec.reps {
        let x = &xs[i % xs.len()];
        let start = Instant::now();
        match spec.mode {
            BenchMode::Train => train_once(sae.as_mut(), &mut adam, &mut tracker, x, &ctx)?,
            BenchMode::Encode => encode_once(sae.as_ref(), x, false)?,
            BenchMode::EncDec => encode_once(sae.as_ref(), x, true)?,
        }
        if i >= spec.warmup {
            seconds.push(start.elapsed().as_secs_f64());
        }
    }
    Ok(BenchReport { spec: spec.clone(), backend: backend.into(), seconds, auxk })
}

/// One training step as the trainer does it, waiting for the result.
fn train_once(sae: &mut dyn Sae, adam: &mut Adam, tracker: &mut DeadTracker, x: &Tensor<2>, ctx: &TrainContext) -> Result<()> {
    let out = optimisation_step(sae, adam, x, ctx, 2e-4, None)?.out;
    tracker.record(&out.codes)?;
    // The updated weights are what the next step needs: make sure they exist.
    let _ = sae.params().matrix("W_dec")?.slice([0..1, 0..1]).into_scalar::<f32>();
    Ok(())
}

/// Encodes (and decodes) `x`, waiting for the result by reading one element of it (the
/// baselines return the codes and do nothing more with them).
fn encode_once(sae: &dyn Sae, x: &Tensor<2>, decode: bool) -> Result<()> {
    let codes = sae.encode(x.clone())?;
    if decode {
        let _ = sae.decode(&codes)?.slice([0..1, 0..1]).into_scalar::<f32>();
    } else {
        let values = match &codes.values {
            sae_core::CodeValues::TopK { values, .. } => values.clone(),
            sae_core::CodeValues::Dense(acts) => acts.clone(),
        };
        let _ = values.slice([0..1, 0..1]).into_scalar::<f32>();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_line_reports_the_median_and_throughput() {
        let spec = BenchSpec { batch: 1000, reps: 3, ..BenchSpec::new(BenchArch::TopK, BenchMode::Encode) };
        let r = BenchReport { spec, backend: "flex".into(), seconds: vec![0.3, 0.1, 0.2], auxk: false };
        assert!((r.median() - 0.2).abs() < 1e-12);
        let line = r.summary_line();
        assert!(line.starts_with("SUMMARY sae "), "{line}");
        for kv in ["arch=topk", "mode=encode", "ms_median=200.00", "tok_per_s_median=5000", "tok_per_s_min=3333", "tok_per_s_max=10000"] {
            assert!(line.split(' ').any(|t| t == kv), "{kv} missing in {line}");
        }
    }

    #[test]
    fn every_bench_architecture_runs_a_step_and_an_encode() {
        let device = Device::flex();
        let registry = sae_arch::registry();
        for arch in BenchArch::ALL {
            for mode in [BenchMode::Train, BenchMode::Encode, BenchMode::EncDec] {
                let spec = BenchSpec { d_in: 12, d_sae: 48, k: 3, batch: 16, dead_frac: 0.25, warmup: 1, reps: 2, pool: 2, ..BenchSpec::new(arch, mode) };
                let r = run_bench(&spec, &device, "flex", &registry).unwrap_or_else(|e| panic!("{} {mode:?}: {e}", arch.name()));
                assert_eq!(r.seconds.len(), 2);
                assert_eq!(r.auxk, mode == BenchMode::Train);
            }
        }
    }

    #[test]
    fn bad_shapes_are_typed_errors() {
        let registry = sae_arch::registry();
        let spec = BenchSpec { k: 0, ..BenchSpec::new(BenchArch::TopK, BenchMode::Train) };
        assert!(matches!(run_bench(&spec, &Device::flex(), "flex", &registry), Err(TrainError::Config { .. })));
        // A registry without the architecture: the bench says which one is missing.
        let spec = BenchSpec::new(BenchArch::Matryoshka, BenchMode::Train);
        let e = run_bench(&spec, &Device::flex(), "flex", &sae_core::Registry::new()).unwrap_err();
        assert!(e.to_string().contains("matryoshka_batchtopk"), "{e}");
    }
}
