//! Greedy generation with a causal model, hooks (interventions, steering) applied at every
//! step, and the next-token losses the downstream-loss metrics are built on.

use burn::tensor::activation::log_softmax;
use burn::tensor::{Int, Tensor, TensorData};
use sae_core::hooks::Hooks;

use crate::error::{LmError, Result};
use crate::model::{KvCache, LanguageModel};

fn causal(model: &dyn LanguageModel) -> Result<()> {
    if model.is_causal() {
        Ok(())
    } else {
        Err(LmError::Input(format!("{} is not a causal language model: it has no next-token logits", model.name())))
    }
}

fn argmax(logits: Tensor<1>) -> Result<u32> {
    let v = logits.argmax(0).into_data().convert::<i64>().try_to_vec::<i64>().map_err(|e| LmError::Input(format!("reading logits: {e:?}")))?;
    Ok(v[0] as u32)
}

/// Greedy continuation of `prompt` (token ids): up to `max_tokens` new tokens, stopping after
/// the end-of-sequence token or at the context length. Returns the new tokens only. Uses the
/// model's key/value cache where it has one (each step runs one token; `hooks` see the prompt
/// once, then each new position), else recomputes the sequence every step
/// ([`generate_greedy_uncached`]); for position-wise hooks (splicing, feature edits, steering)
/// both give the same tokens.
pub fn generate_greedy(model: &dyn LanguageModel, prompt: &[u32], max_tokens: usize, hooks: &mut dyn Hooks) -> Result<Vec<u32>> {
    causal(model)?;
    if prompt.is_empty() {
        return Err(LmError::Input("the prompt has no tokens".into()));
    }
    let mut cache = KvCache::default();
    let mut out = Vec::with_capacity(max_tokens);
    if max_tokens == 0 || prompt.len() >= model.max_positions() {
        return Ok(out);
    }
    let Some(first) = model.next_logits_cached(prompt, &mut cache, hooks) else {
        return generate_greedy_uncached(model, prompt, max_tokens, hooks);
    };
    let mut next = argmax(first?)?;
    loop {
        out.push(next);
        if Some(next) == model.eos_token() || out.len() == max_tokens || cache.len() + 1 >= model.max_positions() {
            return Ok(out);
        }
        let logits = model.next_logits_cached(&[next], &mut cache, hooks).ok_or_else(|| LmError::Input(format!("{} stopped offering its key/value cache", model.name())))??;
        next = argmax(logits)?;
    }
}

/// [`generate_greedy`] without a cache: the whole sequence is recomputed each step, so
/// `hooks` see every position every step.
pub fn generate_greedy_uncached(model: &dyn LanguageModel, prompt: &[u32], max_tokens: usize, hooks: &mut dyn Hooks) -> Result<Vec<u32>> {
    causal(model)?;
    if prompt.is_empty() {
        return Err(LmError::Input("the prompt has no tokens".into()));
    }
    let mut ids = prompt.to_vec();
    let mut out = Vec::with_capacity(max_tokens);
    while out.len() < max_tokens && ids.len() < model.max_positions() {
        let logits = model.forward(std::slice::from_ref(&ids), hooks)?;
        let [_, s, v] = logits.dims();
        let next = argmax(logits.slice([0..1, s - 1..s, 0..v]).reshape([v]))?;
        ids.push(next);
        out.push(next);
        if Some(next) == model.eos_token() {
            break;
        }
    }
    Ok(out)
}

/// Per-token next-token losses of one forward pass over `ids` `[batch][pos]` (equal lengths):
/// `nll[b][p] = −log p(ids[b][p+1] | ids[b][..=p])` and, for the KL divergence against a
/// reference, the log-probabilities `[batch, pos − 1, vocab]`.
pub struct NextTokenLoss {
    /// `[batch, pos − 1]` negative log-likelihoods, row-major.
    pub nll: Vec<f32>,
    /// Log-probabilities of every next token `[batch, pos − 1, vocab]`.
    pub log_probs: Tensor<3>,
}

impl std::fmt::Debug for NextTokenLoss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NextTokenLoss").field("tokens", &self.nll.len()).finish()
    }
}

impl NextTokenLoss {
    /// Mean NLL over all predicted tokens.
    pub fn mean_nll(&self) -> f64 {
        self.nll.iter().map(|&v| v as f64).sum::<f64>() / self.nll.len().max(1) as f64
    }

    /// Mean over positions of `KL(reference ‖ self)` = Σ p_ref (log p_ref − log p_self).
    pub fn kl_from(&self, reference: &NextTokenLoss) -> Result<f64> {
        let (a, b) = (reference.log_probs.dims(), self.log_probs.dims());
        if a != b {
            return Err(LmError::Input(format!("KL between runs of different shapes {a:?} and {b:?}")));
        }
        let kl = (reference.log_probs.clone().exp() * (reference.log_probs.clone() - self.log_probs.clone())).sum_dim(2).mean();
        let v = kl.into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| LmError::Input(format!("reading the KL divergence: {e:?}")))?;
        Ok(v[0] as f64)
    }
}

/// Runs `ids` through a causal model with `hooks` and returns the next-token losses.
pub fn next_token_loss(model: &dyn LanguageModel, ids: &[Vec<u32>], hooks: &mut dyn Hooks) -> Result<NextTokenLoss> {
    causal(model)?;
    let logits = model.forward(ids, hooks)?;
    let [b, s, v] = logits.dims();
    if s < 2 {
        return Err(LmError::Input("next-token losses need at least 2 tokens per sequence".into()));
    }
    let log_probs = log_softmax(logits.slice([0..b, 0..s - 1, 0..v]), 2);
    let targets: Vec<i64> = ids.iter().flat_map(|r| r[1..].iter().map(|&t| t as i64)).collect();
    let targets = Tensor::<3, Int>::from_data(TensorData::new(targets, [b, s - 1, 1]), &log_probs.device());
    let picked = log_probs.clone().gather(2, targets).neg();
    let nll = picked.into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| LmError::Input(format!("reading losses: {e:?}")))?;
    Ok(NextTokenLoss { nll, log_probs })
}
