//! `cargo xtask <command>`: project automation in plain Rust.
//!
//! - `ci`: everything CI checks, in one command (the README's test command): the test suite on
//!   Flex and NdArray, and on WGPU when a Vulkan driver is present (Mesa's lavapipe in CI); doc
//!   tests; a type-check of the CUDA backend; `cargo deny` license and ban checks, offline.
//! - `assets [NAME...]`: fetch the pinned real assets (all, or those named) into the cache; runs
//!   `sae assets fetch` (the library code is `sae-assets`) from a release build.
//! - `fixtures --python PY`: regenerate `fixtures/reference/` with the real SAELens and sparsify.
//! - `bench-compare [--python PY] [--rounds N] [--shape ...] [--only TEXT]`: builds `sae` in release
//!   and times it against the Python baselines in alternation, printing the ratios.

mod bench_compare;
mod deny;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use anyhow::{Context, Result, bail};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(&args[1..]),
        Some("fixtures") => fixtures(&args[1..]),
        Some("assets") => run(
            "fetch assets",
            cargo().args(["run", "--release", "-p", "sae-cli", "--", "assets", "fetch"]).args(&args[1..]),
        ),
        Some("bench-compare") => {
            run("release build of sae", cargo().args(["build", "--release", "-p", "sae-cli"]))?;
            let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root().join("target"));
            bench_compare::bench_compare(&root(), &target.join("release/sae"), &args[1..])
        }
        _ => {
            eprintln!("usage: cargo xtask ci [--no-wgpu] | cargo xtask assets [NAME...] | cargo xtask fixtures --python PATH | cargo xtask bench-compare [--python PY]");
            bail!("unknown or missing command")
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("."))
}

fn run(step: &str, cmd: &mut Command) -> Result<()> {
    eprintln!("==> {step}: {cmd:?}");
    let start = Instant::now();
    let status = cmd.current_dir(root()).status().with_context(|| format!("starting {step}"))?;
    eprintln!("<== {step}: {status} in {:.0} s", start.elapsed().as_secs_f64());
    if !status.success() {
        bail!("{step} failed ({status})");
    }
    Ok(())
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

/// Whether a Vulkan ICD is installed (Mesa's lavapipe provides one without a GPU).
fn vulkan_available() -> bool {
    ["/usr/share/vulkan/icd.d", "/etc/vulkan/icd.d"].iter().any(|d| {
        std::fs::read_dir(d).map(|entries| entries.flatten().any(|e| e.path().extension().is_some_and(|x| x == "json"))).unwrap_or(false)
    })
}

fn ci(args: &[String]) -> Result<()> {
    let want_wgpu = !args.iter().any(|a| a == "--no-wgpu");
    let wgpu = want_wgpu && vulkan_available();
    if want_wgpu && !wgpu {
        bail!(
            "no Vulkan driver found for the WGPU test suite. Install Mesa's software driver \
             (`apt-get install mesa-vulkan-drivers libvulkan1`) or run `cargo xtask ci --no-wgpu`"
        );
    }
    if std::env::var_os("SAE_CHROMIUM").is_none() && !std::path::Path::new("/usr/bin/chromium").exists() {
        bail!("no headless browser for the HTML report tests: install Debian's Chromium (`apt-get install chromium`) or point SAE_CHROMIUM at one");
    }
    // The kernels are chosen per CPU at run time: say which CPU this run is on, so that a
    // failure report says where it happened (the numerical tests name their kernel paths too).
    eprintln!("ci: on {}", cpu_summary());
    // A private runtime directory silences a warning from the Vulkan loader.
    let runtime = std::env::temp_dir().join("sae-xdg-runtime");
    std::fs::create_dir_all(&runtime).ok();
    let features = if wgpu { "sae-arch/ndarray,sae-arch/wgpu" } else { "sae-arch/ndarray" };
    for (step, extra) in [("tests", "--all-targets"), ("doc tests", "--doc")] {
        run(
            step,
            cargo().args(["test", "--workspace", extra, "--features", features]).env("XDG_RUNTIME_DIR", &runtime),
        )?;
    }
    // CUDA links against an LLVM bundle downloaded at build time, which this machine cannot
    // fetch; DOCS_RS=1 makes the build scripts skip that, so this type-checks the CUDA backend.
    run("cuda type-check", cargo().args(["check", "-p", "sae-cli", "--features", "cuda"]).env("DOCS_RS", "1"))?;
    run("licenses and bans", deny::command(cargo)?.args(["--offline", "check", "licenses", "bans"]))?;
    eprintln!("ci: all steps passed{}", if wgpu { "" } else { " (WGPU suite skipped)" });
    Ok(())
}

/// The CPU's model name and whether it has AVX2 / AVX-512 / AMX, from `/proc/cpuinfo`.
fn cpu_summary() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let field = |key: &str| info.lines().find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == key).map(|(_, v)| v.trim().to_string()));
    let flags = field("flags").unwrap_or_default();
    let has: Vec<&str> = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16"].into_iter().filter(|f| flags.split_whitespace().any(|x| x == *f)).collect();
    format!("{} ({})", field("model name").unwrap_or_else(|| std::env::consts::ARCH.into()), has.join(" "))
}

fn fixtures(args: &[String]) -> Result<()> {
    let python = match args {
        [flag, path] if flag == "--python" => path.clone(),
        _ => bail!("usage: cargo xtask fixtures --python PATH (a Python with torch, sae-lens and eai-sparsify; see fixtures/README.md)"),
    };
    run("reference fixtures", Command::new(python).arg("fixtures/generate_reference.py").env("SPARSIFY_DISABLE_TRITON", "1"))
}
