//! `sae convert`: SAELens ⇄ sparsify (and Gemma Scope → either).

use std::path::PathBuf;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use sae_core::format::{Format, StoreDtype, gemma_scope, load_sae, saelens, save_sae, sparsify};

/// The files that make a directory an SAE of some format.
const SAE_FILES: [&str; 4] = [saelens::CFG_FILE, saelens::WEIGHTS_FILE, sparsify::WEIGHTS_FILE, gemma_scope::PARAMS_FILE];

use crate::backend::Backend;

/// Arguments of `sae convert`.
#[derive(Debug, Args)]
pub struct ConvertArgs {
    /// Source SAE directory (format detected).
    #[arg(long)]
    from: PathBuf,
    /// Destination directory (created). One that already holds an SAE is an error without
    /// --force.
    #[arg(long)]
    to: PathBuf,
    /// Replace the SAE in the destination, removing the weight files of other formats so that
    /// the directory holds exactly one SAE.
    #[arg(long)]
    force: bool,
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
    let present: Vec<&str> = SAE_FILES.iter().copied().filter(|f| args.to.join(f).is_file()).collect();
    if !present.is_empty() && !args.force {
        bail!("{} already holds an SAE ({}); pass --force to replace it", args.to.display(), present.join(", "));
    }
    save_sae(loaded.sae.as_ref(), &args.to, format, dtype)?;
    // Weights of another format left beside the new config would make a mixed directory that
    // loads as the wrong format.
    let written = match format {
        Format::SaeLens => saelens::WEIGHTS_FILE,
        _ => sparsify::WEIGHTS_FILE,
    };
    for stale in [saelens::WEIGHTS_FILE, sparsify::WEIGHTS_FILE, gemma_scope::PARAMS_FILE].into_iter().filter(|f| *f != written) {
        let path = args.to.join(stale);
        if path.is_file() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
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
