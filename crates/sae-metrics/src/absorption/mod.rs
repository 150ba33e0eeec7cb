//! Feature absorption on a real model: the first-letter task of Chanin et al. (2024), "A is for
//! Absorption", as SAEBench's `evals/absorption` computes it.
//!
//! Words are single tokens made of letters; each is shown at the end of a few-shot prompt
//! ("{word} has the first letter:" with ten solved examples before it) and the model's
//! activation at the word is read (the prompts and activations come from the model source,
//! `sae_lm::first_letter`). Then, with the words split into train and test:
//! 1. a 26-way one-vs-rest logistic probe on the activations gives each letter's ground-truth
//!    direction ([`probe`]); a letter counts when its test F1 exceeds `min_probe_f1` (0.6);
//! 2. k-sparse probes on the SAE's latents find each letter's main (split) latents ([`letters`]);
//! 3. for every test word of the letter on which the ground-truth probe fires, the word is shown
//!    again in a fresh prompt and [`calculator::word_absorption`] says how much of the probe's
//!    projection is carried by other latents aligned with the probe instead of the main ones;
//! 4. per letter, the mean absorption fraction and the full-absorption rate over those words;
//!    over letters, their means and sample standard deviations, and the mean number of split
//!    latents. SAEBench requires 20 letters to pass; the report states how many did.
//!
//! Every step is cross-checked against SAEBench's own code (`fixtures/generate_absorption.py`).

pub mod calculator;
pub mod letters;
pub mod logistic;
pub mod probe;
pub mod rows;

use burn::tensor::{Tensor, TensorData};
use sae_core::params::host_f32;
use sae_core::{Result, Sae, SaeError};
use serde::Serialize;

use self::calculator::{AbsorptionThresholds, WordAbsorption, word_absorption};
use self::letters::{BinaryScores, KSparseProbe, KSparseScores, k_sparse_probes, split_latents};
use self::probe::{LinearProbe, ProbeTraining, train_probe};
use self::rows::{DenseRows, FeatureRows, SparseRows};

/// The 26 letters, class `i` being `LETTERS[i]`.
pub const LETTERS: &str = "abcdefghijklmnopqrstuvwxyz";

/// Words with their letter class and the model's activation at each.
#[derive(Debug, Clone, PartialEq)]
pub struct LetterData {
    /// The words (as the tokenizer writes them, leading space included).
    pub words: Vec<String>,
    /// The class (0 = `a`, ..., 25 = `z`) of each word's first letter.
    pub letters: Vec<usize>,
    /// One activation row per word.
    pub activations: DenseRows,
}

impl LetterData {
    fn check(&self, what: &str) -> Result<()> {
        if self.words.len() != self.letters.len() || self.words.len() != self.activations.len() {
            return Err(SaeError::Unsupported(format!(
                "{what}: {} words, {} letters and {} activation rows must be as many",
                self.words.len(),
                self.letters.len(),
                self.activations.len()
            )));
        }
        if let Some(bad) = self.letters.iter().find(|&&l| l >= 26) {
            return Err(SaeError::Unsupported(format!("{what}: letter class {bad} is not one of the 26 letters")));
        }
        Ok(())
    }
}

/// The settings of the first-letter absorption eval (SAEBench's defaults in [`Default`]).
#[derive(Debug, Clone, PartialEq)]
pub struct AbsorptionSettings {
    /// Training of the ground-truth letter probe.
    pub probe: ProbeTraining,
    /// Training of the L1 probe on latents that ranks them for the k-sparse probes.
    pub latent_probe: ProbeTraining,
    /// Largest k of the k-sparse probes (10).
    pub max_k: usize,
    /// F1 gain that counts as feature splitting (0.03).
    pub f1_jump: f64,
    /// Least test F1 of the ground-truth probe for a letter to count (0.6).
    pub min_probe_f1: f64,
    /// Letters SAEBench requires to pass before it reports absorption (20).
    pub min_letters: usize,
    /// The calculator's thresholds.
    pub thresholds: AbsorptionThresholds,
    /// Rows per SAE encoding batch.
    pub batch_size: usize,
}

impl AbsorptionSettings {
    /// SAEBench's settings, with `seed` for the probes' initialisation and shuffling.
    pub fn saebench(seed: u64) -> Self {
        Self {
            probe: ProbeTraining::letter_probe(seed),
            latent_probe: ProbeTraining::sparse_latent_probe(seed.wrapping_add(1)),
            max_k: 10,
            f1_jump: 0.03,
            min_probe_f1: 0.6,
            min_letters: 20,
            thresholds: AbsorptionThresholds::default(),
            batch_size: 1024,
        }
    }
}

/// One letter's results.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LetterAbsorption {
    /// The letter.
    pub letter: char,
    /// Training words starting with it.
    pub train_words: usize,
    /// Test words starting with it.
    pub test_words: usize,
    /// The ground-truth probe on the test words (logit > 0).
    pub probe: BinaryScores,
    /// Whether the probe's F1 passed `min_probe_f1`.
    pub passed: bool,
    /// The k-sparse probes' test scores, k = 1, 2, ...
    pub k_sparse: Vec<KSparseScores>,
    /// The split (main) latents.
    pub split_latents: Vec<u32>,
    /// Test words of the letter on which the probe fires.
    pub probe_true_positives: usize,
    /// Of those, the words on which the split latents' k-sparse probe fires too.
    pub split_true_positives: usize,
    /// Mean absorption fraction over the probe's true positives (letters that passed).
    pub mean_absorption_fraction: Option<f64>,
    /// Fraction of them fully absorbed (letters that passed).
    pub full_absorption_rate: Option<f64>,
    /// How many of them were fully absorbed.
    pub full_absorptions: usize,
}

/// One word's absorption.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct WordResult {
    /// The word.
    pub word: String,
    /// Its letter.
    pub letter: char,
    /// The calculator's findings.
    #[serde(flatten)]
    pub absorption: WordAbsorption,
}

/// The first-letter absorption report (the `absorption` key of `sae eval`'s JSON).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AbsorptionReport {
    /// Mean over passing letters of the mean absorption fraction.
    pub mean_absorption_fraction: Option<f64>,
    /// Mean over passing letters of the full-absorption rate.
    pub mean_full_absorption_rate: Option<f64>,
    /// Mean number of split latents over passing letters.
    pub mean_split_latents: Option<f64>,
    /// Sample standard deviations of the three over letters.
    pub std_absorption_fraction: Option<f64>,
    /// See `std_absorption_fraction`.
    pub std_full_absorption_rate: Option<f64>,
    /// See `std_absorption_fraction`.
    pub std_split_latents: Option<f64>,
    /// Letters whose ground-truth probe passed (and that had true positives).
    pub letters_passed: usize,
    /// Letters SAEBench requires ([`AbsorptionSettings::min_letters`]).
    pub letters_required: usize,
    /// Whether as many letters passed as SAEBench requires to report absorption at all.
    pub enough_letters: bool,
    /// Training and test words.
    pub train_words: usize,
    /// See `train_words`.
    pub test_words: usize,
    /// Per letter, `a` to `z`.
    pub letters: Vec<LetterAbsorption>,
    /// Per word scored (true positives of passing letters).
    pub words: Vec<WordResult>,
}

/// Stages of [`evaluate_absorption`], for progress.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Training the ground-truth probe (epochs).
    LetterProbe,
    /// Training the L1 probe on latents (epochs).
    LatentProbe,
    /// Fitting the k-sparse probes (letters).
    KSparse,
}

/// The whole eval: trains the ground-truth probe and the k-sparse probes on `train`, then
/// [`evaluate_with_probes`]. `reprompt` returns the activations of words shown in fresh prompts.
pub fn evaluate_absorption(sae: &dyn Sae, train: &LetterData, test: &LetterData, s: &AbsorptionSettings, reprompt: &mut dyn FnMut(&[String]) -> Result<DenseRows>, progress: &mut dyn FnMut(Stage, usize, usize)) -> Result<AbsorptionReport> {
    train.check("the training words")?;
    let probe = train_probe(&train.activations, &train.letters, 26, &s.probe, |a, b| progress(Stage::LetterProbe, a, b))?;
    let codes = encode_rows(sae, &train.activations, s.batch_size)?;
    let l1 = train_probe(&codes, &train.letters, 26, &s.latent_probe, |a, b| progress(Stage::LatentProbe, a, b))?;
    let k_sparse = k_sparse_probes(&l1, &codes, &train.letters, s.max_k)?;
    progress(Stage::KSparse, 26, 26);
    let mut train_counts = [0usize; 26];
    train.letters.iter().for_each(|&l| train_counts[l] += 1);
    let mut report = evaluate_with_probes(sae, &probe, &k_sparse, test, s, reprompt)?;
    for (r, n) in report.letters.iter_mut().zip(train_counts) {
        r.train_words = n;
    }
    report.train_words = train.words.len();
    Ok(report)
}

/// The eval with given probes: the ground-truth `probe` (26 classes) and the k-sparse probes of
/// each letter (`[letter][k − 1]`, as [`k_sparse_probes`] makes them), on the test words.
pub fn evaluate_with_probes(sae: &dyn Sae, probe: &LinearProbe, k_sparse: &[Vec<KSparseProbe>], test: &LetterData, s: &AbsorptionSettings, reprompt: &mut dyn FnMut(&[String]) -> Result<DenseRows>) -> Result<AbsorptionReport> {
    test.check("the test words")?;
    let d = test.activations.dim();
    if probe.d != d || probe.classes() != 26 || k_sparse.len() != 26 || sae.config().d_in != d {
        return Err(SaeError::Unsupported(format!(
            "absorption: activations of width {d}, a probe of {} classes on width {}, {} letters of k-sparse probes, an SAE on width {}",
            probe.classes(),
            probe.d,
            k_sparse.len(),
            sae.config().d_in
        )));
    }
    let n_lat = sae.config().d_sae;
    for (c, probes) in k_sparse.iter().enumerate() {
        if let Some(p) = probes.iter().find(|p| p.latents.len() != p.model.coef.len() || p.latents.iter().any(|&j| j as usize >= n_lat)) {
            return Err(SaeError::Unsupported(format!("absorption: a k-sparse probe of letter {c} reads latents {:?} with {} coefficients, of an SAE with {n_lat} latents", p.latents, p.model.coef.len())));
        }
    }
    let codes = encode_rows(sae, &test.activations, s.batch_size)?;
    let logits = probe.logits(&test.activations);
    let mut letters = Vec::with_capacity(26);
    let mut positives: Vec<Vec<usize>> = Vec::with_capacity(26);
    for (c, ch) in LETTERS.chars().enumerate() {
        let truth: Vec<bool> = test.letters.iter().map(|&l| l == c).collect();
        let fires: Vec<bool> = (0..test.words.len()).map(|i| logits[i * 26 + c] > 0.0).collect();
        let scores = BinaryScores::of(fires.iter().copied(), truth.iter().copied());
        let ks: Vec<KSparseScores> = k_sparse[c]
            .iter()
            .map(|p| KSparseScores { k: p.latents.len(), latents: p.latents.clone(), scores: BinaryScores::of((0..codes.len()).map(|i| p.decision(&codes, i) > 0.0), truth.iter().copied()) })
            .collect();
        let split = split_latents(&ks, s.f1_jump);
        let tp: Vec<usize> = (0..truth.len()).filter(|&i| truth[i] && fires[i]).collect();
        let split_tp = match k_sparse[c].get(split.len().wrapping_sub(1)) {
            Some(p) => tp.iter().filter(|&&i| p.decision(&codes, i) > 0.0).count(),
            None => 0,
        };
        letters.push(LetterAbsorption {
            letter: ch,
            train_words: 0,
            test_words: truth.iter().filter(|&&t| t).count(),
            probe: scores,
            passed: scores.f1 > s.min_probe_f1,
            k_sparse: ks,
            split_latents: split,
            probe_true_positives: tp.len(),
            split_true_positives: split_tp,
            mean_absorption_fraction: None,
            full_absorption_rate: None,
            full_absorptions: 0,
        });
        positives.push(tp);
    }
    // Only the letters that passed are scored: the others never enter SAEBench's means.
    let scored: Vec<(usize, usize)> = (0..26).filter(|&c| letters[c].passed).flat_map(|c| positives[c].iter().map(move |&i| (c, i))).collect();
    let words: Vec<String> = scored.iter().map(|&(_, i)| test.words[i].clone()).collect();
    let mut results = Vec::with_capacity(scored.len());
    if !words.is_empty() {
        let acts = reprompt(&words)?;
        if acts.len() != words.len() || acts.dim() != d {
            return Err(SaeError::Unsupported(format!("absorption: {} re-prompted rows of width {} for {} words of width {d}", acts.len(), acts.dim(), words.len())));
        }
        let word_codes = encode_dense(sae, &acts, s.batch_size)?;
        let decoder = host_f32(sae.params().matrix("W_dec")?.into_data())?;
        if decoder.len() != n_lat * d {
            return Err(SaeError::Unsupported(format!("absorption needs decoder rows in the activations' space (width {d}): W_dec holds {} values for {n_lat} latents (a transcoder?)", decoder.len())));
        }
        let mut cos_cache: Vec<Option<(Vec<f32>, Vec<f32>)>> = vec![None; 26];
        for (w, &(c, _)) in scored.iter().enumerate() {
            let (unit, cos) = cos_cache[c].get_or_insert_with(|| probe_cosines(probe.class_weights(c), &decoder, n_lat));
            let x = acts.row(w);
            let projection = x.dot(unit);
            let main = &letters[c].split_latents;
            let a = word_absorption(&word_codes[w * n_lat..(w + 1) * n_lat], cos, projection, main, &s.thresholds);
            results.push(WordResult { word: words[w].clone(), letter: letters[c].letter, absorption: a });
        }
    }
    for (c, l) in letters.iter_mut().enumerate() {
        let mine: Vec<&WordResult> = results.iter().filter(|r| r.letter == LETTERS.as_bytes()[c] as char).collect();
        if !l.passed || mine.is_empty() {
            continue;
        }
        l.full_absorptions = mine.iter().filter(|r| r.absorption.full_absorption).count();
        l.mean_absorption_fraction = Some(mine.iter().map(|r| r.absorption.absorption_fraction as f64).sum::<f64>() / mine.len() as f64);
        l.full_absorption_rate = Some(l.full_absorptions as f64 / mine.len() as f64);
    }
    let counted: Vec<&LetterAbsorption> = letters.iter().filter(|l| l.mean_absorption_fraction.is_some()).collect();
    let stat = |f: &dyn Fn(&LetterAbsorption) -> f64| mean_and_std(&counted.iter().map(|l| f(l)).collect::<Vec<_>>());
    let (fraction, fraction_std) = stat(&|l| l.mean_absorption_fraction.unwrap_or(0.0));
    let (full, full_std) = stat(&|l| l.full_absorption_rate.unwrap_or(0.0));
    let (split, split_std) = stat(&|l| l.split_latents.len() as f64);
    Ok(AbsorptionReport {
        mean_absorption_fraction: fraction,
        mean_full_absorption_rate: full,
        mean_split_latents: split,
        std_absorption_fraction: fraction_std,
        std_full_absorption_rate: full_std,
        std_split_latents: split_std,
        letters_passed: counted.len(),
        letters_required: s.min_letters,
        enough_letters: counted.len() >= s.min_letters,
        train_words: 0,
        test_words: test.words.len(),
        letters,
        words: results,
    })
}

/// The unit probe direction and each latent's decoder cosine with it (as
/// `torch.nn.functional.cosine_similarity`, norms floored at 1e-8).
fn probe_cosines(w: &[f32], decoder: &[f32], n: usize) -> (Vec<f32>, Vec<f32>) {
    let d = w.len();
    let norm = w.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
    let unit: Vec<f32> = w.iter().map(|v| v / norm).collect();
    let cos = (0..n)
        .map(|i| {
            let row = &decoder[i * d..(i + 1) * d];
            let rn = row.iter().map(|v| v * v).sum::<f32>().sqrt();
            row.iter().zip(&unit).map(|(a, b)| a * b).sum::<f32>() / rn.max(1e-8)
        })
        .collect();
    (unit, cos)
}

/// Mean and sample standard deviation (`statistics.mean`/`stdev`); `None` where undefined.
fn mean_and_std(v: &[f64]) -> (Option<f64>, Option<f64>) {
    if v.is_empty() {
        return (None, None);
    }
    let m = v.iter().sum::<f64>() / v.len() as f64;
    let s = (v.len() > 1).then(|| (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / (v.len() - 1) as f64).sqrt());
    (Some(m), s)
}

/// The SAE's codes of `rows`, dense on the host, `[n, d_sae]`.
fn encode_dense(sae: &dyn Sae, rows: &DenseRows, batch: usize) -> Result<Vec<f32>> {
    let (d, device) = (rows.dim(), sae.device());
    let mut out = Vec::with_capacity(rows.len() * sae.config().d_sae);
    for chunk in rows.data().chunks(batch.max(1) * d) {
        let x = Tensor::<2>::from_data(TensorData::new(chunk.to_vec(), [chunk.len() / d, d]), &device);
        out.extend(host_f32(sae.encode(x)?.to_dense().into_data())?);
    }
    if out.iter().any(|v| !v.is_finite()) {
        return Err(SaeError::Unsupported("the SAE's codes hold NaN or infinite values".into()));
    }
    Ok(out)
}

/// The SAE's codes of `rows`, sparse.
pub fn encode_rows(sae: &dyn Sae, rows: &DenseRows, batch: usize) -> Result<SparseRows> {
    let mut out = SparseRows::new(sae.config().d_sae);
    let d = rows.dim();
    for start in (0..rows.len()).step_by(batch.max(1)) {
        let end = (start + batch.max(1)).min(rows.len());
        let part = DenseRows::new(d, rows.data()[start * d..end * d].to_vec())?;
        out.push_dense(&encode_dense(sae, &part, batch)?)?;
    }
    Ok(out)
}
