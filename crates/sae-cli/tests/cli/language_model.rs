//! The language-model commands end to end on SmolLM2 (fetched into the asset cache if missing):
//! `sae generate` prints " Paris." for the capital of France, and a steered generation with an
//! SAE directory on disk (feature 0's decoder row = the embedding of " London", read with
//! `sae run --hook hook_embed`) prints a different continuation; bad flags are clean errors; a
//! harvest killed with SIGKILL, run again, ends with the store of an uninterrupted harvest.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::SaeConfig;
use sae_core::format::npy::read_npy;
use sae_core::format::{Format, save_sae};
use sae_core::format::safetensors_io::StoreDtype;
use sae_core::params::{ParamSet, ParamTensor};

fn sae(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_sae")).args(args).output().expect("running sae")
}

fn ok(out: Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "sae failed: {err}");
    String::from_utf8(out.stdout).unwrap()
}

fn fails_with(out: &Output, needles: &[&str]) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && !err.contains("panicked"), "{err}");
    for n in needles {
        assert!(err.contains(n), "stderr does not mention `{n}`: {err}");
    }
}

/// SmolLM2 and MiniLM (the non-causal model of the error case) in the asset cache (fetched,
/// SHA-256 checked, when missing).
fn models_fetched() {
    let cache = sae_assets::AssetCache::from_env();
    for asset in [&sae_lm::assets::SMOLLM2, &sae_lm::assets::MINILM] {
        cache.fetch(asset, |l| eprintln!("{l}")).unwrap_or_else(|e| panic!("{e}"));
    }
}

#[test]
fn generate_plain_and_steered_from_an_sae_directory() {
    models_fetched();
    let plain = ok(sae(&["generate", "--prompt", "The capital of France is", "--max-tokens", "4"]));
    assert!(plain.starts_with("The capital of France is Paris."), "{plain}");

    let tmp = tempfile::tempdir().unwrap();
    let npy = tmp.path().join("london.npy");
    let printed = ok(sae(&["run", "--model", "smollm2", "--text", " London", "--hook", "hook_embed", "--out", npy.to_str().unwrap()]));
    assert!(printed.contains("token_ids: [4899]") || printed.contains("token_ids: ["), "{printed}");
    let e = read_npy(&npy).unwrap();
    assert_eq!(e.shape, vec![1, 576]);
    let norm = e.values.iter().map(|v| v * v).sum::<f32>().sqrt();
    let d = 576;
    let mut dec = vec![0f32; 2 * d];
    dec[..d].iter_mut().zip(&e.values).for_each(|(o, v)| *o = v / norm);
    dec[d] = 1.0;
    let device = Device::flex();
    let mut p = ParamSet::new();
    p.insert("W_enc", ParamTensor::Matrix(Tensor::zeros([d, 2], &device)));
    p.insert("b_enc", ParamTensor::Vector(Tensor::zeros([2], &device)));
    p.insert("W_dec", ParamTensor::Matrix(Tensor::from_data(TensorData::new(dec, [2, d]), &device)));
    p.insert("b_dec", ParamTensor::Vector(Tensor::zeros([d], &device)));
    let steer_sae = sae_arch::registry().build(SaeConfig::new("standard", d, 2), p, Path::new("<test>")).unwrap();
    let dir = tmp.path().join("sae");
    save_sae(steer_sae.as_ref(), &dir, Format::SaeLens, StoreDtype::F32).unwrap();
    let dir = dir.to_str().unwrap();
    let out = ok(sae(&["generate", "--prompt", "The capital of France is", "--max-tokens", "4", "--sae", dir, "--hook", "blocks.3.hook_resid_post", "--steer", "0:60", "--compare"]));
    let lines: Vec<&str> = out.lines().collect();
    let plain_line = lines.iter().find(|l| l.starts_with("plain:")).unwrap();
    let steered = lines.iter().find(|l| l.starts_with("intervened:")).unwrap();
    assert!(plain_line.contains("Paris"), "{out}");
    assert!(!steered.contains("Paris"), "steering did not change the continuation: {out}");

    fails_with(&sae(&["generate", "--prompt", "x", "--sae", dir, "--hook", "blocks.3.hook_resid_post", "--steer", "0:abc"]), &["--steer", "abc"]);
    fails_with(&sae(&["generate", "--prompt", "x", "--sae", dir, "--hook", "blocks.3.hook_resid", "--steer", "0:1"]), &["unknown hook point", "blocks.{i}.hook_resid_post"]);
    fails_with(&sae(&["generate", "--prompt", "x", "--sae", dir, "--hook", "blocks.3.hook_resid_post", "--steer", "7:1"]), &["feature 7", "2 latents"]);
    fails_with(&sae(&["generate", "--model", "minilm", "--prompt", "x"]), &["not a causal language model"]);
    // Steering with an SAE whose width is not the hook's is a typed error (576 vs the MLP's 1536).
    fails_with(&sae(&["generate", "--prompt", "x", "--sae", dir, "--hook", "blocks.3.mlp.hook_post", "--steer", "0:1"]), &["steering direction", "[576]", "[1536]"]);
}

/// The files of a store directory (its lock left out), by name.
fn store_files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(dir).unwrap().flatten().map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())).collect();
    files.retain(|(n, _)| !n.starts_with('.'));
    files.sort();
    files
}

#[test]
fn a_harvest_killed_with_sigkill_continues_to_the_uninterrupted_store() {
    models_fetched();
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("corpus.txt");
    let verse = "When in disgrace with fortune and men's eyes, I all alone beweep my outcast state, and trouble deaf heaven with my bootless cries. ";
    std::fs::write(&text, verse.repeat(120)).unwrap();
    let args = |out: &Path| -> Vec<String> {
        ["harvest", "--model", "minilm", "--hook", "blocks.1.hook_resid_post", "--corpus", text.to_str().unwrap(), "--tokens", "3000", "--context", "64", "--batch", "4", "--shard-rows", "128", "--out", out.to_str().unwrap()]
            .iter()
            .map(|a| a.to_string())
            .collect()
    };
    let whole = tmp.path().join("whole");
    ok(Command::new(env!("CARGO_BIN_EXE_sae")).args(args(&whole)).output().unwrap());

    let cut = tmp.path().join("cut");
    let mut child = Command::new(env!("CARGO_BIN_EXE_sae")).args(args(&cut)).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Killed once a few shards are committed, well before the end.
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let count = std::fs::read_to_string(cut.join("metadata.json")).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()).and_then(|v| v["count"].as_u64());
        if count.is_some_and(|c| c >= 512) {
            break;
        }
        assert!(Instant::now() < deadline, "no shard appeared");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the harvest ended ({status}) before it could be killed; make it longer");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success());
    let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(cut.join("metadata.json")).unwrap()).unwrap();
    assert_eq!(meta["complete"], false, "the kill came too late");
    // Training refuses the incomplete store; the same harvest command continues it.
    fails_with(&sae(&["train", "--data", cut.to_str().unwrap(), "--arch", "topk", "--d-sae", "64", "--k", "4", "--out", tmp.path().join("t").to_str().unwrap()]), &["incomplete"]);
    let printed = ok(Command::new(env!("CARGO_BIN_EXE_sae")).args(args(&cut)).output().unwrap());
    assert!(printed.contains("continued an interrupted harvest"), "{printed}");
    assert_eq!(store_files(&cut), store_files(&whole));
    // Once complete, running it again is an error, not a second harvest over the first.
    fails_with(&sae(&args(&cut).iter().map(String::as_str).collect::<Vec<_>>()), &["already exists", "never overwritten"]);
}

#[test]
fn an_ln_free_harvest_records_its_frozen_scales() {
    models_fetched();
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("corpus.txt");
    std::fs::write(&text, "Shall I compare thee to a summer's day? Thou art more lovely and more temperate. ".repeat(40)).unwrap();
    let harvest = |out: &Path, extra: &[&str]| {
        let mut args = vec!["harvest", "--model", "minilm", "--hook", "blocks.2.hook_resid_post", "--corpus", text.to_str().unwrap(), "--tokens", "256", "--context", "32", "--out", out.to_str().unwrap()];
        args.extend_from_slice(extra);
        ok(sae(&args));
        let meta: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(out.join("metadata.json")).unwrap()).unwrap();
        (meta, std::fs::read(out.join("shard-000000.safetensors")).unwrap())
    };
    let (plain_meta, plain_rows) = harvest(&tmp.path().join("plain"), &[]);
    let (free_meta, free_rows) = harvest(&tmp.path().join("free"), &["--ln-free"]);
    assert!(plain_meta["source"].get("ln_free_scales").is_none());
    // MiniLM's 6 blocks have two LayerNorms each, plus the embedding's: 13 frozen scales.
    let scales = free_meta["source"]["ln_free_scales"].as_object().unwrap();
    assert_eq!(scales.len(), 13, "{scales:?}");
    assert!(scales.values().all(|v| v.as_f64().is_some_and(|s| s > 0.0 && s.is_finite())));
    assert_ne!(plain_rows, free_rows, "freezing the norms changed nothing");
}

#[test]
fn the_absorption_suite_runs_on_smollm2_and_needs_a_model() {
    models_fetched();
    let tmp = tempfile::tempdir().unwrap();
    let text = tmp.path().join("corpus.txt");
    std::fs::write(&text, "Now is the winter of our discontent made glorious summer by this sun of York. ".repeat(40)).unwrap();
    let (store, dir, out) = (tmp.path().join("store"), tmp.path().join("sae"), tmp.path().join("eval.json"));
    let hook = "blocks.1.hook_resid_post";
    ok(sae(&["harvest", "--model", "smollm2", "--hook", hook, "--corpus", text.to_str().unwrap(), "--tokens", "1024", "--context", "64", "--out", store.to_str().unwrap()]));
    ok(sae(&["train", "--data", store.to_str().unwrap(), "--arch", "topk", "--d-sae", "256", "--k", "16", "--batch-size", "128", "--out", dir.to_str().unwrap()]));
    fails_with(&sae(&["eval", "--sae", dir.to_str().unwrap(), "--data", store.to_str().unwrap(), "--suite", "absorption"]), &["--suite absorption needs a language model"]);
    let (s, d, o) = (dir.to_str().unwrap(), store.to_str().unwrap(), out.to_str().unwrap());
    let printed = ok(sae(&["eval", "--sae", s, "--data", d, "--model", "smollm2", "--hook", hook, "--suite", "core,absorption", "--absorption-words", "200", "--ce-windows", "2", "--json", o]));
    assert!(printed.contains("absorption.letters_passed"), "{printed}");
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    let a = &json["absorption"];
    assert_eq!((a["train_words"].as_u64(), a["test_words"].as_u64()), (Some(160), Some(40)));
    let letters = a["letters"].as_array().unwrap();
    assert_eq!(letters.len(), 26);
    let tested: u64 = letters.iter().map(|l| l["test_words"].as_u64().unwrap()).sum();
    assert_eq!(tested, 40);
    // Every scored word is a true positive of a passing letter, with a fraction in [0, 1].
    let passing: Vec<&str> = letters.iter().filter(|l| l["passed"] == true).map(|l| l["letter"].as_str().unwrap()).collect();
    assert_eq!(a["letters_passed"].as_u64().unwrap() as usize, letters.iter().filter(|l| !l["mean_absorption_fraction"].is_null()).count());
    for w in a["words"].as_array().unwrap() {
        assert!(passing.contains(&w["letter"].as_str().unwrap()), "{w}");
        let f = w["absorption_fraction"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&f), "{w}");
    }
    assert!(json["timings_s"]["absorption"]["total_s"].as_f64().unwrap() > 0.0);
    assert!(json["downstream"]["ce_clean"].as_f64().is_some() && json["l0"].as_f64().is_some());
    // The same seed gives the same report.
    let again = tmp.path().join("again.json");
    ok(sae(&["eval", "--sae", s, "--data", d, "--model", "smollm2", "--hook", hook, "--suite", "absorption", "--absorption-words", "200", "--ce-windows", "2", "--json", again.to_str().unwrap()]));
    let second: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&again).unwrap()).unwrap();
    assert_eq!(second["absorption"], json["absorption"]);
}
