//! `sae eval`: reconstruction, sparsity and (with a ground truth) feature-recovery metrics of an
//! SAE on an activation store.

use std::path::PathBuf;

use anyhow::{Result, bail};
use burn::tensor::{Tensor, TensorData};
use clap::Args;
use sae_core::format::load_sae;
use sae_data::store::ActivationStore;
use sae_data::synthetic::GroundTruth;
use sae_metrics::reconstruction::ReconstructionAccumulator;
use sae_metrics::recovery::feature_recovery;

use crate::backend::Backend;
use crate::progress::bar;

/// Arguments of `sae eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// SAE directory (SAELens, sparsify or Gemma Scope).
    #[arg(long)]
    sae: PathBuf,
    /// Activation store.
    #[arg(long)]
    data: PathBuf,
    /// Ground-truth features (`ground_truth.safetensors`, tensor `features [n, d_in]`).
    #[arg(long)]
    ground_truth: Option<PathBuf>,
    /// Rows to evaluate (default: up to 200 000 from the end of the store).
    #[arg(long, default_value_t = 200_000)]
    rows: u64,
    /// Write the metrics as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw the feature-density histogram here, as `.png` and `.svg` (the extension given is replaced).
    #[arg(long)]
    density_plot: Option<PathBuf>,
    /// Rows per batch.
    #[arg(long, default_value_t = 4096)]
    batch_size: usize,
    /// Causal language model (`smollm2`) to splice the SAE into for the downstream loss (CE
    /// clean / spliced / zero-ablated, KL, CE recovered); needs `--hook`.
    #[arg(long, requires = "hook")]
    model: Option<String>,
    /// Hook point the SAE was trained on (e.g. `blocks.3.hook_resid_post`).
    #[arg(long, requires = "model")]
    hook: Option<String>,
    /// Text for the downstream loss: `shakespeare` or UTF-8 files (read last file first).
    #[arg(long, num_args = 1.., default_value = "shakespeare")]
    corpus: Vec<String>,
    /// Windows of text for the downstream loss.
    #[arg(long, default_value_t = 16)]
    ce_windows: usize,
    /// Tokens per window for the downstream loss.
    #[arg(long, default_value_t = 128)]
    ce_context: usize,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::default())]
    backend: Backend,
}

/// Runs `sae eval`.
pub fn run(a: EvalArgs) -> Result<()> {
    let device = a.backend.device()?;
    let sae = load_sae(&a.sae, &crate::policy::registry(), &device)?.sae;
    let store = ActivationStore::open(&a.data)?;
    let d = store.d_in();
    if sae.config().d_in != d {
        bail!("{}: the SAE takes d_in {} but the store {} holds rows of width {d}", a.sae.display(), sae.config().d_in, a.data.display());
    }
    if a.batch_size == 0 {
        bail!("--batch-size must be positive");
    }
    // The last rows of the store: training on a prefix leaves them unseen.
    let n = a.rows.min(store.len());
    let start = store.len() - n;
    let mut acc = ReconstructionAccumulator::default();
    let pb = bar(n, "rows");
    let mut done = 0u64;
    let mut skipped = 0usize;
    while done < n {
        let take = (a.batch_size as u64).min(n - done) as usize;
        let mut rows = Vec::with_capacity(take * d);
        store.read_rows(start + done, take, &mut rows)?;
        skipped += sae_data::stats::filter_nonfinite(&mut rows, d, sae_data::stats::NonFinitePolicy::Skip, "", 0)?;
        let m = rows.len() / d;
        if m > 0 {
            let x = Tensor::<2>::from_data(TensorData::new(rows, [m, d]), &device);
            let fwd = sae.forward(x.clone())?;
            acc.update(x, fwd.output, &fwd.codes)?;
        }
        done += take as u64;
        pb.set_position(done);
    }
    pb.finish_and_clear();
    let metrics = acc.finish();
    let mut json = serde_json::to_value(&metrics)?;
    json["skipped_rows"] = skipped.into();
    if let Some(gt) = &a.ground_truth {
        let truth = GroundTruth::load(gt)?;
        if truth.d_in != d {
            bail!("{}: ground-truth features have width {}, the store {d}", gt.display(), truth.d_in);
        }
        let w_dec = sae.params().get("W_dec").map(|t| t.to_vec()).ok_or_else(|| anyhow::anyhow!("the SAE has no W_dec"))??;
        let r = feature_recovery(&truth.features, &w_dec, d, 0.9).ok_or_else(|| anyhow::anyhow!("feature recovery failed (non-finite decoder?)"))?;
        json["mcc"] = r.mcc.into();
        json["recovered_frac"] = r.recovered_frac.into();
        json["n_true_features"] = truth.n_features().into();
    }
    if let (Some(model_name), Some(hook)) = (&a.model, &a.hook) {
        let cache = sae_assets::AssetCache::from_env();
        let corpus = sae_lm::harvest::read_corpus(&super::harvest::corpus_files(&cache, &a.corpus)?)?;
        let model = sae_lm::load_model(model_name, &cache, &device)?;
        let windows = sae_lm::downstream::eval_windows(model.as_ref(), &corpus, a.ce_context, a.ce_windows)?;
        let pb = bar(windows.len() as u64, "windows");
        let r = sae_lm::downstream::downstream_loss(model.as_ref(), sae.as_ref(), hook, &windows, 2, |done, _| pb.set_position(done as u64))?;
        pb.finish_and_clear();
        json["downstream"] = serde_json::to_value(&r)?;
    }
    println!("{} on {} rows of {}", a.sae.display(), metrics.rows, a.data.display());
    if let Some(obj) = json.as_object() {
        for (k, v) in obj {
            if let Some(inner) = v.as_object() {
                for (k2, v2) in inner {
                    let shown = v2.as_f64().map(|f| format!("{f:.5}")).unwrap_or_else(|| v2.to_string());
                    println!("  {:<30} {shown}", format!("{k}.{k2}"));
                }
                continue;
            }
            let shown = v.as_f64().map(|f| format!("{f:.5}")).unwrap_or_else(|| v.to_string());
            println!("  {k:<30} {shown}");
        }
    }
    if let Some(path) = &a.density_plot {
        let fig = sae_plot::density::density_histogram(&metrics.feature_density, &a.sae.display().to_string(), path)?;
        println!("density histogram {} {}", fig.png.display(), fig.svg.display());
    }
    if let Some(path) = &a.json {
        sae_core::format::atomic::write_atomic(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
    }
    Ok(())
}
