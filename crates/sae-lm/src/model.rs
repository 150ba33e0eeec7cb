//! What every language model of this crate offers beyond a [`HookedModel`]: tokenisation, the
//! framing of an input, a key/value cache.

use burn::tensor::Tensor;
use sae_core::hooks::Hooks;
use sae_core::{HookedModel, RowMeta, SaeError};

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

/// A language model: a [`HookedModel`] whose input is token ids `[batch][pos]` (equal lengths)
/// and whose output is the final hidden states `[batch, pos, d_model]` (encoders) or the logits
/// `[batch, pos, vocab]` (decoders), with what only text models have: a tokenizer, the framing
/// of an input by special tokens, a key/value cache and generation.
pub trait LanguageModel: HookedModel<Input = [Vec<u32>], Output = Tensor<3>> {
    /// Width of the residual stream.
    fn d_model(&self) -> usize;
    /// Number of transformer blocks.
    fn n_layers(&self) -> usize;
    /// Longest input, in tokens.
    fn max_positions(&self) -> usize;
    /// The model's tokenizer.
    fn tokenizer(&self) -> &TextTokenizer;

    /// How many special tokens frame one input: `(before, after)` (`(1, 1)` for BERT's
    /// `[CLS] … [SEP]`, `(1, 0)` for a decoder's `<BOS> …`).
    fn frame_lengths(&self) -> (usize, usize);
    /// `body` (text tokens) framed as the model frames one input.
    fn frame(&self, body: &[u32]) -> Vec<u32>;

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

    /// Whether the model is a causal (next-token) language model whose
    /// [`HookedModel::forward`] returns logits.
    fn is_causal(&self) -> bool {
        false
    }

    /// The end-of-sequence token that stops generation, if the model has one.
    fn eos_token(&self) -> Option<u32> {
        None
    }

    /// Token ids of `text` as the model's own tokenizer configuration adds special tokens.
    fn tokenize(&self, text: &str) -> Result<Vec<u32>> {
        self.tokenizer().encode(text, true)
    }
}

/// The block a hook point belongs to (`blocks.3.…` → 3); `None` for hooks outside the blocks.
pub fn hook_block(hook: &str) -> Option<usize> {
    hook.strip_prefix("blocks.")?.split_once('.')?.0.parse().ok()
}

/// How many blocks of a `blocks`-block model must run for `hook` to be called: up to its own
/// block, or all of them for hooks outside the blocks.
pub(crate) fn blocks_for(hook: &str, blocks: usize) -> usize {
    hook_block(hook).map_or(blocks, |i| (i + 1).min(blocks))
}

/// The [`RowMeta`] of the rows at `hook` of a text model for token ids `ids` whose first window
/// is window `first` of a harvest: one row per token, in order. Hooks whose rows are not tokens
/// (attention patterns, with no fixed width) are an error.
pub(crate) fn token_rows<M: HookedModel + ?Sized>(model: &M, ids: &[Vec<u32>], hook: &str, first: u64) -> sae_core::Result<Vec<RowMeta>> {
    if model.hook_width(hook).is_none() {
        return Err(SaeError::Unsupported(format!("the rows of {hook} are not tokens")));
    }
    let mut out = Vec::with_capacity(ids.iter().map(Vec::len).sum());
    for (w, seq) in ids.iter().enumerate() {
        let window = u32::try_from(first + w as u64).map_err(|_| SaeError::Unsupported(format!("window {} is past the 2^32 windows a store can number", first + w as u64)))?;
        out.extend(seq.iter().enumerate().map(|(pos, &id)| RowMeta::Token { id, pos: pos as u32, window }));
    }
    Ok(out)
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

/// The [`HookedModel`] methods every text model of this crate shares, for a type with
/// `forward_lm` (the whole model), `forward_blocks` (the first blocks only) and a `blocks` field:
/// `forward`, `forward_to` (only the blocks a hook needs), `batch_len`, and `row_meta` (one token
/// per row). Use inside `impl HookedModel for ...`.
macro_rules! text_forward_methods {
    () => {
        fn forward(&self, ids: &[Vec<u32>], hooks: &mut dyn sae_core::hooks::Hooks) -> sae_core::Result<burn::tensor::Tensor<3>> {
            Ok(self.forward_lm(ids, hooks)?)
        }

        fn forward_to(&self, ids: &[Vec<u32>], hooks: &mut dyn sae_core::hooks::Hooks, hook: &str) -> sae_core::Result<()> {
            let blocks = $crate::model::blocks_for(hook, self.blocks.len());
            if blocks == self.blocks.len() {
                self.forward_lm(ids, hooks)?;
            } else {
                self.forward_blocks(ids, hooks, blocks)?;
            }
            Ok(())
        }

        fn batch_len(&self, ids: &[Vec<u32>]) -> usize {
            ids.len()
        }

        fn row_meta(&self, ids: &[Vec<u32>], hook: &str, first_sample: u64) -> sae_core::Result<Vec<sae_core::RowMeta>> {
            $crate::model::token_rows(self, ids, hook, first_sample)
        }
    };
}
pub(crate) use text_forward_methods;
