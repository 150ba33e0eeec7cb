//! `sae train`: train SAEs on an activation store from a TOML config or flags.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use sae_train::{TrainConfig, Trainer};

use crate::backend::Backend;
use crate::progress::bar;

/// Arguments of `sae train`. Either `--config FILE.toml`, or the short form `--data --arch
/// --d-sae --out`; `--set key=value` overrides any config key in both.
#[derive(Debug, Args)]
pub struct TrainArgs {
    /// TOML config (see docs/training.md).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Continue from the newest checkpoint in the output directory.
    #[arg(long)]
    resume: bool,
    /// Replace what the output directory holds (a trained SAE, a checkpoint); without it (or
    /// --resume) such a directory is an error.
    #[arg(long)]
    force: bool,
    /// Activation store.
    #[arg(long)]
    data: Option<PathBuf>,
    /// Architecture of the (single) SAE.
    #[arg(long)]
    arch: Option<String>,
    /// Latents.
    #[arg(long)]
    d_sae: Option<usize>,
    /// k for the TopK family.
    #[arg(long)]
    k: Option<f64>,
    /// Output directory.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Seed.
    #[arg(long)]
    seed: Option<u64>,
    /// Tokens to train on (default: the whole store).
    #[arg(long)]
    tokens: Option<u64>,
    /// Checkpoint every N steps.
    #[arg(long)]
    checkpoint_every: Option<u64>,
    /// Rows per step.
    #[arg(long)]
    batch_size: Option<usize>,
    /// Learning rate.
    #[arg(long)]
    lr: Option<f64>,
    /// Any other config key, as `key=value` (TOML value syntax), repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Compute backend.
    #[arg(long, value_enum, default_value_t = Backend::default())]
    backend: Backend,
}

/// `v` as a TOML integer (an `i64`): a larger value is an error, not a negative number.
fn toml_int(flag: &str, v: u64) -> Result<toml::Value> {
    match i64::try_from(v) {
        Ok(i) => Ok(i.into()),
        Err(_) => bail!("--{flag} {v} is larger than a config integer can hold ({})", i64::MAX),
    }
}

fn build_config(a: &TrainArgs) -> Result<(TrainConfig, PathBuf)> {
    let (mut table, origin) = match &a.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
            let table: toml::Table = text.parse().map_err(|e| anyhow::anyhow!("invalid training config {}: {e}", path.display()))?;
            (table, path.clone())
        }
        None => (toml::Table::new(), PathBuf::from("<flags>")),
    };
    let mut put = |k: &str, v: toml::Value| {
        table.insert(k.to_string(), v);
    };
    if let Some(v) = &a.data {
        put("data", v.display().to_string().into());
    }
    if let Some(v) = &a.out {
        put("out", v.display().to_string().into());
    }
    if let Some(v) = a.seed {
        put("seed", toml_int("seed", v as u64)?);
    }
    if let Some(v) = a.tokens {
        put("tokens", toml_int("tokens", v as u64)?);
    }
    if let Some(v) = a.checkpoint_every {
        put("checkpoint_every", toml_int("checkpoint-every", v as u64)?);
    }
    if let Some(v) = a.batch_size {
        put("batch_size", toml_int("batch-size", v as u64)?);
    }
    if let Some(v) = a.lr {
        put("lr", v.into());
    }
    for kv in &a.set {
        let Some((k, v)) = kv.split_once('=') else { bail!("--set expects KEY=VALUE, got `{kv}`") };
        let value: toml::Value = format!("v = {v}").parse::<toml::Table>().ok().and_then(|mut t| t.remove("v")).unwrap_or_else(|| v.into());
        table.insert(k.trim().to_string(), value);
    }
    if a.arch.is_some() || a.d_sae.is_some() {
        let (Some(arch), Some(d_sae)) = (&a.arch, a.d_sae) else { bail!("the short form needs both --arch and --d-sae") };
        let mut sae = toml::Table::new();
        sae.insert("architecture".into(), arch.clone().into());
        sae.insert("d_sae".into(), toml_int("d-sae", d_sae as u64)?);
        if let Some(k) = a.k {
            // A whole k is written as an integer (TopK's k counts latents; the batch variants'
            // average k reads an integer too), a fractional one as a float.
            let value: toml::Value = if k.fract() == 0.0 && k.abs() < 1e15 { (k as i64).into() } else { k.into() };
            sae.insert("k".into(), value);
        }
        table.insert("sae".into(), toml::Value::Array(vec![toml::Value::Table(sae)]));
    } else if a.k.is_some() {
        bail!("--k belongs to the short form (--arch, --d-sae); in a config file, set `k` in the [[sae]] table");
    }
    for required in ["data", "out"] {
        if !table.contains_key(required) {
            bail!("missing `{required}`: give --{required} or set it in the config");
        }
    }
    let text = toml::to_string(&table).context("re-serialising the config")?;
    Ok((TrainConfig::from_toml(&text, &origin)?, origin))
}

/// Runs `sae train`.
pub fn run(a: TrainArgs) -> Result<()> {
    let (cfg, origin) = build_config(&a)?;
    // Refuse an SAE the machine cannot hold before initialising it (an allocation failure
    // aborts without a message).
    if let Ok(store) = sae_data::store::ActivationStore::open(&cfg.data) {
        for (i, spec) in cfg.saes.iter().enumerate() {
            crate::memory::ensure_fits(&format!("sae[{i}] (d_in {}, d_sae {})", store.d_in(), spec.d_sae), crate::memory::training_bytes(store.d_in(), spec.d_sae))?;
        }
    }
    let device = a.backend.device()?;
    let out = cfg.out.clone();
    let start = match (a.resume, a.force) {
        (true, true) => bail!("--resume continues a run and --force replaces it: give one"),
        (true, false) => sae_train::Start::Resume,
        (false, true) => sae_train::Start::Overwrite,
        (false, false) => sae_train::Start::Fresh,
    };
    let mut trainer = Trainer::new(cfg, Path::new(&origin), &crate::policy::registry(), &device, start)?;
    let pb = bar(trainer.total_steps(), "steps");
    pb.set_position(trainer.step());
    let start = std::time::Instant::now();
    let summary = trainer.run(|p| {
        pb.set_position(p.step);
        pb.set_message(format!("{:.0} tok/s", p.tokens as f64 / start.elapsed().as_secs_f64().max(1e-9)));
    })?;
    pb.finish_and_clear();
    say!("trained {} step(s) in {:.1} s; skipped {} non-finite row(s)", summary.steps, start.elapsed().as_secs_f64(), summary.skipped_rows);
    for o in &summary.outputs {
        say!("saved {}", o.display());
    }
    match sae_train::plot::plot_metrics(&out.join(sae_train::trainer::METRICS_FILE), &out.join("training_curves")) {
        Ok(fig) => say!("curves {} {}", fig.png.display(), fig.svg.display()),
        Err(e) => eprintln!("warning: could not draw the training curves: {e}"),
    }
    Ok(())
}
