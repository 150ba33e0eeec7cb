//! `sae report`: a JSON file and a self-contained HTML page for one trained SAE: the metrics of
//! `sae eval`, the training curves and density histogram, and the top tokens and top-activating
//! examples of a few features spread over the density range.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use sae_core::format::load_sae;
use sae_assets::AssetCache;
use sae_data::store::ActivationStore;
use sae_label::report::Report;
use sae_label::top_examples::{densities, pick_features, top_examples};

use crate::backend::Backend;
use crate::progress::bar;

/// Arguments of `sae report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// SAE directory.
    #[arg(long)]
    sae: PathBuf,
    /// Activation store harvested with `sae harvest` (it holds the token of every row).
    #[arg(long)]
    data: PathBuf,
    /// The model whose tokenizer turns token ids into text (`minilm`, `smollm2`; default: the
    /// store's own `source.model`).
    #[arg(long)]
    model: Option<String>,
    /// `sae eval --json` output to show.
    #[arg(long)]
    eval: Option<PathBuf>,
    /// Features to show.
    #[arg(long, default_value_t = 8)]
    features: usize,
    /// Examples per feature.
    #[arg(long, default_value_t = 8)]
    examples: usize,
    /// Rows of the store to scan.
    #[arg(long, default_value_t = 100_000)]
    rows: u64,
    /// Output directory (`report.html`, `report.json`).
    #[arg(long)]
    out: PathBuf,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::default())]
    backend: Backend,
}

/// Runs `sae report`.
pub fn run(a: ReportArgs) -> Result<()> {
    let device = a.backend.device()?;
    let sae = load_sae(&a.sae, &crate::policy::registry(), &device)?.sae;
    let store = ActivationStore::open(&a.data)?;
    store.require_complete()?;
    let harvested_by = store.metadata().source.get("model").and_then(|v| v.as_str());
    let model_name = match (&a.model, harvested_by) {
        // Another model's tokenizer would turn the stored ids into unrelated text without a sign.
        (Some(m), Some(h)) if m != h => bail!("{}: the store was harvested with `{h}`, not `{m}`; its token ids only decode with {h}'s tokenizer", a.data.display()),
        (Some(m), _) => m.clone(),
        (None, Some(h)) => h.to_string(),
        (None, None) => bail!("{}: the store does not say which model made it; pass --model", a.data.display()),
    };
    let model = crate::catalog::text_models().load(&model_name, &AssetCache::from_env(), &device)?;
    let rows = a.rows.min(store.len());
    let pb = bar(2 * rows, "rows");
    let density = densities(sae.as_ref(), &store, rows, 4096, |d| pb.set_position(d))?;
    let chosen = pick_features(&density, a.features, 0.5);
    let features = top_examples(sae.as_ref(), &store, rows, &chosen, a.examples, (10, 4), 4096, |d| pb.set_position(rows + d))?;
    pb.finish_and_clear();
    let metrics = match &a.eval {
        Some(p) => serde_json::from_slice(&std::fs::read(p)?)?,
        None => serde_json::json!({}),
    };
    let mut metrics: serde_json::Value = metrics;
    if let Some(obj) = metrics.as_object_mut() {
        obj.remove("feature_density");
    }
    let title = format!("SAE {} on {} ({})", a.sae.display(), model_name, store.metadata().source.get("hook").and_then(|v| v.as_str()).unwrap_or("?"));
    let report = Report::new(title, metrics, features, |t| model.tokenizer().token_text(t));
    let mut figures = vec![("Training curves".to_string(), a.sae.join("training_curves.svg"))];
    if let Some(e) = &a.eval {
        figures.push(("Feature density".to_string(), e.with_file_name("density.svg")));
    }
    report.write(&a.out, &figures)?;
    say!("report {} and {} ({} features)", a.out.join("report.html").display(), a.out.join("report.json").display(), chosen.len());
    Ok(())
}
