//! `cargo xtask bench-compare`: our `sae bench` and the Python baselines (`shared/baseline/`)
//! run in alternation in one run, on the same shapes, and the throughput ratios printed.
//!
//! Alternating (ours, theirs, ours, theirs, ...) spreads any slow drift of the machine over both
//! sides. Each program prints a `SUMMARY ... tok_per_s_median=...` line; the ratio of a pair is
//! ours / theirs, and the figure reported is the median over rounds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

/// One comparison: our arguments and the baseline's, same shape.
struct Case {
    label: &'static str,
    ours: Vec<String>,
    theirs: Vec<String>,
}

fn args(s: &str) -> Vec<String> {
    s.split_whitespace().map(String::from).collect()
}

/// SAELens's BatchTopK and Matryoshka training steps: a script of this repository (the shared
/// baselines time TopK, JumpReLU and ReLU only), found relative to the workspace root.
const SAELENS_BATCHTOPK: &str = "benches/python/bench_saelens_batchtopk.py";

/// Where a baseline script lives: this repository's `benches/python/` or the shared baselines.
fn script(root: &Path, baseline: &Path, name: &str) -> PathBuf {
    if name.starts_with("benches/") { root.join(name) } else { baseline.join(name) }
}

fn cases(shape: &str) -> Vec<Case> {
    let both = |label, ours: &str, theirs: &str| Case { label, ours: args(&format!("{ours} {shape}")), theirs: args(&format!("{theirs} {shape}")) };
    vec![
        both("topk train, AuxK off", "--arch topk --mode train --dead-frac 0", "bench_anchor.py --lib sparsify --mode train --dead-frac 0"),
        both("topk train, AuxK on (25 % dead)", "--arch topk --mode train --dead-frac 0.25", "bench_anchor.py --lib sparsify --mode train --dead-frac 0.25"),
        both("topk encode", "--arch topk --mode encode", "bench_anchor.py --lib sparsify --mode encode"),
        both("topk encode+decode", "--arch topk --mode encdec", "bench_anchor.py --lib sparsify --mode encdec"),
        both("jumprelu encode", "--arch jumprelu --mode encode", "bench_sae.py --arch jumprelu --mode encode"),
        both("relu_l1 encode", "--arch relu_l1 --mode encode", "bench_sae.py --arch relu_l1 --mode encode"),
        both("relu_l1 train", "--arch relu_l1 --mode train", "bench_anchor.py --lib saelens --arch standard --mode train"),
        both("batchtopk train, AuxK off", "--arch batchtopk --mode train --dead-frac 0", &format!("{SAELENS_BATCHTOPK} --arch batchtopk --dead-frac 0")),
        both("batchtopk train, AuxK on (25 % dead)", "--arch batchtopk --mode train --dead-frac 0.25", &format!("{SAELENS_BATCHTOPK} --arch batchtopk --dead-frac 0.25")),
        both("matryoshka train, AuxK off", "--arch matryoshka --mode train --dead-frac 0", &format!("{SAELENS_BATCHTOPK} --arch matryoshka --dead-frac 0")),
    ]
}

/// Parses the `key=value` pairs of the last `SUMMARY` line of `stdout`.
fn summary(stdout: &str) -> Option<BTreeMap<String, String>> {
    let line = stdout.lines().rev().find(|l| l.starts_with("SUMMARY "))?;
    Some(line.split_whitespace().filter_map(|kv| kv.split_once('=')).map(|(k, v)| (k.to_string(), v.to_string())).collect())
}

fn tok_per_s(cmd: &mut Command, what: &str) -> Result<f64> {
    let out = cmd.output().with_context(|| format!("starting {what}"))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("{what} failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or(""));
    }
    let s = summary(&stdout).with_context(|| format!("{what} printed no SUMMARY line"))?;
    if let Some(f) = s.get("foreign_cpu").and_then(|v| v.parse::<f64>().ok()).filter(|f| *f > 0.05) {
        eprintln!("    warning: {what} saw foreign_cpu={f:.3}: another process used the CPU");
    }
    s.get("tok_per_s_median").and_then(|v| v.parse().ok()).with_context(|| format!("{what}: no tok_per_s_median"))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

struct Options {
    python: Option<PathBuf>,
    baseline: PathBuf,
    rounds: usize,
    shape: String,
    only: Option<String>,
}

fn parse(root: &Path, a: &[String]) -> Result<Options> {
    let mut o = Options {
        python: std::env::var_os("SAE_BASELINE_PYTHON").map(PathBuf::from),
        baseline: root.join("../shared/baseline"),
        rounds: 3,
        shape: "--d-in 384 --d-sae 6144 --k 32 --batch 4096".into(),
        only: None,
    };
    let mut it = a.iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().cloned().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--python" => o.python = Some(value()?.into()),
            "--baseline" => o.baseline = value()?.into(),
            "--rounds" => o.rounds = value()?.parse().context("--rounds")?,
            "--shape" => o.shape = value()?,
            "--only" => o.only = Some(value()?),
            other => bail!("unknown flag {other}; usage: cargo xtask bench-compare [--python PY] [--baseline DIR] [--rounds N] [--shape \"--d-in N --d-sae N --k N --batch N\"] [--only TEXT]"),
        }
    }
    Ok(o)
}

/// Runs the comparison. `sae` is the release binary to time.
pub fn bench_compare(root: &Path, sae: &Path, a: &[String]) -> Result<()> {
    let o = parse(root, a)?;
    if let Some(p) = o.python.as_ref().filter(|p| !p.exists()) {
        bail!("the baseline Python {} does not exist (from --python or SAE_BASELINE_PYTHON)", p.display());
    }
    let python = o.python;
    let have_baseline = python.is_some() && o.baseline.join("bench_anchor.py").is_file();
    if !have_baseline {
        eprintln!(
            "no baseline to run (needs --python or SAE_BASELINE_PYTHON, a Python with torch, eai-sparsify and sae-lens, \
             and the scripts in {}; see shared/baseline/README.md): timing ours only",
            o.baseline.display()
        );
    }
    println!("| case | ours tok/s | baseline tok/s | ratio (ours / baseline) |");
    println!("|---|---|---|---|");
    for case in cases(&o.shape).into_iter().filter(|c| o.only.as_deref().is_none_or(|t| c.label.contains(t))) {
        let (mut ours, mut theirs, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..o.rounds {
            eprintln!("  {} round {}/{}", case.label, round + 1, o.rounds);
            let us = tok_per_s(Command::new(sae).arg("bench").args(&case.ours), &format!("sae bench {}", case.ours.join(" ")))?;
            ours.push(us);
            if let (true, Some(py)) = (have_baseline, &python) {
                let them = tok_per_s(
                    Command::new(py).arg(script(root, &o.baseline, &case.theirs[0])).args(&case.theirs[1..]).env("OMP_NUM_THREADS", "2"),
                    &case.theirs.join(" "),
                )?;
                theirs.push(them);
                ratios.push(us / them);
            }
        }
        let fmt = |v: &mut Vec<f64>| if v.is_empty() { "–".to_string() } else { format!("{:.0}", median(v)) };
        let ratio = if ratios.is_empty() { "–".to_string() } else { format!("{:.2}", median(&mut ratios)) };
        println!("| {} | {} | {} | {} |", case.label, fmt(&mut ours), fmt(&mut theirs), ratio);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_last_summary_line() {
        let s = summary("noise\nSUMMARY anchor lib=sparsify tok_per_s_median=11800 foreign_cpu=0.01\n").unwrap();
        assert_eq!(s["tok_per_s_median"], "11800");
        assert_eq!(s["lib"], "sparsify");
        assert!(summary("no summary here").is_none());
    }

    #[test]
    fn median_of_even_and_odd() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
