//! `sae info`: what an SAE directory holds, in words.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use sae_core::format::load_sae;
use sae_core::params::{ParamTensor, host_f32};
use sae_core::{Normalization, ops};

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
    let registry = sae_arch::registry();
    let loaded = load_sae(&args.sae, &registry, &device)?;
    let sae = loaded.sae;
    let cfg = sae.config();
    let describe = registry.get(&cfg.architecture).map(|a| a.describe()).unwrap_or("");
    let mut notes = loaded.notes.clone();
    if let Some(ParamTensor::Matrix(w)) = sae.params().get("W_dec") {
        let norms = host_f32(ops::row_norms(w.clone()).into_data());
        let (lo, hi) = norms.iter().fold((f32::INFINITY, 0f32), |(a, b), v| (a.min(*v), b.max(*v)));
        let mean = norms.iter().sum::<f32>() / norms.len().max(1) as f32;
        if (hi - lo) > 1e-3 || (mean - 1.0).abs() > 1e-3 {
            notes.push(format!("decoder rows are not unit-norm (norms {lo:.4}..{hi:.4}, mean {mean:.4})"));
        }
        let dead_rows = norms.iter().filter(|n| **n < 1e-6).count();
        if dead_rows > 0 {
            notes.push(format!("{dead_rows} decoder row(s) are zero"));
        }
    }
    if let Some(ParamTensor::Vector(t)) = sae.params().get("threshold") {
        let th = host_f32(t.clone().into_data());
        let zero = th.iter().filter(|v| **v <= 0.0).count();
        if zero > 0 {
            notes.push(format!("{zero} JumpReLU threshold(s) are ≤ 0 (those latents act as plain ReLU)"));
        }
    }
    if !cfg.apply_b_dec_to_input && cfg.d_out() == cfg.d_in {
        notes.push("the input is not centred by b_dec before encoding (apply_b_dec_to_input = false)".into());
    }
    if cfg.normalize_activations.is_runtime() {
        notes.push(format!("inputs are normalised per row at run time ({:?}) and outputs un-normalised", cfg.normalize_activations));
    }
    if cfg.normalize_activations == Normalization::CovarianceWhitening {
        notes.push("covariance_whitening is the identity at inference: the whitening is assumed folded".into());
    }
    if matches!(cfg.architecture.as_str(), "batchtopk" | "matryoshka_batchtopk") {
        notes.push("training form: encoding depends on the batch (convert to saelens to get the JumpReLU inference form)".into());
    }
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
        println!("{}", serde_json::to_string_pretty(&value)?);
        return Ok(());
    }
    println!("{}", args.sae.display());
    println!("  format        {}", loaded.format.name());
    println!("  architecture  {} — {describe}", cfg.architecture);
    println!("  sizes         d_in {}  d_sae {}  d_out {}  ({} parameters)", cfg.d_in, cfg.d_sae, cfg.d_out(), sae.params().numel());
    println!("  dtype         {} on disk, f32 in memory", loaded.stored_dtype.name());
    if !hyper.is_empty() {
        println!("  settings      {}", hyper.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(", "));
    }
    println!("  tensors       {}", params.iter().map(|(n, s)| format!("{n} {s:?}")).collect::<Vec<_>>().join(", "));
    if notes.is_empty() {
        println!("  notes         nothing unusual");
    } else {
        for n in &notes {
            println!("  note          {n}");
        }
    }
    Ok(())
}
