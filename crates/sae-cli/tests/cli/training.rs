//! `sae synth`, `sae train`, `sae eval` and `sae compare` end to end: determinism across runs and
//! seeds, a run killed with SIGKILL that resumes to bit-identical weights, the synthetic suite and
//! stability across seeds, and bad configs as typed errors.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_sae"))
}

fn sae(args: &[&str]) -> Output {
    bin().args(args).output().expect("running sae")
}

fn ok(out: Output) -> Output {
    assert!(out.status.success(), "stdout: {}\nstderr: {}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    out
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn synth(dir: &Path, tokens: u64) -> PathBuf {
    let store = dir.join("store");
    ok(sae(&["synth", "--out", s(&store), "--d-in", "16", "--n-features", "48", "--tokens", &tokens.to_string(), "--parents", "4", "--seed", "5"]));
    store
}

fn weights(dir: &Path) -> Vec<u8> {
    std::fs::read(dir.join("sae_weights.safetensors")).unwrap()
}

fn train(store: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec!["train", "--data", s(store), "--arch", "topk", "--d-sae", "64", "--k", "4", "--out", s(out), "--batch-size", "256", "--lr", "3e-3", "--set", "dead_tokens=2000"];
    args.extend_from_slice(extra);
    sae(&args)
}

#[test]
fn same_seed_same_weights_different_seed_different_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let store = synth(tmp.path(), 20_000);
    let (a, b, c) = (tmp.path().join("a"), tmp.path().join("b"), tmp.path().join("c"));
    ok(train(&store, &a, &["--seed", "1"]));
    ok(train(&store, &b, &["--seed", "1"]));
    ok(train(&store, &c, &["--seed", "2"]));
    // Exact on purpose: both runs are on this machine, this binary, this backend and thread
    // count, so every product adds up in the same order (the promise is per machine and
    // backend, not across CPUs).
    assert_eq!(weights(&a), weights(&b));
    assert_ne!(weights(&a), weights(&c));
    // Metrics and curves were written.
    let lines = std::fs::read_to_string(a.join("metrics.jsonl")).unwrap();
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    let last: serde_json::Value = serde_json::from_str(lines.lines().last().unwrap()).unwrap();
    assert_eq!(last["step"], 79);
    let (f0, f1) = (first["fvu"].as_f64().unwrap(), last["fvu"].as_f64().unwrap());
    assert!(f1 < 0.8 * f0, "training did not reduce the FVU: {f0} -> {f1}");
    assert!(a.join("training_curves.svg").is_file());
    assert_png(&a.join("training_curves.png"), (1200, 800));
    // The saved SAE evaluates, with ground-truth recovery.
    let json = tmp.path().join("eval.json");
    ok(sae(&["eval", "--sae", s(&a), "--data", s(&store), "--ground-truth", s(&store.join("ground_truth.safetensors")), "--json", s(&json), "--rows", "5000", "--density-plot", s(&tmp.path().join("density.svg"))]));
    let svg = std::fs::read_to_string(tmp.path().join("density.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("feature density") && svg.contains("<rect"), "{svg:.200}");
    assert_png(&tmp.path().join("density.png"), (900, 500));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    for key in ["l0", "mse", "fvu", "explained_variance", "dead_fraction", "mcc", "recovered_frac", "cosine", "l2_ratio"] {
        assert!(v[key].is_number(), "missing {key}: {v}");
    }
    assert!((v["l0"].as_f64().unwrap() - 4.0).abs() < 1e-9);

    // A finished SAE is not replaced without being asked; with --force it is, identically.
    let again = train(&store, &a, &["--seed", "1"]);
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(!again.status.success() && err.contains("already holds a trained SAE") && err.contains("--force"), "{err}");
    ok(train(&store, &a, &["--seed", "1", "--force"]));
    assert_eq!(weights(&a), weights(&b));
}

#[test]
fn the_synthetic_suite_and_stability_across_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let store = synth(tmp.path(), 20_000);
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    ok(train(&store, &a, &["--seed", "1"]));
    ok(train(&store, &b, &["--seed", "2"]));

    let json = tmp.path().join("eval.json");
    ok(sae(&["eval", "--sae", s(&a), "--data", s(&store), "--suite", "core,synthetic", "--rows", "5000", "--json", s(&json)]));
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let syn = &v["synthetic"];
    for key in ["mcc", "precision", "recall", "f1", "accuracy", "uniqueness", "explained_variance", "shrinkage", "absorption", "true_l0", "sae_l0"] {
        let x = syn[key].as_f64().unwrap_or_else(|| panic!("missing synthetic.{key}: {syn}"));
        assert!(x.is_finite() && x >= 0.0, "synthetic.{key} = {x}");
    }
    // The suites agree where they overlap, and the generator's 4 parents give 12 pairs.
    assert_eq!(syn["explained_variance"], v["explained_variance"]);
    assert_eq!(syn["sae_l0"], v["l0"]);
    assert_eq!(syn["pairs"].as_array().unwrap().len(), 12);
    assert!(syn["uniqueness"].as_f64().unwrap() <= 1.0 && syn["rows"] == 5000);

    // Stability: an SAE against itself is perfect; two seeds agree less, within [-1, 1].
    let cmp = tmp.path().join("compare.json");
    ok(sae(&["compare", "--sae", s(&a), "--sae", s(&a), "--sae", s(&b), "--json", s(&cmp), "--plot", s(&tmp.path().join("matched.png"))]));
    for pair in ["0-1", "0-2", "1-2"] {
        assert_png(&tmp.path().join(format!("matched-{pair}.png")), (900, 500));
        assert!(std::fs::read_to_string(tmp.path().join(format!("matched-{pair}.svg"))).unwrap().contains("matched cosines of 64 latents"));
    }
    let c: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&cmp).unwrap()).unwrap();
    let pairs = c["pairs"].as_array().unwrap();
    assert_eq!(pairs.len(), 3);
    assert!((pairs[0]["decoder_alignment"].as_f64().unwrap() - 1.0).abs() < 1e-5 && pairs[0]["same_match_fraction"] == 1.0, "{}", pairs[0]);
    let other = &pairs[1];
    for key in ["decoder_alignment", "encoder_alignment", "shared_fraction", "same_match_fraction"] {
        let x = other[key].as_f64().unwrap();
        assert!((-1.0..=1.0).contains(&x), "{key} = {x}");
    }
    assert!(other["decoder_alignment"].as_f64().unwrap() < 1.0 - 1e-4);
    assert_eq!(other["decoder"]["partner"].as_array().unwrap().len(), 64);

    // A store that is not the generator's, or one changed after it was written, is refused.
    let out = sae(&["compare", "--sae", s(&a)]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("at least two"));
    let shard = store.join("shard-000000.safetensors");
    let mut bytes = std::fs::read(&shard).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x40;
    std::fs::write(&shard, bytes).unwrap();
    let out = sae(&["eval", "--sae", s(&a), "--data", s(&store), "--suite", "synthetic", "--rows", "20000"]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("differ from what its generator makes"), "{err}");
}

#[test]
fn two_runs_on_one_directory_do_not_interleave() {
    let tmp = tempfile::tempdir().unwrap();
    let store = synth(tmp.path(), 200_000);
    let out = tmp.path().join("shared");
    let args = |seed: &str| {
        let mut a: Vec<String> = ["train", "--data", s(&store), "--arch", "topk", "--d-sae", "64", "--k", "4", "--out", s(&out), "--batch-size", "256", "--lr", "3e-3"].iter().map(|a| a.to_string()).collect();
        a.extend(["--seed".to_string(), seed.to_string(), "--tokens".into(), "400000".into(), "--checkpoint-every".into(), "10".into()]);
        a
    };
    let first = bin().args(args("1")).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let second = bin().args(args("2")).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    let (a, b) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
    // Exactly one of them wrote the directory; the other was refused with the reason.
    assert_ne!(a.status.success(), b.status.success(), "{} / {}", String::from_utf8_lossy(&a.stderr), String::from_utf8_lossy(&b.stderr));
    let loser = if a.status.success() { &b } else { &a };
    let err = String::from_utf8_lossy(&loser.stderr);
    assert!(err.contains("being written by another process") || err.contains("already holds"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn a_run_killed_with_sigkill_resumes_to_identical_weights() {
    let tmp = tempfile::tempdir().unwrap();
    let store = synth(tmp.path(), 400_000);
    let straight = tmp.path().join("straight");
    let killed = tmp.path().join("killed");
    let common = ["--seed", "3", "--checkpoint-every", "25", "--tokens", "400000"];
    ok(train(&store, &straight, &common));

    let mut args: Vec<String> = ["train", "--data", s(&store), "--arch", "topk", "--d-sae", "64", "--k", "4", "--out", s(&killed), "--batch-size", "256", "--lr", "3e-3", "--set", "dead_tokens=2000"].iter().map(|a| a.to_string()).collect();
    args.extend(common.iter().map(|a| a.to_string()));
    let mut child = bin().args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    // Kill it as soon as a checkpoint past the first exists, mid-run.
    let deadline = Instant::now() + Duration::from_secs(300);
    let state = killed.join("checkpoint/state.json");
    loop {
        let step = std::fs::read_to_string(&state).ok().and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok()).and_then(|v| v["step"].as_u64());
        if step.is_some_and(|s| s >= 50) {
            break;
        }
        assert!(Instant::now() < deadline, "no checkpoint appeared");
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the run ended ({status}) before it could be killed; make it longer");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap(); // SIGKILL
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run finished before the kill");
    assert!(!killed.join("sae_weights.safetensors").exists(), "final weights exist: the kill came too late");

    let mut resume = args.clone();
    resume.push("--resume".into());
    ok(bin().args(&resume).output().unwrap());
    // Exact on purpose, as above: same machine, binary, backend and thread count.
    assert_eq!(weights(&killed), weights(&straight), "resumed weights differ from the uninterrupted run");
    assert_eq!(
        std::fs::read_to_string(killed.join("metrics.jsonl")).unwrap(),
        std::fs::read_to_string(straight.join("metrics.jsonl")).unwrap()
    );
}

#[test]
fn bad_training_input_is_a_typed_error() {
    let tmp = tempfile::tempdir().unwrap();
    let store = synth(tmp.path(), 3000);
    let out = tmp.path().join("o");
    let cfg = tmp.path().join("train.toml");
    let fails = |o: Output, needles: &[&str]| {
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success(), "expected failure: {err}");
        assert!(!err.contains("panicked"), "{err}");
        for n in needles {
            assert!(err.contains(n), "`{n}` not in: {err}");
        }
    };
    std::fs::write(&cfg, format!("data = {:?}\nout = {:?}\nlearning_rate = 1e-3\n[[sae]]\narchitecture = \"topk\"\nd_sae = 32\nk = 4\n", s(&store), s(&out))).unwrap();
    fails(sae(&["train", "--config", s(&cfg)]), &["train.toml", "learning_rate"]);
    std::fs::write(&cfg, format!("data = {:?}\nout = {:?}\nlr = -1.0\n[[sae]]\narchitecture = \"topk\"\nd_sae = 32\nk = 4\n", s(&store), s(&out))).unwrap();
    fails(sae(&["train", "--config", s(&cfg)]), &["train.toml", "`lr`", "positive"]);
    std::fs::write(&cfg, format!("data = {:?}\nout = {:?}\n[[sae]]\narchitecture = \"topk\"\nd_sae = 32\nk = 40\n", s(&store), s(&out))).unwrap();
    fails(sae(&["train", "--config", s(&cfg)]), &["train.toml", "sae[0].k"]);
    fails(train(&store, &out, &["--set", "batch_size=0"]), &["batch_size"]);
    std::fs::write(&cfg, format!("data = {:?}\nout = {:?}\n[[sae]]\narchitecture = \"standard\"\nd_sae = 32\nl1_coeficient = 5.0\n", s(&store), s(&out))).unwrap();
    fails(sae(&["train", "--config", s(&cfg)]), &["train.toml", "sae[0].l1_coeficient", "unknown key", "l1_coefficient"]);
    fails(sae(&["train", "--data", s(&store), "--arch", "nope", "--d-sae", "8", "--out", s(&out)]), &["nope", "topk"]);
    fails(train(&tmp.path().join("missing"), &out, &[]), &["missing", "metadata.json"]);
    fails(sae(&["train", "--data", s(&store), "--arch", "topk", "--d-sae", "8", "--k", "2", "--out", s(&tmp.path().join("fresh")), "--resume"]), &["no checkpoint"]);
    // Sizes that cannot be held: refused before anything is allocated, with the size in the
    // message (not an abort, and not a wrapped negative number).
    let huge = |d_sae: &str| sae(&["train", "--data", s(&store), "--arch", "topk", "--d-sae", d_sae, "--k", "2", "--out", s(&tmp.path().join("huge"))]);
    fails(huge("1000000000000"), &["sae[0]", "d_sae 1000000000000", "GiB"]);
    fails(huge("18446744073709551615"), &["--d-sae 18446744073709551615", "larger than a config integer"]);
    // An SAE name is a directory under `out`, never a path out of it.
    std::fs::write(&cfg, format!("data = {:?}\nout = {:?}\n[[sae]]\nname = \"../escape\"\narchitecture = \"topk\"\nd_sae = 32\nk = 4\n", s(&store), s(&out))).unwrap();
    fails(sae(&["train", "--config", s(&cfg)]), &["sae[0].name", "plain directory name"]);
    assert!(!tmp.path().join("escape").exists());
    // A store whose writer was killed is not trained on as if it were whole.
    let meta = store.join("metadata.json");
    let whole = std::fs::read_to_string(&meta).unwrap();
    assert!(whole.contains("\"complete\": true"), "{whole}");
    std::fs::write(&meta, whole.replace("\"complete\": true", "\"complete\": false")).unwrap();
    fails(train(&store, &out, &[]), &["metadata.json", "incomplete"]);
    std::fs::write(&meta, &whole).unwrap();
    // A truncated shard.
    let shard = store.join("shard-000000.safetensors");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() / 2]).unwrap();
    fails(train(&store, &out, &[]), &["shard-000000.safetensors", "truncated"]);
}

/// The file is a PNG of `size` (IHDR width and height) with more than one colour drawn.
fn assert_png(path: &std::path::Path, size: (u32, u32)) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "{} is not a PNG", path.display());
    let be = |i: usize| u32::from_be_bytes(bytes[i..i + 4].try_into().unwrap());
    assert_eq!((be(16), be(20)), size, "{}", path.display());
    assert!(bytes.len() > 2000, "{} looks blank ({} bytes)", path.display(), bytes.len());
}
