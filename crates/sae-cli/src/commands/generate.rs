//! `sae generate`: greedy continuation of a prompt, optionally with an SAE at a hook point
//! steering (`--steer FEATURE:SCALE`), ablating (`--ablate FEATURE`) or scaling
//! (`--scale FEATURE:FACTOR`) features, or spliced in (`--splice reconstruction|with-error`).

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use sae_core::format::load_sae;
use sae_core::hooks::NoHooks;
use sae_assets::AssetCache;
use sae_lm::generate::generate_greedy;
use sae_hooked::intervene::{FeatureEdit, Intervention, Splice};

use crate::backend::Backend;

/// What replaces the activation at `--hook`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SpliceArg {
    /// Keep the activation (feature edits then splice with the error term).
    None,
    /// The SAE's reconstruction.
    Reconstruction,
    /// The reconstruction plus the SAE's error (only edits change anything).
    WithError,
}

/// Arguments of `sae generate`.
#[derive(Debug, Args)]
pub struct GenerateArgs {
    /// Causal model: `smollm2`.
    #[arg(long, default_value = "smollm2")]
    model: String,
    /// The prompt (tokenised as the model's tokenizer configuration says).
    #[arg(long)]
    prompt: String,
    /// New tokens at most (generation also stops at the end-of-sequence token).
    #[arg(long, default_value_t = 20)]
    max_tokens: usize,
    /// SAE directory for steering, edits or splicing.
    #[arg(long, requires = "hook")]
    sae: Option<PathBuf>,
    /// Hook point of the SAE (e.g. `blocks.3.hook_resid_post`).
    #[arg(long, requires = "sae")]
    hook: Option<String>,
    /// Add SCALE × the decoder direction of FEATURE at every position (repeatable).
    #[arg(long, value_name = "FEATURE:SCALE")]
    steer: Vec<String>,
    /// Set FEATURE to zero (repeatable).
    #[arg(long, value_name = "FEATURE")]
    ablate: Vec<usize>,
    /// Multiply FEATURE by FACTOR (repeatable).
    #[arg(long, value_name = "FEATURE:FACTOR")]
    scale: Vec<String>,
    /// What replaces the activation at the hook.
    #[arg(long, value_enum, default_value_t = SpliceArg::None)]
    splice: SpliceArg,
    /// Also print the continuation without any intervention, for comparison.
    #[arg(long)]
    compare: bool,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::default())]
    backend: Backend,
}

fn pair(s: &str, what: &str) -> Result<(usize, f32)> {
    let (f, v) = s.split_once(':').with_context(|| format!("{what} `{s}` is not FEATURE:NUMBER"))?;
    let f = f.trim().parse().with_context(|| format!("{what} `{s}`: `{f}` is not a feature index"))?;
    let v: f32 = v.trim().parse().with_context(|| format!("{what} `{s}`: `{v}` is not a number"))?;
    if !v.is_finite() {
        bail!("{what} `{s}`: the number must be finite");
    }
    Ok((f, v))
}

/// Runs `sae generate`.
pub fn run(a: GenerateArgs) -> Result<()> {
    let device = a.backend.device()?;
    let model = crate::catalog::text_models().load(&a.model, &AssetCache::from_env(), &device)?;
    let prompt = model.tokenize(&a.prompt)?;
    let intervening = !a.steer.is_empty() || !a.ablate.is_empty() || !a.scale.is_empty() || a.splice != SpliceArg::None;
    if intervening && a.sae.is_none() {
        bail!("--steer, --ablate, --scale and --splice need --sae DIR and --hook H");
    }
    let plain = if a.sae.is_none() || a.compare { Some(generate_greedy(model.as_ref(), &prompt, a.max_tokens, &mut NoHooks)?) } else { None };
    if let (Some(dir), Some(hook)) = (&a.sae, &a.hook) {
        model.check_hook(hook)?;
        let sae = load_sae(dir, &crate::policy::registry(), &device)?.sae;
        let mut iv = Intervention::at(hook.clone()).with_sae(sae.as_ref()).splice(match a.splice {
            SpliceArg::None => Splice::Off,
            SpliceArg::Reconstruction => Splice::Reconstruction,
            SpliceArg::WithError => Splice::WithError,
        });
        for s in &a.steer {
            let (f, v) = pair(s, "--steer")?;
            iv = iv.steer(f, v);
        }
        for &f in &a.ablate {
            iv = iv.edit(FeatureEdit::Ablate(f));
        }
        for s in &a.scale {
            let (f, v) = pair(s, "--scale")?;
            iv = iv.edit(FeatureEdit::Scale(f, v));
        }
        let out = generate_greedy(model.as_ref(), &prompt, a.max_tokens, &mut iv)?;
        if let Some(p) = &plain {
            say!("plain:      {}{}", a.prompt, model.tokenizer().decode(p)?);
        }
        say!("intervened: {}{}", a.prompt, model.tokenizer().decode(&out)?);
    } else if let Some(p) = &plain {
        say!("{}{}", a.prompt, model.tokenizer().decode(p)?);
    }
    Ok(())
}
