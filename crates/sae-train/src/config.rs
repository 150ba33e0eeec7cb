//! The training config: a TOML file (documented in `docs/training.md`) or the same keys as flags.

use std::path::{Path, PathBuf};

use sae_data::stats::NonFinitePolicy;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{Result, TrainError};
use crate::schedule::LrDecay;

/// How `b_dec` is initialised before training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BDecInit {
    /// The geometric median of a sample (Weiszfeld), as in Anthropic's and SAELens's trainers.
    #[default]
    GeometricMedian,
    /// The mean of a sample.
    Mean,
    /// Zeros (the architecture's own initialisation).
    Zeros,
}

/// Activation normalisation during training.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TrainNormalization {
    /// Train on raw activations.
    #[default]
    None,
    /// Scale activations by one scalar so that E‖x‖ = √d_in; folded into the weights on save.
    ExpectedAverageOnlyIn,
}

fn d_batch() -> usize {
    4096
}
fn d_lr() -> f64 {
    4e-4
}
fn d_beta1() -> f64 {
    0.9
}
fn d_beta2() -> f64 {
    0.999
}
fn d_eps() -> f64 {
    1e-8
}
fn d_decay_fraction() -> f64 {
    0.2
}
fn d_dead_tokens() -> u64 {
    10_000_000
}
fn d_log_every() -> u64 {
    50
}
fn d_buffer() -> usize {
    1 << 18
}
fn d_stats_rows() -> usize {
    32_768
}

/// One SAE to train: its architecture, width and hyperparameters (`k`, `l1_coefficient`, ...,
/// any key the architecture reads).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaeSpec {
    /// Name of the output subdirectory (default: `{architecture}-{d_sae}[-k{k}]-s{seed}`).
    #[serde(default)]
    pub name: Option<String>,
    /// Registered architecture name.
    pub architecture: String,
    /// Number of latents.
    pub d_sae: usize,
    /// Initialisation seed (default: the run's seed).
    #[serde(default)]
    pub seed: Option<u64>,
    /// Learning rate for this SAE (default: the run's).
    #[serde(default)]
    pub lr: Option<f64>,
    /// Architecture hyperparameters.
    #[serde(flatten)]
    pub hyper: Map<String, Value>,
}

/// A whole training run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainConfig {
    /// The activation store to train on.
    pub data: PathBuf,
    /// Output directory.
    pub out: PathBuf,
    /// Tokens to train on (default: the whole store once).
    #[serde(default)]
    pub tokens: Option<u64>,
    /// Rows per step.
    #[serde(default = "d_batch")]
    pub batch_size: usize,
    /// Seed of the data order and (by default) of every SAE's initialisation.
    #[serde(default)]
    pub seed: u64,
    /// Peak learning rate.
    #[serde(default = "d_lr")]
    pub lr: f64,
    /// Linear learning-rate warm-up steps.
    #[serde(default)]
    pub lr_warmup_steps: u64,
    /// Learning-rate decay.
    #[serde(default)]
    pub lr_decay: LrDecay,
    /// Fraction of the run (at its end) over which the learning rate decays.
    #[serde(default = "d_decay_fraction")]
    pub lr_decay_fraction: f64,
    /// Adam β₁.
    #[serde(default = "d_beta1")]
    pub adam_beta1: f64,
    /// Adam β₂.
    #[serde(default = "d_beta2")]
    pub adam_beta2: f64,
    /// Adam ε.
    #[serde(default = "d_eps")]
    pub adam_eps: f64,
    /// Clip the gradients' joint L2 norm to this value (off when absent).
    #[serde(default)]
    pub grad_clip_norm: Option<f64>,
    /// Steps over which sparsity coefficients ramp up linearly.
    #[serde(default)]
    pub sparsity_warmup_steps: u64,
    /// A latent is dead after this many tokens without firing.
    #[serde(default = "d_dead_tokens")]
    pub dead_tokens: u64,
    /// Write a checkpoint every this many steps (0: only at the end).
    #[serde(default)]
    pub checkpoint_every: u64,
    /// Write a metrics line every this many steps.
    #[serde(default = "d_log_every")]
    pub log_every: u64,
    /// How to initialise `b_dec`.
    #[serde(default)]
    pub b_dec_init: BDecInit,
    /// Activation normalisation.
    #[serde(default)]
    pub normalize_activations: TrainNormalization,
    /// What to do with rows holding NaN or infinity.
    #[serde(default)]
    pub nonfinite: NonFinitePolicy,
    /// Rows held by the shuffling buffer.
    #[serde(default = "d_buffer")]
    pub shuffle_buffer_rows: usize,
    /// Resample dead latents every this many steps (0: never); meant for the L1 family.
    #[serde(default)]
    pub resample_dead_every: u64,
    /// Rows sampled for normalisation statistics and the `b_dec` initialisation.
    #[serde(default = "d_stats_rows")]
    pub stats_rows: usize,
    /// The SAEs trained together from one pass over the data.
    #[serde(rename = "sae", default)]
    pub saes: Vec<SaeSpec>,
}

impl TrainConfig {
    /// A config with defaults for everything but the data, output and SAEs.
    pub fn new(data: impl Into<PathBuf>, out: impl Into<PathBuf>, saes: Vec<SaeSpec>) -> Self {
        let mut cfg: TrainConfig = serde_json::from_value(serde_json::json!({"data": "", "out": ""})).unwrap_or_else(|_| unreachable!("defaults parse"));
        cfg.data = data.into();
        cfg.out = out.into();
        cfg.saes = saes;
        cfg
    }

    /// Parses TOML text; `path` names the file in errors (unknown keys and bad values included).
    pub fn from_toml(text: &str, path: &Path) -> Result<Self> {
        let de = toml::Deserializer::parse(text).map_err(|e| TrainError::config(path, "-", e.to_string()))?;
        let cfg: TrainConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let at = e.path().to_string();
            let reason = e.inner().to_string();
            let field = if at == "." { reason.split('`').nth(1).filter(|_| reason.contains("field")).unwrap_or("-").to_string() } else { at };
            TrainError::config(path, field, reason)
        })?;
        Ok(cfg)
    }

    /// Reads and parses a TOML file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| TrainError::config(path, "-", format!("cannot read: {e}")))?;
        Self::from_toml(&text, path)
    }

    /// Checks values that parse but cannot work (`origin` names the config in errors).
    pub fn validate(&self, origin: &Path) -> Result<()> {
        let bad = |field: &str, reason: String| Err(TrainError::config(origin, field, reason));
        if self.batch_size == 0 {
            return bad("batch_size", "must be positive".into());
        }
        if !(self.lr.is_finite() && self.lr > 0.0) {
            return bad("lr", format!("must be a positive number, got {}", self.lr));
        }
        if !(0.0..1.0).contains(&self.adam_beta1) || !(0.0..1.0).contains(&self.adam_beta2) {
            return bad("adam_beta1", "betas must be in [0, 1)".into());
        }
        if !(self.adam_eps > 0.0) {
            return bad("adam_eps", "must be positive".into());
        }
        if !(0.0..=1.0).contains(&self.lr_decay_fraction) {
            return bad("lr_decay_fraction", format!("must be in [0, 1], got {}", self.lr_decay_fraction));
        }
        if let Some(c) = self.grad_clip_norm.filter(|c| !(*c > 0.0)) {
            return bad("grad_clip_norm", format!("must be positive, got {c}"));
        }
        if self.log_every == 0 {
            return bad("log_every", "must be positive".into());
        }
        if self.saes.is_empty() {
            return bad("sae", "no SAE to train: add a [[sae]] table (or --arch/--d-sae)".into());
        }
        let mut names = std::collections::HashSet::new();
        for (i, s) in self.saes.iter().enumerate() {
            if s.d_sae == 0 {
                return bad(&format!("sae[{i}].d_sae"), "must be positive".into());
            }
            if let Some(lr) = s.lr.filter(|lr| !(lr.is_finite() && *lr > 0.0)) {
                return bad(&format!("sae[{i}].lr"), format!("must be a positive number, got {lr}"));
            }
            let name = self.sae_name(i);
            // The name is a directory under `out`: one plain component, never a path that leaves it.
            let plain = !name.is_empty() && name != "." && name != ".." && !name.contains(['/', '\\']) && !name.starts_with('.');
            if !plain {
                return bad(&format!("sae[{i}].name"), format!("`{name}` must be a plain directory name (no `/`, `..` or leading `.`): it is created under `out`"));
            }
            if !names.insert(self.sae_name(i)) {
                return bad(&format!("sae[{i}].name"), format!("`{}` is used twice", self.sae_name(i)));
            }
        }
        Ok(())
    }

    /// The output name of SAE `i`.
    pub fn sae_name(&self, i: usize) -> String {
        let s = &self.saes[i];
        s.name.clone().unwrap_or_else(|| {
            let k = s.hyper.get("k").map(|k| format!("-k{k}")).unwrap_or_default();
            format!("{}-{}{k}-s{}", s.architecture, s.d_sae, s.seed.unwrap_or(self.seed))
        })
    }
}
