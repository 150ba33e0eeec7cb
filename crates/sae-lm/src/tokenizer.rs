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

    /// The byte-level BPE tokenizer that a GGUF file describes in its metadata
    /// (`tokenizer.ggml.model` = `gpt2`: `tokens`, `merges`, `token_type`, and the
    /// pre-tokenizer named by `tokenizer.ggml.pre`: `smollm` splits digits one by one before the
    /// GPT-2 byte-level split, `gpt2`/`default` only byte-level). Control tokens (type 3) are
    /// special tokens; `tokenizer.ggml.add_bos_token` decides whether encoding prepends BOS.
    pub fn from_gguf(g: &crate::gguf::GgufFile) -> Result<Self> {
        let bad = |reason: String| LmError::BadFile { path: g.path().into(), reason: format!("GGUF tokenizer: {reason}") };
        let model = g.meta("tokenizer.ggml.model")?.as_str().unwrap_or_default();
        if model != "gpt2" {
            return Err(bad(format!("tokenizer model `{model}` is not supported (only byte-level BPE, `gpt2`)")));
        }
        let tokens = g.meta_strings("tokenizer.ggml.tokens")?;
        let merges = g.meta_strings("tokenizer.ggml.merges")?;
        let types: Vec<i64> = match g.meta("tokenizer.ggml.token_type") {
            Ok(crate::gguf::GgufValue::Array(v)) => v.iter().map(|t| t.as_f64().unwrap_or(1.0) as i64).collect(),
            _ => vec![1; tokens.len()],
        };
        let pre = g.metadata.get("tokenizer.ggml.pre").and_then(|v| v.as_str()).unwrap_or("default");
        let byte_level = serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
        let pre_tokenizer = match pre {
            "smollm" => serde_json::json!({"type": "Sequence", "pretokenizers": [{"type": "Digits", "individual_digits": true}, byte_level]}),
            "gpt2" | "default" => byte_level.clone(),
            other => return Err(bad(format!("pre-tokenizer `{other}` is not supported (smollm, gpt2)"))),
        };
        let bos = g.metadata.get("tokenizer.ggml.bos_token_id").and_then(|v| v.as_u64());
        let add_bos = matches!(g.metadata.get("tokenizer.ggml.add_bos_token"), Some(crate::gguf::GgufValue::Bool(true)));
        let mut vocab = serde_json::Map::with_capacity(tokens.len());
        for (i, t) in tokens.iter().enumerate() {
            vocab.insert((*t).to_string(), i.into());
        }
        let added: Vec<serde_json::Value> = tokens
            .iter()
            .enumerate()
            .filter(|(i, _)| types.get(*i) == Some(&3))
            .map(|(i, t)| serde_json::json!({"id": i, "content": t, "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}))
            .collect();
        let post = match (add_bos, bos) {
            (true, Some(b)) => {
                let t = tokens.get(b as usize).ok_or_else(|| bad(format!("bos_token_id {b} is outside the vocabulary")))?;
                let mut special = serde_json::Map::new();
                special.insert((*t).to_string(), serde_json::json!({"id": t, "ids": [b], "tokens": [t]}));
                serde_json::json!({"type": "TemplateProcessing", "single": [{"SpecialToken": {"id": t, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}],
                    "pair": [{"SpecialToken": {"id": t, "type_id": 0}}, {"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
                    "special_tokens": special})
            }
            _ => serde_json::json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true}),
        };
        let json = serde_json::json!({
            "version": "1.0", "truncation": null, "padding": null, "added_tokens": added, "normalizer": null,
            "pre_tokenizer": pre_tokenizer, "post_processor": post,
            "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true},
            "model": {"type": "BPE", "dropout": null, "unk_token": null, "continuing_subword_prefix": null, "end_of_word_suffix": null,
                "fuse_unk": false, "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": merges},
        });
        let bytes = serde_json::to_vec(&json).map_err(|e| bad(e.to_string()))?;
        Self::from_json_bytes(&bytes, g.path())
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

    /// The text one token stands for, as the tokenizer's own decoder writes it: byte-level
    /// tokens (`Ġthe`, `Ã©`) become their bytes read as UTF-8 (` the`, `é`; a token holding part
    /// of a character shows U+FFFD), special tokens their name. Falls back to the vocabulary
    /// string.
    pub fn token_text(&self, id: u32) -> String {
        self.inner.decode(&[id], false).ok().filter(|t| !t.is_empty()).unwrap_or_else(|| self.token(id))
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
