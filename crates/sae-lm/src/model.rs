//! What every language model of this crate offers: tokenisation, hook points, a forward pass
//! with hooks.

use burn::tensor::Tensor;
use sae_core::hooks::Hooks;

use crate::error::{LmError, Result};
use crate::tokenizer::TextTokenizer;

/// The keys and values of the positions a causal model has seen, per block
/// ([`LanguageModel::next_logits_cached`]).
#[derive(Debug, Clone, Default)]
pub struct KvCache {
    /// `(keys, values)` `[batch, kv_heads, positions, d_head]` per block.
    pub(crate) layers: Vec<(Tensor<4>, Tensor<4>)>,
    /// Positions seen.
    pub(crate) len: usize,
}

impl KvCache {
    /// Positions seen so far.
    pub fn len(&self) -> usize {
        self.len
    }
    /// Whether nothing has been seen yet.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// A language model with named hook points.
pub trait LanguageModel {
    /// Short name (`minilm`, `smollm2`).
    fn name(&self) -> &'static str;
    /// Width of the residual stream.
    fn d_model(&self) -> usize;
    /// Number of transformer blocks.
    fn n_layers(&self) -> usize;
    /// Longest input, in tokens.
    fn max_positions(&self) -> usize;
    /// The model's tokenizer.
    fn tokenizer(&self) -> &TextTokenizer;
    /// Every hook point, in forward order.
    fn hook_names(&self) -> Vec<String>;
    /// Runs token ids `[batch][pos]` (equal lengths) through the model, calling `hooks` at every
    /// hook point it wants. Returns the final hidden states `[batch, pos, d_model]` (encoders)
    /// or the logits `[batch, pos, vocab]` (decoders).
    fn forward(&self, ids: &[Vec<u32>], hooks: &mut dyn Hooks) -> Result<Tensor<3>>;

    /// How many special tokens frame one input: `(before, after)` (`(1, 1)` for BERT's
    /// `[CLS] … [SEP]`, `(1, 0)` for a decoder's `<BOS> …`).
    fn frame_lengths(&self) -> (usize, usize);
    /// `body` (text tokens) framed as the model frames one input.
    fn frame(&self, body: &[u32]) -> Vec<u32>;
    /// Width of the rows of [`sae_core::hooks::HookTensor::flat_rows`] at `hook` (`d_model` for
    /// the residual stream; `heads · d_head` for per-head hooks; the query length for patterns,
    /// which depends on the input and is reported as 0 here).
    fn hook_width(&self, hook: &str) -> usize;

    /// Runs only the first `blocks` transformer blocks (hooks included) and returns the residual
    /// stream after them, `[batch, pos, d_model]`: what harvesting a hook of block `blocks − 1`
    /// needs, without the rest of the model.
    fn forward_blocks(&self, ids: &[Vec<u32>], hooks: &mut dyn Hooks, blocks: usize) -> Result<Tensor<3>>;

    /// Every norm by its hook prefix (`blocks.{i}.ln1`, `ln_final`, `embed.ln`, ...), to freeze
    /// their scales for an LN-free forward ([`crate::norms`]).
    fn norms_mut(&mut self) -> Vec<(String, &mut crate::layers::Norm)>;

    /// Incremental decoding: runs the tokens `new` after the positions already in `cache`
    /// (keys and values of every block), stores theirs, and returns the logits `[vocab]` of the
    /// next token. Hooks see the new positions only, which for position-wise interventions is
    /// the same as recomputing the whole sequence. `None`: the model has no cache (encoders).
    fn next_logits_cached(&self, _new: &[u32], _cache: &mut KvCache, _hooks: &mut dyn Hooks) -> Option<Result<Tensor<1>>> {
        None
    }

    /// Whether the model is a causal (next-token) language model whose [`LanguageModel::forward`]
    /// returns logits.
    fn is_causal(&self) -> bool {
        false
    }

    /// The end-of-sequence token that stops generation, if the model has one.
    fn eos_token(&self) -> Option<u32> {
        None
    }

    /// The block a hook point belongs to (`blocks.3.…` → 3); `None` for hooks outside the blocks.
    fn hook_block(&self, hook: &str) -> Option<usize> {
        hook.strip_prefix("blocks.")?.split_once('.')?.0.parse().ok()
    }

    /// Token ids of `text` as the model's own tokenizer configuration adds special tokens.
    fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer().encode(text, true)
    }

    /// `name` if it is a hook point of this model, else [`LmError::UnknownHook`] listing them.
    fn check_hook(&self, name: &str) -> Result<()> {
        let names = self.hook_names();
        if names.iter().any(|n| n == name) {
            return Ok(());
        }
        let mut patterns: Vec<String> = Vec::new();
        for n in names {
            let p = generic_hook(&n);
            if !patterns.contains(&p) {
                patterns.push(p);
            }
        }
        Err(LmError::UnknownHook { name: name.into(), model: self.name(), valid: format!("{} (i in 0..{})", patterns.join(", "), self.n_layers()) })
    }
}

/// `blocks.3.attn.hook_q` → `blocks.{i}.attn.hook_q`.
fn generic_hook(name: &str) -> String {
    match name.strip_prefix("blocks.").and_then(|r| r.split_once('.')) {
        Some((_, rest)) => format!("blocks.{{i}}.{rest}"),
        None => name.to_string(),
    }
}

/// Checks that `ids` is a non-empty batch of equal, non-zero lengths within `max` and returns
/// `(batch, pos)`.
pub(crate) fn batch_shape(ids: &[Vec<u32>], max: usize, vocab: usize) -> Result<(usize, usize)> {
    let b = ids.len();
    let s = ids.first().map_or(0, Vec::len);
    if b == 0 || s == 0 {
        return Err(LmError::Input("no tokens to run".into()));
    }
    if ids.iter().any(|r| r.len() != s) {
        return Err(LmError::Input("the sequences of a batch must have equal lengths".into()));
    }
    if s > max {
        return Err(LmError::Input(format!("{s} tokens is longer than the model's {max} positions")));
    }
    if let Some(bad) = ids.iter().flatten().find(|&&t| t as usize >= vocab) {
        return Err(LmError::Input(format!("token id {bad} is outside the vocabulary of {vocab}")));
    }
    Ok((b, s))
}
