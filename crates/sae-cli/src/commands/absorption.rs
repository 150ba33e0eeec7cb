//! `sae eval --suite absorption`: the first-letter absorption task on a language model
//! (`sae_lm::first_letter` for the words, prompts and activations, `sae_metrics::absorption`
//! for the probes and the scores).

use std::time::Instant;

use anyhow::{Context, Result};
use sae_core::Sae;
use sae_lm::LanguageModel;
use sae_lm::first_letter::{PromptSettings, alpha_words, letter_class, prompts, split_words, word_activations};
use sae_metrics::absorption::rows::DenseRows;
use sae_metrics::absorption::{AbsorptionReport, AbsorptionSettings, LetterData, Stage, evaluate_absorption};

use crate::progress::bar;

/// Runs the task for `sae` at `hook` of `model` on at most `max_words` words (80 % train), every
/// random choice from `seed`; returns the report and the seconds each part took.
pub fn absorption_suite(sae: &dyn Sae, model: &dyn LanguageModel, hook: &str, max_words: usize, seed: u64) -> Result<(AbsorptionReport, serde_json::Value)> {
    let started = Instant::now();
    let words = alpha_words(model.tokenizer());
    if words.len() < 50 {
        anyhow::bail!("the tokenizer has only {} all-letter tokens, too few for the first-letter task", words.len());
    }
    let split = split_words(&words, Some(max_words), seed);
    let ps = PromptSettings::default();
    let activations = |list: &[String], pool: &[String], prompt_seed: u64, what: &str| -> Result<DenseRows> {
        let texts = prompts(list, pool, &ps, prompt_seed)?;
        let pb = bar(texts.len() as u64, what);
        let rows = word_activations(model, hook, &texts, &ps, |d| pb.set_position(d as u64))?;
        pb.finish_and_clear();
        Ok(DenseRows::new(model.hook_width(hook).unwrap_or(1), rows)?)
    };
    let data = |list: &[String], pool: &[String], prompt_seed: u64, what: &str| -> Result<LetterData> {
        let letters = list.iter().map(|w| letter_class(w).context("a word without a letter")).collect::<Result<Vec<_>>>()?;
        Ok(LetterData { words: list.to_vec(), letters, activations: activations(list, pool, prompt_seed, what)? })
    };
    let train = data(&split.train, &split.train_pool, seed ^ 0xA1, "train prompts")?;
    let test = data(&split.test, &split.test_pool, seed ^ 0xB2, "test prompts")?;
    let prompted = started.elapsed().as_secs_f64();
    let settings = AbsorptionSettings::saebench(seed);
    let mut reprompt_secs = 0.0;
    let mut reprompt = |list: &[String]| -> sae_core::Result<DenseRows> {
        let t = Instant::now();
        let rows = activations(list, &split.all, seed ^ 0xC3, "absorption prompts").map_err(|e| sae_core::SaeError::Unsupported(format!("{e:#}")))?;
        reprompt_secs += t.elapsed().as_secs_f64();
        Ok(rows)
    };
    let stage_bar = std::cell::RefCell::new(None::<(Stage, indicatif::ProgressBar)>);
    let mut progress = |stage: Stage, done: usize, total: usize| {
        let mut slot = stage_bar.borrow_mut();
        if slot.as_ref().map(|(s, _)| *s) != Some(stage) {
            if let Some((_, pb)) = slot.take() {
                pb.finish_and_clear();
            }
            let what = match stage {
                Stage::LetterProbe => "epochs (letter probe)",
                Stage::LatentProbe => "epochs (L1 probe on latents)",
                Stage::KSparse => "letters (k-sparse probes)",
            };
            *slot = Some((stage, bar(total as u64, what)));
        }
        if let Some((_, pb)) = slot.as_ref() {
            pb.set_position(done as u64);
        }
    };
    let report = evaluate_absorption(sae, &train, &test, &settings, &mut reprompt, &mut progress)?;
    if let Some((_, pb)) = stage_bar.borrow_mut().take() {
        pb.finish_and_clear();
    }
    let total = started.elapsed().as_secs_f64();
    let timing = serde_json::json!({
        "prompts_s": prompted,
        "probes_s": total - prompted - reprompt_secs,
        "reprompts_s": reprompt_secs,
        "total_s": total,
        "words_available": words.len(),
    });
    Ok((report, timing))
}
