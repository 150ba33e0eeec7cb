//! `sae bench`: times a training step or an encode at a given shape and prints one `SUMMARY`
//! line in the format of the Python baselines (`shared/baseline/`), so the two can be compared.

use anyhow::Result;
use clap::{Args, ValueEnum};
use sae_train::bench::{BenchArch as Arch, BenchMode, BenchSpec, run_bench};

use crate::backend::Backend;

/// Architectures, by the baselines' names.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum BenchArch {
    /// TopK as sparsify trains it (FVU loss, unit-norm decoder, AuxK 1/32).
    Topk,
    /// BatchTopK.
    Batchtopk,
    /// JumpReLU.
    Jumprelu,
    /// ReLU with an L1 penalty (SAELens `standard`).
    #[value(name = "relu_l1")]
    ReluL1,
    /// Matryoshka BatchTopK with prefixes d_sae/8, d_sae/2, d_sae.
    Matryoshka,
}

/// What to time.
#[derive(Debug, Clone, Copy, ValueEnum)]
enum Mode {
    /// One full training step (optimiser, renormalisation, dead-latent bookkeeping).
    Train,
    /// Encode a batch to sparse codes.
    Encode,
    /// Encode and decode a batch.
    Encdec,
}

/// Arguments of `sae bench`.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Architecture.
    #[arg(long, value_enum, default_value = "topk")]
    arch: BenchArch,
    /// What to time.
    #[arg(long, value_enum, default_value = "train")]
    mode: Mode,
    /// Input width.
    #[arg(long, default_value_t = 384)]
    d_in: usize,
    /// Latents.
    #[arg(long, default_value_t = 6144)]
    d_sae: usize,
    /// Active latents per row (TopK family).
    #[arg(long, default_value_t = 32)]
    k: usize,
    /// Rows per batch.
    #[arg(long, default_value_t = 4096)]
    batch: usize,
    /// Fraction of latents treated as dead, so that AuxK runs (training only; 0 = off).
    #[arg(long, default_value_t = 0.0)]
    dead_frac: f64,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::Flex)]
    backend: Backend,
    /// Untimed repetitions.
    #[arg(long, default_value_t = 2)]
    warmup: usize,
    /// Timed repetitions.
    #[arg(long, default_value_t = 7)]
    reps: usize,
    /// Seed of weights, inputs and the dead set.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Distinct input batches cycled through (4, as the baselines; 1 measures a step's memory
    /// with one batch resident).
    #[arg(long, default_value_t = 4)]
    pool: usize,
}

/// Runs `sae bench`.
pub fn run(a: BenchArgs) -> Result<()> {
    let arch = match a.arch {
        BenchArch::Topk => Arch::TopK,
        BenchArch::Batchtopk => Arch::BatchTopK,
        BenchArch::Jumprelu => Arch::JumpRelu,
        BenchArch::ReluL1 => Arch::ReluL1,
        BenchArch::Matryoshka => Arch::Matryoshka,
    };
    let mode = match a.mode {
        Mode::Train => BenchMode::Train,
        Mode::Encode => BenchMode::Encode,
        Mode::Encdec => BenchMode::EncDec,
    };
    let spec = BenchSpec { d_in: a.d_in, d_sae: a.d_sae, k: a.k, batch: a.batch, dead_frac: a.dead_frac, warmup: a.warmup, reps: a.reps, seed: a.seed, pool: a.pool, ..BenchSpec::new(arch, mode) };
    let device = a.backend.device()?;
    let backend = format!("{:?}", a.backend).to_lowercase();
    let report = run_bench(&spec, &device, &backend, &crate::policy::registry())?;
    let med = report.median();
    say!(
        "{} {} auxk={} d_in={} d_sae={} k={} B={} on {backend}: median {:.1} ms ({:.0} tok/s)",
        arch.name(),
        mode.name(),
        report.auxk as u8,
        spec.d_in,
        spec.d_sae,
        spec.k,
        spec.batch,
        med * 1e3,
        spec.batch as f64 / med
    );
    say!("{}", report.summary_line());
    Ok(())
}
