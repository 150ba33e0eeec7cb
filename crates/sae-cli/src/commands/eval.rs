//! `sae eval`: reconstruction, sparsity and (with a ground truth) feature-recovery metrics of an
//! SAE on an activation store.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use sae_core::ActivationSource;
use sae_core::format::load_sae;
use sae_data::store::ActivationStore;
use sae_data::synthetic::GroundTruth;
use sae_metrics::evaluate::{EvalOptions, evaluate};

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
    /// Suites to run, comma-separated: `core` (reconstruction, sparsity, ground-truth MCC, and
    /// the downstream loss with `--model`), `absorption` (SAEBench's first-letter task on
    /// `--model` at `--hook`), `synthetic` (SynthSAEBench's metrics and absorption on the
    /// generator's hierarchy, for a store written by `sae synth`: its rows are regenerated with
    /// the true features active in each and checked against the store), `full` (core, and
    /// absorption with a model or synthetic on a synthetic store).
    #[arg(long, value_delimiter = ',', default_value = "core")]
    suite: Vec<Suite>,
    /// Words of the first-letter task (80 % train, 20 % test), drawn from every all-letter token
    /// of the tokenizer; SAEBench uses all of them, which on a CPU takes far longer for little
    /// change in the means (`docs/metrics.md`).
    #[arg(long, default_value_t = 2000)]
    absorption_words: usize,
    /// Seed of every random choice of the absorption suite (word split, prompts, probes).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::default())]
    backend: Backend,
}

/// An evaluation suite of `sae eval --suite`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Suite {
    /// Reconstruction, sparsity, recovery, downstream loss: the top-level JSON keys.
    Core,
    /// The first-letter absorption task: the `absorption` JSON key.
    Absorption,
    /// Ground-truth metrics of a synthetic store: the `synthetic` JSON key.
    Synthetic,
    /// Every suite that applies: core, absorption with a model, synthetic on a synthetic store.
    Full,
}

/// Runs `sae eval`: [`sae_metrics::evaluate::evaluate`] on the store, then the downstream loss
/// when a model is named, printed and written as JSON.
pub fn run(a: EvalArgs) -> Result<()> {
    let device = a.backend.device()?;
    let sae = load_sae(&a.sae, &crate::policy::registry(), &device)?.sae;
    let store = ActivationStore::open(&a.data)?;
    store.require_complete()?;
    let truth = match &a.ground_truth {
        None => None,
        Some(gt) => {
            let truth = GroundTruth::load(gt)?;
            if truth.d_in != store.d_in() {
                bail!("{}: ground-truth features have width {}, the store {}", gt.display(), truth.d_in, store.d_in());
            }
            Some(truth)
        }
    };
    let full = a.suite.contains(&Suite::Full);
    let synthetic_store = sae_data::synthetic::SyntheticGenerator::from_store_source(&store.metadata().source).is_some();
    let wants_absorption = a.suite.contains(&Suite::Absorption) || (full && a.model.is_some());
    if wants_absorption && a.model.is_none() {
        bail!("--suite absorption needs a language model: --model smollm2 --hook HOOK");
    }
    let options = EvalOptions { rows: a.rows, batch_size: a.batch_size, ground_truth: truth.as_ref().map(|t| t.features.as_slice()) };
    let mut timings = serde_json::Map::new();
    let clock = std::time::Instant::now();
    let pb = bar(a.rows.min(store.len()), "rows");
    let report = evaluate(sae.as_ref(), &store, &options, |done| pb.set_position(done))?;
    pb.finish_and_clear();
    timings.insert("core".into(), clock.elapsed().as_secs_f64().into());
    let metrics = &report.reconstruction;
    let mut json = serde_json::to_value(&report)?;
    if let (Some(model_name), Some(hook)) = (&a.model, &a.hook) {
        let cache = sae_assets::AssetCache::from_env();
        let mut model = crate::catalog::text_models().load(model_name, &cache, &device)?;
        // A store harvested from the LN-free forward: the SAE is evaluated in the same model.
        let ln_free = match store.metadata().source.get("ln_free_scales") {
            None => false,
            Some(v) => {
                let scales: std::collections::BTreeMap<String, f32> = serde_json::from_value(v.clone()).map_err(|e| anyhow::anyhow!("{}: source.ln_free_scales: {e}", a.data.display()))?;
                sae_lm::norms::freeze_scales(model.norms_mut(), &scales)?;
                true
            }
        };
        if wants_absorption {
            let (report, timing) = super::absorption::absorption_suite(sae.as_ref(), model.as_ref(), hook, a.absorption_words, a.seed)?;
            json["absorption"] = serde_json::to_value(&report)?;
            json["absorption"]["ln_free"] = ln_free.into();
            timings.insert("absorption".into(), timing);
        }
        let clock = std::time::Instant::now();
        let corpus = sae_lm::harvest::read_corpus(&sae_lm::harvest::corpus_files(&cache, &a.corpus, |l| eprintln!("{l}"))?)?;
        let windows = sae_lm::downstream::eval_windows(model.as_ref(), &corpus, a.ce_context, a.ce_windows)?;
        let pb = bar(windows.len() as u64, "windows");
        let r = sae_lm::downstream::downstream_loss(model.as_ref(), sae.as_ref(), hook, &windows, 2, |done, _| pb.set_position(done as u64))?;
        pb.finish_and_clear();
        json["downstream"] = serde_json::to_value(&r)?;
        json["downstream"]["ln_free"] = ln_free.into();
        timings.insert("downstream".into(), clock.elapsed().as_secs_f64().into());
    }
    if a.suite.contains(&Suite::Synthetic) || (full && synthetic_store) {
        let clock = std::time::Instant::now();
        json["synthetic"] = serde_json::to_value(synthetic_suite(sae.as_ref(), &store, a.rows, a.batch_size)?)?;
        timings.insert("synthetic".into(), clock.elapsed().as_secs_f64().into());
    }
    json["timings_s"] = timings.into();
    say!("{} on {} rows of {}", a.sae.display(), metrics.rows, a.data.display());
    if let Some(obj) = json.as_object() {
        for (k, v) in obj {
            if let Some(inner) = v.as_object() {
                for (k2, v2) in inner.iter().filter(|(_, v)| !v.is_array() && !v.is_object()) {
                    let shown = v2.as_f64().map(|f| format!("{f:.5}")).unwrap_or_else(|| v2.to_string());
                    say!("  {:<30} {shown}", format!("{k}.{k2}"));
                }
                continue;
            }
            let shown = v.as_f64().map(|f| format!("{f:.5}")).unwrap_or_else(|| v.to_string());
            say!("  {k:<30} {shown}");
        }
    }
    if let Some(path) = &a.density_plot {
        let fig = sae_plot::density::density_histogram(&metrics.feature_density, &a.sae.display().to_string(), path)?;
        say!("density histogram {} {}", fig.png.display(), fig.svg.display());
    }
    if let Some(path) = &a.json {
        sae_core::format::atomic::write_atomic(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
    }
    Ok(())
}

/// The synthetic suite on the last `rows` rows of a store written by `sae synth`: the rows are
/// regenerated with their true active features, checked bit for bit against the store.
fn synthetic_suite(sae: &dyn sae_core::Sae, store: &ActivationStore, rows: u64, batch_size: usize) -> Result<sae_metrics::synthetic::SyntheticReport> {
    let Some(generator) = sae_data::synthetic::SyntheticGenerator::from_store_source(&store.metadata().source) else {
        bail!("--suite synthetic needs a store written by `sae synth` (its metadata names the generator and its settings)");
    };
    let generator = generator?;
    let truth = generator.ground_truth();
    let n = rows.min(store.len());
    let start = store.len() - n;
    let step = batch_size.max(1) as u64;
    let mut stored = Vec::new();
    let batches = (start..store.len()).step_by(step as usize).map(|s| -> Result<(Vec<f32>, Vec<Vec<usize>>)> {
        let take = step.min(store.len() - s) as usize;
        let (x, active) = generator.rows_with_active(s, take);
        store.read_rows(s, take, &mut stored)?;
        if x != stored {
            bail!("rows {s}..{} of the store differ from what its generator makes: the store was changed after `sae synth` wrote it", s + take as u64);
        }
        Ok((x, active))
    });
    let pb = bar(n, "rows (synthetic)");
    let report = sae_metrics::synthetic::evaluate_synthetic(sae, &truth.features, &truth.parent, batches, |done| pb.set_position(done))?;
    pb.finish_and_clear();
    Ok(report)
}
