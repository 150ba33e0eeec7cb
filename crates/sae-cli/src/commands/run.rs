//! `sae run`: one text through a language model; the activations at one hook point go to a
//! `.npy` file `[n_tokens, width]`, the token ids and tokens to standard output.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use sae_core::format::npy::write_npy;
use sae_core::hooks::Capture;
use sae_assets::AssetCache;

use crate::backend::Backend;

/// Arguments of `sae run`.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Model (`sae assets list` shows the registered ones: `minilm`, `smollm2`).
    #[arg(long)]
    model: String,
    /// The text, tokenised as the model's own tokenizer configuration says (special tokens
    /// included where it adds them).
    #[arg(long)]
    text: String,
    /// Hook point (e.g. `blocks.3.hook_resid_post`; an unknown name lists the valid ones).
    #[arg(long)]
    hook: String,
    /// Output `.npy` file: `[n_tokens, width]` (`[n_tokens, heads · d_head]` for per-head hooks,
    /// `[heads, n_tokens · n_tokens]` for `attn.hook_pattern`).
    #[arg(long)]
    out: PathBuf,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::default())]
    backend: Backend,
}

/// Runs `sae run`.
pub fn run(args: RunArgs) -> Result<()> {
    let device = args.backend.device()?;
    let model = crate::catalog::text_models().load(&args.model, &AssetCache::from_env(), &device)?;
    model.check_hook(&args.hook)?;
    let ids = model.tokenize(&args.text)?;
    let mut capture = Capture::new([args.hook.clone()]);
    model.forward(std::slice::from_ref(&ids), &mut capture)?;
    let acts = capture.take(&args.hook).ok_or_else(|| anyhow::anyhow!("hook {} was not called", args.hook))?;
    let rows = acts.flat_rows();
    let [n, d] = rows.dims();
    let values = rows.into_data().try_to_vec::<f32>().map_err(|e| anyhow::anyhow!("reading activations: {e:?}"))?;
    write_npy(&args.out, &[n, d], &values)?;
    let tokens: Vec<String> = ids.iter().map(|&i| model.tokenizer().token(i)).collect();
    say!("token_ids: {ids:?}");
    say!("tokens: {tokens:?}");
    say!("wrote {} [{n}, {d}] at {}", args.out.display(), args.hook);
    Ok(())
}
