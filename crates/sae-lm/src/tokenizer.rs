//! Text ↔ token ids with the model's own tokenizer (the `tokenizers` crate), exactly as its
//! configuration says, except that padding and truncation are switched off: inputs here are one
//! text at a time or equal-length windows, never padded batches.

use std::path::{Path, PathBuf};

use crate::error::{LmError, Result};

/// A model's tokenizer.
#[derive(Clone)]
pub struct TextTokenizer {
    inner: tokenizers::Tokenizer,
    path: PathBuf,
}

impl std::fmt::Debug for TextTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TextTokenizer").field("path", &self.path).field("vocab", &self.vocab_size()).finish()
    }
}

impl TextTokenizer {
    /// Reads a `tokenizer.json`.
    pub fn from_file(path: &Path) -> Result<Self> {
        let bad = |reason: String| LmError::BadFile { path: path.to_path_buf(), reason };
        let bytes = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        Self::from_json_bytes(&bytes, path).map_err(|e| bad(e.to_string()))
    }

    /// A tokenizer from `tokenizer.json` bytes; `origin` names them in errors.
    pub fn from_json_bytes(bytes: &[u8], origin: &Path) -> Result<Self> {
        let mut inner = tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| LmError::BadFile { path: origin.into(), reason: e.to_string() })?;
        inner.with_padding(None);
        inner
            .with_truncation(None)
            .map_err(|e| LmError::BadFile { path: origin.into(), reason: e.to_string() })?;
        Ok(Self { inner, path: origin.into() })
    }

    /// Token ids of `text`; with `special`, the special tokens the tokenizer's post-processor
    /// adds (`[CLS] … [SEP]` for BERT).
    pub fn encode(&self, text: &str, special: bool) -> Result<Vec<u32>> {
        let enc = self.inner.encode(text, special).map_err(|e| LmError::Input(format!("tokenizing: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The text of `ids` (special tokens skipped).
    pub fn decode(&self, ids: &[u32]) -> Result<String> {
        self.inner.decode(ids, true).map_err(|e| LmError::Input(format!("decoding: {e}")))
    }

    /// The vocabulary string of one token (`<unk:ID>` if none).
    pub fn token(&self, id: u32) -> String {
        self.inner.id_to_token(id).unwrap_or_else(|| format!("<unk:{id}>"))
    }

    /// The id of the token spelled `token`, if the vocabulary has it.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// Vocabulary size, added tokens included.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }
}
