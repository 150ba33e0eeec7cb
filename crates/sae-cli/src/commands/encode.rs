//! `sae encode`: activations in, dense codes (and reconstructions) out.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use burn::tensor::{Tensor, TensorData};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use sae_core::format::{load_sae, npy};
use sae_core::params::host_f32;
use sae_core::validate::check_finite;
use sae_core::SaeError;

use crate::backend::Backend;

/// Arguments of `sae encode`.
#[derive(Debug, Args)]
pub struct EncodeArgs {
    /// SAE directory (SAELens, sparsify or Gemma Scope).
    #[arg(long)]
    sae: PathBuf,
    /// Input activations: f32 `.npy` of shape [n, d_in].
    #[arg(long)]
    input: PathBuf,
    /// Output: dense codes, f32 `.npy` [n, d_sae].
    #[arg(long)]
    codes: PathBuf,
    /// Optional output: reconstructions (transcoders: predictions), f32 `.npy` [n, d_out].
    #[arg(long)]
    recon: Option<PathBuf>,
    /// Rows per batch sent to the device.
    #[arg(long, default_value_t = 4096)]
    batch_size: usize,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::default())]
    backend: Backend,
}

/// Runs `sae encode`.
pub fn run(args: EncodeArgs) -> Result<()> {
    if args.batch_size == 0 {
        bail!("--batch-size must be at least 1");
    }
    let device = args.backend.device()?;
    let registry = crate::policy::registry();
    let loaded = load_sae(&args.sae, &registry, &device)?;
    let sae = loaded.sae;
    let cfg = sae.config().clone();
    let input = npy::read_npy(&args.input)?;
    let [n, d] = match input.shape.as_slice() {
        [n, d] => [*n, *d],
        _ => {
            return Err(SaeError::ShapeMismatch { path: args.input.clone(), name: "activations".into(), actual: input.shape.clone(), expected: vec![input.shape.first().copied().unwrap_or(0), cfg.d_in] }.into());
        }
    };
    if d != cfg.d_in {
        return Err(SaeError::ShapeMismatch { path: args.input.clone(), name: "activations".into(), actual: vec![n, d], expected: vec![n, cfg.d_in] }.into());
    }
    check_finite(&input.values, d, &args.input.display().to_string())?;

    let bar = ProgressBar::new(n as u64).with_style(
        ProgressStyle::with_template("{spinner} encoding [{bar:30}] {pos}/{len} rows {per_sec} eta {eta}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let mut codes = Vec::with_capacity(n * cfg.d_sae);
    let mut recon = Vec::with_capacity(if args.recon.is_some() { n * cfg.d_out() } else { 0 });
    for start in (0..n).step_by(args.batch_size) {
        let rows = args.batch_size.min(n - start);
        let chunk = input.values[start * d..(start + rows) * d].to_vec();
        let x = Tensor::<2>::from_data(TensorData::new(chunk, [rows, d]), &device);
        if args.recon.is_some() {
            let fwd = sae.forward(x)?;
            codes.extend(host_f32(fwd.codes.to_dense().into_data())?);
            recon.extend(host_f32(fwd.output.into_data())?);
        } else {
            codes.extend(host_f32(sae.encode(x)?.to_dense().into_data())?);
        }
        bar.inc(rows as u64);
    }
    bar.finish_and_clear();
    npy::write_npy(&args.codes, &[n, cfg.d_sae], &codes).with_context(|| "writing codes")?;
    if let Some(path) = &args.recon {
        npy::write_npy(path, &[n, cfg.d_out()], &recon).with_context(|| "writing reconstructions")?;
    }
    let active = codes.iter().filter(|v| **v != 0.0).count() as f64 / n.max(1) as f64;
    eprintln!("encoded {n} rows with {} ({}); mean L0 {active:.2}", cfg.architecture, loaded.format.name());
    Ok(())
}
