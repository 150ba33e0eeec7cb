//! `sae-fuzz`: mutation fuzzing of every parser of untrusted input, on stable Rust.
//!
//! ```text
//! sae-fuzz list
//! sae-fuzz run TARGET|all [--seconds N] [--runs N] [--seed S] [--out DIR]
//! sae-fuzz replay TARGET FILE
//! ```
//!
//! Each execution takes a seed input (a valid file from the fixtures, or one built here), applies
//! one to four mutations from a seeded SplitMix64 ([`mutate`]), and runs the target's parser on
//! it. A panic is a finding: the input is written to `DIR/<target>-<seed>-<run>.bin` and the
//! command fails. An execution that takes longer than 10 s is a hang: the input is written and
//! the process exits at once. Without coverage feedback this is a random mutation fuzzer, not
//! libFuzzer; its runs are exact replays of `(seed, run)`.

mod gguf_seed;
mod mutate;
mod store_seed;
mod targets;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sae_core::rng::SplitMix64;

/// A training config with every section, the seed of the `train-toml` target.
pub const TRAIN_TOML: &str = "data = \"store\"\nout = \"out\"\ntokens = 100000\nbatch_size = 256\nlr = 3e-4\nlr_decay = \"linear\"\n\
    normalize_activations = \"expected_average_only_in\"\n[[sae]]\narchitecture = \"topk\"\nd_sae = 64\nk = 4\n[[sae]]\nname = \"j\"\n\
    architecture = \"jumprelu\"\nd_sae = 32\nl0_coefficient = 1.0\n";

/// The longest one execution may take before it counts as a hang.
const HANG: Duration = Duration::from_secs(10);

/// The repository root (the fixtures are under it).
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

struct Options {
    seconds: f64,
    runs: u64,
    seed: u64,
    out: PathBuf,
}

fn parse(args: &[String]) -> Result<Options> {
    let mut o = Options { seconds: 10.0, runs: u64::MAX, seed: 0, out: repo_root().join("target/fuzz-findings") };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--seconds" => o.seconds = value.parse().context("--seconds")?,
            "--runs" => o.runs = value.parse().context("--runs")?,
            "--seed" => o.seed = value.parse().context("--seed")?,
            "--out" => o.out = PathBuf::from(value),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(o)
}

/// What one target's run did.
struct Outcome {
    runs: u64,
    findings: u64,
    seconds: f64,
}

fn fuzz(target: &targets::Target, o: &Options) -> Result<Outcome> {
    let scratch = std::env::temp_dir().join(format!("sae-fuzz-{}-{}", target.name, std::process::id()));
    std::fs::remove_dir_all(&scratch).ok();
    std::fs::create_dir_all(&scratch)?;
    let seeds = (target.seeds)(&repo_root());
    // The watchdog: the start time (ms since the run began) of the execution in progress, and
    // its input, written out if it outlives HANG.
    let began = Instant::now();
    let current_start = Arc::new(AtomicU64::new(u64::MAX));
    let current_input: Arc<Mutex<Vec<u8>>> = Arc::new(Mutex::new(Vec::new()));
    {
        let (start, input, out, name) = (current_start.clone(), current_input.clone(), o.out.clone(), target.name);
        std::thread::spawn(move || loop {
            std::thread::sleep(Duration::from_millis(500));
            let s = start.load(Ordering::Relaxed);
            if s != u64::MAX && began.elapsed().as_millis() as u64 > s + HANG.as_millis() as u64 {
                std::fs::create_dir_all(&out).ok();
                let path = out.join(format!("{name}-hang.bin"));
                if let Ok(bytes) = input.lock() {
                    std::fs::write(&path, &*bytes).ok();
                }
                eprintln!("HANG in {name}: an execution ran over {} s; input in {}", HANG.as_secs(), path.display());
                std::process::exit(3);
            }
        });
    }
    let mut rng = SplitMix64::new(o.seed ^ fxhash(target.name));
    let (mut runs, mut findings) = (0u64, 0u64);
    let deadline = began + Duration::from_secs_f64(o.seconds);
    while runs < o.runs && Instant::now() < deadline {
        let mut input = seeds[(rng.next_u64() % seeds.len() as u64) as usize].clone();
        mutate::mutate(&mut rng, &mut input, &seeds);
        if let Ok(mut cur) = current_input.lock() {
            cur.clone_from(&input);
        }
        current_start.store(began.elapsed().as_millis() as u64, Ordering::Relaxed);
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (target.run)(&input, &scratch)));
        current_start.store(u64::MAX, Ordering::Relaxed);
        if let Err(payload) = result {
            findings += 1;
            let msg = payload.downcast_ref::<String>().cloned().or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string())).unwrap_or_default();
            std::fs::create_dir_all(&o.out)?;
            let path = o.out.join(format!("{}-{}-{runs}.bin", target.name, o.seed));
            std::fs::write(&path, &input)?;
            eprintln!("PANIC in {} at run {runs}: {msg}; input in {}", target.name, path.display());
        }
        runs += 1;
    }
    std::fs::remove_dir_all(&scratch).ok();
    Ok(Outcome { runs, findings, seconds: began.elapsed().as_secs_f64() })
}

/// A stable hash of a target's name, so that targets run with one `--seed` differ.
fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| (h ^ b as u64).wrapping_mul(0x100_0000_01b3))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let all = targets::all();
    match args.first().map(String::as_str) {
        Some("list") => {
            for t in &all {
                println!("{:<16} {}", t.name, t.what);
            }
            Ok(())
        }
        Some("run") => {
            let which = args.get(1).context("run needs a target name or `all`")?;
            let o = parse(&args[2..])?;
            let chosen: Vec<&targets::Target> = all.iter().filter(|t| which == "all" || t.name == which.as_str()).collect();
            if chosen.is_empty() {
                bail!("unknown target `{which}`; `sae-fuzz list` lists them");
            }
            // Panics are findings, reported once each by the loop, not printed by the hook.
            std::panic::set_hook(Box::new(|_| {}));
            let mut total = 0;
            for t in chosen {
                let r = fuzz(t, &o)?;
                println!("{:<16} {:>9} runs in {:>6.1} s ({:>7.0}/s), {} panics", t.name, r.runs, r.seconds, r.runs as f64 / r.seconds.max(1e-9), r.findings);
                total += r.findings;
            }
            if total > 0 {
                bail!("{total} finding(s); inputs in {}", o.out.display());
            }
            Ok(())
        }
        Some("replay") => {
            // One saved input through its target with the default panic hook (message and
            // location printed).
            let (Some(name), Some(file)) = (args.get(1), args.get(2)) else { bail!("usage: sae-fuzz replay TARGET FILE") };
            let t = all.iter().find(|t| t.name == name.as_str()).with_context(|| format!("unknown target `{name}`"))?;
            let scratch = std::env::temp_dir().join(format!("sae-fuzz-replay-{}", std::process::id()));
            std::fs::create_dir_all(&scratch)?;
            (t.run)(&std::fs::read(file)?, &scratch);
            std::fs::remove_dir_all(&scratch).ok();
            println!("{name}: {file} ran without a panic");
            Ok(())
        }
        _ => bail!("usage: sae-fuzz list | sae-fuzz run TARGET|all [--seconds N] [--runs N] [--seed S] [--out DIR] | sae-fuzz replay TARGET FILE"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The smoke run of `cargo xtask ci`: every target, a fixed number of executions from a fixed
    /// seed (an exact replay, so a failure here reproduces with `sae-fuzz run T --runs N --seed S`).
    #[test]
    fn every_target_survives_a_fixed_smoke_run() {
        let out = std::env::temp_dir().join(format!("sae-fuzz-smoke-{}", std::process::id()));
        let o = Options { seconds: 600.0, runs: 400, seed: 17, out: out.clone() };
        let quiet = std::panic::take_hook();
        std::panic::set_hook(Box::new(|_| {}));
        let outcomes: Vec<(&str, Result<Outcome>)> = targets::all().iter().map(|t| (t.name, fuzz(t, &o))).collect();
        std::panic::set_hook(quiet);
        for (name, outcome) in outcomes {
            let r = outcome.unwrap_or_else(|e| panic!("{name}: {e:#}"));
            assert_eq!(r.runs, o.runs, "{name} stopped early");
            assert_eq!(r.findings, 0, "{name}: {} panics; inputs in {}", r.findings, out.display());
        }
    }
}
