//! `sae synth`: synthetic activations from known features, with the ground truth beside them.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use sae_data::synthetic::{GROUND_TRUTH_FILE, SyntheticConfig, SyntheticGenerator};

use crate::progress::bar;

/// Arguments of `sae synth` (defaults: `SyntheticConfig::default()`).
#[derive(Debug, Args)]
pub struct SynthArgs {
    /// Output store directory (an incomplete store with the same settings is resumed).
    #[arg(long)]
    out: PathBuf,
    /// Activation width.
    #[arg(long, default_value_t = 64)]
    d_in: usize,
    /// Number of true features.
    #[arg(long, default_value_t = 512)]
    n_features: usize,
    /// Rows to generate.
    #[arg(long, default_value_t = 2_000_000)]
    tokens: u64,
    /// Seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Expected active features per token.
    #[arg(long, default_value_t = 3.0)]
    mean_active: f32,
    /// Zipf exponent of firing frequencies.
    #[arg(long, default_value_t = 0.5)]
    zipf_exponent: f32,
    /// Feature hierarchy: parents with mutually exclusive children (`--hierarchy false` turns it off).
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    hierarchy: bool,
    /// Parents in the hierarchy.
    #[arg(long, default_value_t = 32)]
    parents: usize,
    /// Children per parent.
    #[arg(long, default_value_t = 3)]
    children_per_parent: usize,
    /// Probability that a root feature shares its group's firing draw.
    #[arg(long, default_value_t = 0.2)]
    correlation: f32,
    /// Standard deviation of the Gaussian noise per dimension.
    #[arg(long, default_value_t = 0.01)]
    noise_std: f32,
}

/// Runs `sae synth`.
pub fn run(a: SynthArgs) -> Result<()> {
    let cfg = SyntheticConfig {
        d_in: a.d_in,
        n_features: a.n_features,
        tokens: a.tokens,
        seed: a.seed,
        mean_active: a.mean_active,
        zipf_exponent: a.zipf_exponent,
        parents: if a.hierarchy { a.parents } else { 0 },
        children_per_parent: a.children_per_parent,
        correlation: a.correlation,
        noise_std: a.noise_std,
        ..SyntheticConfig::default()
    };
    let generator = SyntheticGenerator::new(cfg)?;
    let pb = bar(a.tokens, "tokens");
    let store = generator.write_store(&a.out, |n| pb.set_position(n))?;
    pb.finish_and_clear();
    say!("wrote {} rows of width {} to {} (ground truth: {})", store.len(), store.d_in(), a.out.display(), a.out.join(GROUND_TRUTH_FILE).display());
    Ok(())
}
