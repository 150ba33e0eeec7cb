//! The first-letter absorption eval against SAEBench's own code on planted activations
//! (`fixtures/generate_absorption.py`).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use burn::tensor::Device;
use sae_core::format::load_sae;
use sae_core::format::npy::read_npy;
use sae_metrics::absorption::letters::KSparseProbe;
use sae_metrics::absorption::logistic::{Logistic, fit_balanced};
use sae_metrics::absorption::probe::LinearProbe;
use sae_metrics::absorption::rows::{DenseRows, FeatureRows};
use sae_metrics::absorption::{AbsorptionSettings, LetterData, encode_rows, evaluate_absorption, evaluate_with_probes};
use serde_json::Value;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/reference/absorption/planted")
}

fn json(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir().join(name)).unwrap()).unwrap()
}

fn rows(name: &str) -> DenseRows {
    let a = read_npy(&dir().join(format!("{name}.npy"))).unwrap();
    DenseRows::new(a.shape[1], a.values).unwrap()
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn indices(v: &Value) -> Vec<usize> {
    v.as_array().unwrap().iter().map(|s| s.as_u64().unwrap() as usize).collect()
}

struct Case {
    sae: Box<dyn sae_core::Sae>,
    train: LetterData,
    test: LetterData,
    reprompt: HashMap<String, Vec<f32>>,
    expected: Value,
}

fn case() -> Case {
    let sae = load_sae(&dir().join("sae"), &sae_arch::registry(), &Device::flex()).unwrap().sae;
    let words = json("words.json");
    let train = LetterData { words: strings(&words["train"]), letters: indices(&words["train_letters"]), activations: rows("x_train") };
    let test = LetterData { words: strings(&words["test"]), letters: indices(&words["test_letters"]), activations: rows("x_test") };
    let again = rows("x_reprompt");
    let reprompt = test.words.iter().enumerate().map(|(i, w)| (w.clone(), again.data()[i * again.dim()..(i + 1) * again.dim()].to_vec())).collect();
    Case { sae, train, test, reprompt, expected: json("expected.json") }
}

fn saebench_probe() -> LinearProbe {
    let w = read_npy(&dir().join("probe_w.npy")).unwrap();
    let b = read_npy(&dir().join("probe_b.npy")).unwrap();
    LinearProbe { d: w.shape[1], weights: w.values, bias: b.values }
}

fn saebench_k_sparse() -> Vec<Vec<KSparseProbe>> {
    json("k_sparse.json")
        .as_array()
        .unwrap()
        .iter()
        .map(|letter| {
            letter
                .as_array()
                .unwrap()
                .iter()
                .map(|p| KSparseProbe {
                    latents: indices(&p["latents"]).into_iter().map(|i| i as u32).collect(),
                    model: Logistic { coef: p["coef"].as_array().unwrap().iter().map(|c| c.as_f64().unwrap()).collect(), intercept: p["intercept"].as_f64().unwrap() },
                })
                .collect()
        })
        .collect()
}

fn close(a: f64, b: f64, tol: f64, what: &str) {
    assert!((a - b).abs() <= tol, "{what}: ours {a}, SAEBench {b}");
}

#[test]
fn absorption_matches_saebench_given_its_probes() {
    let c = case();
    let s = AbsorptionSettings::saebench(0);
    let mut reprompt = |words: &[String]| DenseRows::new(c.test.activations.dim(), words.iter().flat_map(|w| c.reprompt[w].clone()).collect());
    let r = evaluate_with_probes(c.sae.as_ref(), &saebench_probe(), &saebench_k_sparse(), &c.test, &s, &mut reprompt).unwrap();
    let e = &c.expected;
    // Deterministic given the probes: the same discrete choices, fractions within 1e-3 (f32
    // projections of 48-wide rows differ from torch's by far less).
    for (ours, theirs) in r.letters.iter().zip(e["letters"].as_array().unwrap()) {
        let l = ours.letter;
        close(ours.probe.f1, theirs["f1_probe"].as_f64().unwrap(), 1e-9, &format!("{l}: probe F1"));
        for (k, (o, t)) in ours.k_sparse.iter().zip(theirs["f1_sparse"].as_array().unwrap()).enumerate() {
            close(o.scores.f1, t.as_f64().unwrap(), 1e-9, &format!("{l}: {}-sparse F1", k + 1));
        }
        let split: Vec<usize> = ours.split_latents.iter().map(|&i| i as usize).collect();
        assert_eq!(split, indices(&theirs["split_feats"]), "{l}: split latents");
        assert_eq!(ours.probe_true_positives as u64, theirs["probe_true_positives"].as_u64().unwrap(), "{l}");
        assert_eq!(ours.split_true_positives as u64, theirs["split_true_positives"].as_u64().unwrap(), "{l}");
        close(ours.mean_absorption_fraction.unwrap(), theirs["mean_absorption_fraction"].as_f64().unwrap(), 1e-3, &format!("{l}: absorption"));
        close(ours.full_absorption_rate.unwrap(), theirs["full_absorption_rate"].as_f64().unwrap(), 1e-9, &format!("{l}: full absorption"));
    }
    let theirs: HashMap<String, &Value> = e["words"].as_array().unwrap().iter().map(|w| (w["word"].as_str().unwrap().to_string(), w)).collect();
    assert_eq!(r.words.len(), theirs.len());
    for w in &r.words {
        let t = theirs[&w.word];
        close(w.absorption.absorption_fraction as f64, t["absorption_fraction"].as_f64().unwrap(), 1e-3, &w.word);
        assert_eq!(w.absorption.full_absorption, t["is_full_absorption"].as_bool().unwrap(), "{}", w.word);
        assert_eq!(w.absorption.top_latents[0] as u64, t["top_projection_feat"].as_u64().unwrap(), "{}", w.word);
        close(w.absorption.top_projections[0] as f64, t["top_probe_projection"].as_f64().unwrap(), 1e-4, &w.word);
    }
    assert_eq!(r.letters_passed as u64, e["letters_passed"].as_u64().unwrap());
    close(r.mean_absorption_fraction.unwrap(), e["mean_absorption_fraction"].as_f64().unwrap(), 1e-3, "mean absorption");
    close(r.mean_full_absorption_rate.unwrap(), e["mean_full_absorption_rate"].as_f64().unwrap(), 1e-9, "mean full absorption");
    close(r.mean_split_latents.unwrap(), e["mean_split_latents"].as_f64().unwrap(), 1e-9, "mean split latents");
    close(r.std_absorption_fraction.unwrap(), e["std_absorption_fraction"].as_f64().unwrap(), 1e-3, "std absorption");
    // The planted absorption is found: most words of the absorbed letters are absorbed.
    assert!(r.mean_absorption_fraction.unwrap() > 0.3);
}

#[test]
fn k_sparse_logistic_regression_matches_scikit_learn() {
    let c = case();
    let codes = encode_rows(c.sae.as_ref(), &c.train.activations, 1024).unwrap();
    let fits = json("k_sparse.json");
    let floats = |v: &Value| v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap()).collect::<Vec<f64>>();
    let (mut to_optimum, mut to_lbfgs) = (0f64, 0f64);
    for (letter, probes) in fits.as_array().unwrap().iter().enumerate() {
        let y: Vec<bool> = c.train.letters.iter().map(|&l| l == letter).collect();
        for p in probes.as_array().unwrap() {
            let latents = indices(&p["latents"]);
            let x: Vec<f32> = (0..codes.len()).flat_map(|i| latents.iter().map(move |&j| (i, j))).map(|(i, j)| codes.row(i).get(j)).collect();
            let ours = fit_balanced(&x, latents.len(), &y, 1.0).unwrap();
            let ours: Vec<f64> = ours.coef.iter().copied().chain([ours.intercept]).collect();
            let mut optimum = floats(&p["coef_optimum"]);
            optimum.push(p["intercept_optimum"].as_f64().unwrap());
            let mut lbfgs = floats(&p["coef_sklearn_tight"]);
            lbfgs.push(p["intercept_sklearn_tight"].as_f64().unwrap());
            for ((a, b), l) in ours.iter().zip(&optimum).zip(&lbfgs) {
                to_optimum = to_optimum.max((a - b).abs() / b.abs().max(1.0));
                to_lbfgs = to_lbfgs.max((a - l).abs() / l.abs().max(1.0));
            }
        }
    }
    // The same strictly convex objective, minimised exactly (numpy Newton to a gradient below
    // 1e-10): what is left is the codes' float32 rounding (relative ~1e-7) times the fits'
    // conditioning. scikit-learn's L-BFGS itself, even at tol 1e-12, stops with a gradient of
    // ~1e-2, which on these fits moves a coefficient by up to ~1 %.
    assert!(to_optimum < 1e-5, "largest relative difference to the optimum {to_optimum}");
    assert!(to_lbfgs < 3e-2, "largest relative difference to scikit-learn's L-BFGS {to_lbfgs}");
}

#[test]
fn our_trained_letter_probe_agrees_with_saebench() {
    let c = case();
    let s = AbsorptionSettings::saebench(3);
    let mut reprompt = |words: &[String]| DenseRows::new(c.test.activations.dim(), words.iter().flat_map(|w| c.reprompt[w].clone()).collect());
    let r = evaluate_absorption(c.sae.as_ref(), &c.train, &c.test, &s, &mut reprompt, &mut |_, _, _| {}).unwrap();
    // Trained probes differ by initialisation and shuffling (both seeded, by different
    // generators): each letter's test F1 within 0.05 of SAEBench's.
    for (ours, theirs) in r.letters.iter().zip(c.expected["letters"].as_array().unwrap()) {
        close(ours.probe.f1, theirs["f1_probe"].as_f64().unwrap(), 0.05, &format!("{}: probe F1", ours.letter));
    }
    assert_eq!(r.letters_passed, 26);
    assert!(r.enough_letters);
    assert_eq!(r.train_words, c.train.words.len());
}
