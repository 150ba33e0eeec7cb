//! Harvesting text: the corpus cut into batches of fixed-length context windows, run through
//! the generic harvest of [`sae_hooked::harvest`], which stores the activations at one hook point
//! with the token of every row.
//!
//! The corpus is tokenised without special tokens and cut into windows of `context` tokens,
//! each framed as the model frames one input (`[CLS] … [SEP]` for BERT, `<BOS> …` for a
//! decoder), so a window holds `context − specials` text tokens. With `exclude_special` the rows
//! of the framing tokens are not stored (SAELens's `exclude_special_tokens` / "exclude BOS").
//! With `max_norm_multiple = m`, rows whose L2 norm exceeds `m ×` the median norm of the first
//! batch are dropped (high-norm outliers, as sparsify and SAELens filter them).

use std::path::{Path, PathBuf};

use sae_core::RowMeta;
pub use sae_hooked::harvest::HarvestReport;

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
    /// The norm scales `model` was frozen to ([`crate::norms::freeze_on`]), recorded in the
    /// store's source so that the SAE is evaluated on the same LN-free model; `None` for the
    /// model's normal forward.
    pub ln_free_scales: Option<std::collections::BTreeMap<String, f32>>,
}

impl Default for HarvestSettings {
    fn default() -> Self {
        Self { hook: String::new(), tokens: 100_000, context: 128, batch: 16, exclude_special: true, max_norm_multiple: Some(10.0), shard_rows: 65_536, ln_free_scales: None }
    }
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
            let dir = cache.fetch(&crate::assets::SHAKESPEARE, &mut say)?;
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
/// at `out` (with token ids, positions and windows), or continues the incomplete store of an
/// interrupted harvest of the same corpus with the same settings (the batch size included; the
/// row count may differ). `progress(rows_stored, rows_wanted)` is
/// called after every batch. The report's `dropped_filtered` counts the framing tokens left out.
pub fn harvest(
    model: &dyn LanguageModel,
    corpus: &[(PathBuf, String)],
    settings: &HarvestSettings,
    out: &Path,
    progress: impl FnMut(u64, u64),
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
    let body = settings.context - prefix - suffix;
    let source = serde_json::json!({
        "model": model.name(), "hook": settings.hook, "context": settings.context, "batch": settings.batch,
        "exclude_special": settings.exclude_special, "max_norm_multiple": settings.max_norm_multiple,
        "corpus": corpus.iter().map(|(p, _)| p.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()).collect::<Vec<_>>(),
        // With the names, the sizes: a resumed harvest must read the same text.
        "corpus_bytes": corpus.iter().map(|(_, t)| t.len()).collect::<Vec<_>>(),
    });
    let mut source = source;
    if let Some(scales) = &settings.ln_free_scales {
        source["ln_free_scales"] = serde_json::json!(scales);
    }
    let mut windows = Windows { model, texts: corpus.iter(), stream: Vec::new(), body, batch: settings.batch };
    let first = windows.next_batch()?;
    if first.is_empty() {
        return Err(LmError::Input(format!("the corpus has {} tokens, fewer than one window of {body}", windows.stream.len())));
    }
    let batches = std::iter::once(Ok(first)).chain(std::iter::from_fn(move || match windows.next_batch() {
        Ok(b) if b.is_empty() => None,
        other => Some(other),
    }));
    let generic = sae_hooked::harvest::HarvestSettings { hook: settings.hook.clone(), rows: settings.tokens, max_norm_multiple: settings.max_norm_multiple, shard_rows: settings.shard_rows, source };
    let (s, exclude) = (settings.context as u32, settings.exclude_special);
    let keep = |m: &RowMeta| match *m {
        RowMeta::Token { pos, .. } => !exclude || (pos >= prefix as u32 && pos < s - suffix as u32),
        _ => true,
    };
    sae_hooked::harvest::harvest(model, batches, &generic, keep, out, progress)
}

/// The corpus as batches of framed windows, tokenised one file at a time as windows are needed:
/// a large corpus is never tokenised past what the harvest uses.
struct Windows<'a> {
    model: &'a dyn LanguageModel,
    texts: std::slice::Iter<'a, (PathBuf, String)>,
    stream: Vec<u32>,
    body: usize,
    batch: usize,
}

impl Windows<'_> {
    /// Up to `batch` framed windows; empty when the corpus has no whole window left.
    fn next_batch(&mut self) -> Result<Vec<Vec<u32>>> {
        while self.stream.len() < self.batch * self.body {
            let Some((_, text)) = self.texts.next() else { break };
            self.stream.extend(self.model.tokenizer().encode(text, false)?);
        }
        let n = (self.stream.len() / self.body).min(self.batch);
        let windows = self.stream[..n * self.body].chunks_exact(self.body).map(|w| self.model.frame(w)).collect();
        self.stream.drain(..n * self.body);
        Ok(windows)
    }
}
