//! `sae info`: what an SAE directory holds, in words.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use sae_core::format::load_sae;

use crate::backend::Backend;

/// Arguments of `sae info`.
#[derive(Debug, Args)]
pub struct InfoArgs {
    /// SAE directory.
    #[arg(long)]
    sae: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// Runs `sae info`.
pub fn run(args: InfoArgs) -> Result<()> {
    let device = Backend::Flex.device()?;
    let registry = crate::policy::registry();
    let loaded = load_sae(&args.sae, &registry, &device)?;
    let sae = loaded.sae;
    let cfg = sae.config();
    let describe = registry.get(&cfg.architecture).map(|a| a.describe()).unwrap_or("");
    let mut notes = loaded.notes.clone();
    notes.extend(sae_arch::diagnostics::diagnostics(sae.as_ref(), registry.get(&cfg.architecture))?);
    let hyper: serde_json::Map<String, serde_json::Value> =
        cfg.extra.iter().filter(|(k, _)| k.as_str() != "metadata").map(|(k, v)| (k.clone(), v.clone())).collect();
    let params: Vec<(String, Vec<usize>)> = sae.params().iter().map(|(n, t)| (n.to_string(), t.shape())).collect();

    if args.json {
        let value = serde_json::json!({
            "path": args.sae.display().to_string(),
            "format": loaded.format.name(),
            "architecture": cfg.architecture,
            "d_in": cfg.d_in, "d_sae": cfg.d_sae, "d_out": cfg.d_out(),
            "dtype": loaded.stored_dtype.name(),
            "apply_b_dec_to_input": cfg.apply_b_dec_to_input,
            "normalize_activations": cfg.normalize_activations,
            "hyperparameters": hyper,
            "parameters": params.iter().map(|(n, s)| serde_json::json!({"name": n, "shape": s})).collect::<Vec<_>>(),
            "notes": notes,
        });
        say!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    say!("{}", args.sae.display());
    say!("  format        {}", loaded.format.name());
    say!("  architecture  {} — {describe}", cfg.architecture);
    say!("  sizes         d_in {}  d_sae {}  d_out {}  ({} parameters)", cfg.d_in, cfg.d_sae, cfg.d_out(), sae.params().numel());
    say!("  dtype         {} on disk, f32 in memory", loaded.stored_dtype.name());
    if !hyper.is_empty() {
        say!("  settings      {}", hyper.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "));
    }
    say!("  tensors       {}", params.iter().map(|(n, s)| format!("{n} {s:?}")).collect::<Vec<_>>().join(", "));
    if notes.is_empty() {
        say!("  notes         nothing unusual");
    } else {
        for n in &notes {
            say!("  note          {n}");
        }
    }
    Ok(())
}
