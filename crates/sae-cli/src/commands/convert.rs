//! `sae convert`: SAELens ⇄ sparsify (and Gemma Scope → either).

use std::path::PathBuf;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use sae_core::format::{Format, StoreDtype, load_sae, save_sae};

use crate::backend::Backend;

/// Arguments of `sae convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Source SAE directory (format detected).
    #[arg(long)]
    from: PathBuf,
    /// Destination directory (created; existing files replaced atomically).
    #[arg(long)]
    to: PathBuf,
    /// Destination format: `saelens` or `sparsify`.
    #[arg(long)]
    format: String,
    /// Storage dtype of the written weights: float32, float16 or bfloat16 (default: the source's).
    #[arg(long)]
    dtype: Option<String>,
}

/// Runs `sae convert`.
pub fn run(args: ConvertArgs) -> Result<()> {
    let format = Format::parse(&args.format).ok_or_else(|| anyhow!("unknown --format `{}`: use saelens or sparsify", args.format))?;
    if format == Format::GemmaScope {
        bail!("cannot write Gemma Scope files: convert to saelens or sparsify");
    }
    let device = Backend::Flex.device()?;
    let loaded = load_sae(&args.from, &crate::policy::registry(), &device)?;
    let dtype = match &args.dtype {
        Some(s) => StoreDtype::parse(s).ok_or_else(|| anyhow!("unknown --dtype `{s}`: use float32, float16 or bfloat16"))?,
        None => loaded.stored_dtype,
    };
    save_sae(loaded.sae.as_ref(), &args.to, format, dtype)?;
    eprintln!(
        "converted {} ({}, {}) → {} ({}, {})",
        args.from.display(),
        loaded.format.name(),
        loaded.stored_dtype.name(),
        args.to.display(),
        format.name(),
        dtype.name()
    );
    Ok(())
}
