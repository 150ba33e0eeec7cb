//! The text side of the first-letter absorption task (SAEBench `evals/absorption`: `vocab.py`,
//! `prompting.py`, `probing.py`): the words, the few-shot prompts, and the model's activation at
//! each word. The probes and the absorption itself are `sae_metrics::absorption`.
//!
//! - **Words**: every vocabulary token whose text, after at most one leading space, is ASCII
//!   letters only (`get_alpha_tokens`).
//! - **Split**: the words shuffled by the seed, the first 80 % for training, the rest for testing;
//!   a cap on the words takes the first of each part (the few-shot examples still come from the
//!   whole part, as SAEBench draws them).
//! - **Prompt**: ten other words of the same part, each as `"{word} has the first letter: X"`
//!   (X its first letter, upper case), one per line after a leading newline, then the word's own
//!   `"{word} has the first letter:"` (`create_icl_prompt` with `prepend_separator_to_first_example`).
//! - **Activation**: the hook's row at position `len − 6` of the prompt's tokens, the word itself
//!   under SAEBench's template (`prompt_token_pos = −6`). The prompt is framed as the model frames
//!   one input (SmolLM2's GGUF adds no BOS; TransformerLens would prepend one).

use burn::tensor::Tensor;
use sae_core::hooks::{Capture, HookTensor};
use sae_core::rng::SplitMix64;

use crate::error::{LmError, Result};
use crate::model::LanguageModel;
use crate::tokenizer::TextTokenizer;

/// How prompts are made and read.
#[derive(Debug, Clone, PartialEq)]
pub struct PromptSettings {
    /// The template, with `{word}` where the word goes.
    pub template: String,
    /// Solved examples before the word.
    pub examples: usize,
    /// Position of the word's token counted from the end (negative).
    pub token_pos: isize,
    /// Prompts per forward pass.
    pub batch: usize,
}

impl Default for PromptSettings {
    fn default() -> Self {
        Self { template: "{word} has the first letter:".into(), examples: 10, token_pos: -6, batch: 32 }
    }
}

/// The words of the task, split.
#[derive(Debug, Clone, PartialEq)]
pub struct WordSplit {
    /// Training words (after the cap).
    pub train: Vec<String>,
    /// Test words (after the cap).
    pub test: Vec<String>,
    /// The whole training part, where its prompts' examples come from.
    pub train_pool: Vec<String>,
    /// The whole test part, where its prompts' examples come from.
    pub test_pool: Vec<String>,
    /// Every word, where the examples of re-prompted words come from.
    pub all: Vec<String>,
}

/// Every token whose text is letters with at most one leading space (special tokens excluded).
pub fn alpha_words(tokenizer: &TextTokenizer) -> Vec<String> {
    (0..tokenizer.vocab_size() as u32)
        .map(|id| tokenizer.token_text(id))
        .filter(|t| {
            let body = t.strip_prefix(' ').unwrap_or(t);
            !body.is_empty() && body.bytes().all(|b| b.is_ascii_alphabetic())
        })
        .collect()
}

/// The class (0 = a … 25 = z) of a word's first letter, spaces and other characters skipped.
pub fn letter_class(word: &str) -> Option<usize> {
    word.chars().find(|c| c.is_ascii_alphabetic()).map(|c| (c.to_ascii_lowercase() as u8 - b'a') as usize)
}

/// Splits `words` 80/20 after a seeded shuffle; `max_words` caps train + test (the same 80/20).
pub fn split_words(words: &[String], max_words: Option<usize>, seed: u64) -> WordSplit {
    let mut shuffled = words.to_vec();
    let mut rng = SplitMix64::new(seed);
    for i in (1..shuffled.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        shuffled.swap(i, j);
    }
    let cut = shuffled.len() * 4 / 5;
    let test_pool = shuffled.split_off(cut);
    let train_pool = shuffled;
    let cap = max_words.unwrap_or(usize::MAX);
    let n_train = train_pool.len().min(cap.saturating_mul(4) / 5);
    let n_test = test_pool.len().min(cap - cap.saturating_mul(4) / 5);
    WordSplit { train: train_pool[..n_train].to_vec(), test: test_pool[..n_test].to_vec(), train_pool, test_pool, all: words.to_vec() }
}

/// The few-shot prompt of `word` with examples drawn from `pool` (never the word itself).
pub fn icl_prompt(word: &str, pool: &[String], s: &PromptSettings, rng: &mut SplitMix64) -> Result<String> {
    let others = pool.iter().filter(|w| w.as_str() != word).count();
    if others < s.examples {
        return Err(LmError::Input(format!("{} words are too few for prompts of {} examples", pool.len(), s.examples)));
    }
    let mut picked: Vec<usize> = Vec::with_capacity(s.examples);
    while picked.len() < s.examples {
        let i = (rng.next_u64() % pool.len() as u64) as usize;
        if pool[i] != word && !picked.contains(&i) {
            picked.push(i);
        }
    }
    let mut text = String::from("\n");
    for &i in &picked {
        let ex = &pool[i];
        let letter = ex.chars().find(|c| c.is_ascii_alphabetic()).map(|c| c.to_ascii_uppercase()).unwrap_or('?');
        text.push_str(&s.template.replace("{word}", ex));
        text.push(' ');
        text.push(letter);
        text.push('\n');
    }
    text.push_str(&s.template.replace("{word}", word));
    Ok(text)
}

/// Prompts for `words`, examples from `pool`, drawn from one generator seeded by `seed`.
pub fn prompts(words: &[String], pool: &[String], s: &PromptSettings, seed: u64) -> Result<Vec<String>> {
    let mut rng = SplitMix64::new(seed);
    words.iter().map(|w| icl_prompt(w, pool, s, &mut rng)).collect()
}

/// The activation at `hook` of the word's position in each prompt, `[prompts, width]`
/// row-major. Prompts of equal token length run together, `s.batch` at a time.
pub fn word_activations(model: &dyn LanguageModel, hook: &str, prompts: &[String], s: &PromptSettings, mut progress: impl FnMut(usize)) -> Result<Vec<f32>> {
    let width = model.hook_width(hook).ok_or_else(|| LmError::Input(format!("the model has no hook point {hook} with rows of a fixed width")))?;
    let ids: Vec<Vec<u32>> = prompts.iter().map(|p| Ok(model.frame(&model.tokenizer().encode(p, false)?))).collect::<Result<_>>()?;
    let mut order: Vec<usize> = (0..ids.len()).collect();
    order.sort_by_key(|&i| (ids[i].len(), i));
    let mut out = vec![0f32; prompts.len() * width];
    let mut done = 0;
    for group in order.chunk_by(|&a, &b| ids[a].len() == ids[b].len()) {
        for batch in group.chunks(s.batch.max(1)) {
            let len = ids[batch[0]].len();
            let pos = len.checked_add_signed(s.token_pos).filter(|&p| p < len).ok_or_else(|| LmError::Input(format!("a prompt of {len} tokens has no position {}", s.token_pos)))?;
            let input: Vec<Vec<u32>> = batch.iter().map(|&i| ids[i].clone()).collect();
            let mut capture = Capture::new([hook]);
            model.forward_to(&input, &mut capture, hook)?;
            let Some(HookTensor::D3(t)) = capture.take(hook) else {
                return Err(LmError::Input(format!("the model did not call hook {hook}")));
            };
            let [b, _, d] = t.dims();
            let rows: Tensor<2> = t.slice([0..b, pos..pos + 1, 0..d]).reshape([b, d]);
            let v = rows.into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| LmError::Input(format!("reading activations: {e:?}")))?;
            for (k, &i) in batch.iter().enumerate() {
                out[i * width..(i + 1) * width].copy_from_slice(&v[k * d..(k + 1) * d]);
            }
            done += batch.len();
            progress(done);
        }
    }
    if out.iter().any(|v| !v.is_finite()) {
        return Err(LmError::Input(format!("the activations at {hook} hold NaN or infinite values")));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_follow_saebench_template() {
        let pool: Vec<String> = [" cat", "Dog", " ant", " bee", " eel"].iter().map(|s| s.to_string()).collect();
        let s = PromptSettings { examples: 2, ..PromptSettings::default() };
        let p = icl_prompt(" cat", &pool, &s, &mut SplitMix64::new(1)).unwrap();
        let lines: Vec<&str> = p.split('\n').collect();
        assert_eq!(lines.len(), 4, "{p:?}");
        assert_eq!(lines[0], "");
        assert!(lines[1].ends_with(" has the first letter: D") || lines[1].ends_with(" has the first letter: A") || lines[1].ends_with(" has the first letter: B") || lines[1].ends_with(" has the first letter: E"));
        assert!(!lines[1].starts_with(" cat") && !lines[2].starts_with(" cat"));
        assert_eq!(lines[3], " cat has the first letter:");
        assert_eq!(letter_class(" Zebra"), Some(25));
        let split = split_words(&pool, Some(3), 9);
        assert_eq!((split.train.len(), split.test.len(), split.train_pool.len(), split.test_pool.len()), (2, 1, 4, 1));
    }
}
