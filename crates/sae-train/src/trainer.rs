//! The training loop: one pass over a shuffled activation stream trains every configured SAE.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::format::lock::DirLock;
use sae_core::format::{Format, StoreDtype, save_sae};
use sae_core::params::host_f32;
use sae_core::{Registry, Sae, SaeConfig, TrainContext};
use sae_data::batches::{BatchStream, ShuffleSettings};
use sae_data::stats::{NormStats, filter_nonfinite, geometric_median, sample_rows};
use sae_core::ActivationSource;
use sae_data::store::ActivationStore;

use crate::adam::Adam;
use crate::export::{ExportedSae, fold_scale};
use crate::metrics::StepMetrics;
use crate::step::{StepResult, optimisation_step};
use crate::checkpoint::{self, RunState, SaeState, SaeTensors};
use crate::config::{BDecInit, TrainConfig, TrainNormalization};
use crate::dead::DeadTracker;
use crate::error::{Result, TrainError};
use crate::schedule::{LrSchedule, sparsity_scale};

/// File of per-step metrics (JSON lines) in the output directory.
pub const METRICS_FILE: &str = "metrics.jsonl";

/// One SAE being trained.
#[derive(Debug)]
struct SaeRun {
    name: String,
    sae: Box<dyn Sae>,
    adam: Adam,
    dead: DeadTracker,
    lr: f64,
}

/// What the progress callback sees after each step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Progress {
    /// Steps completed.
    pub step: u64,
    /// Total steps of the run.
    pub total_steps: u64,
    /// Tokens consumed.
    pub tokens: u64,
}

/// Final figures of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSummary {
    /// Steps completed.
    pub steps: u64,
    /// Rows dropped for non-finite values.
    pub skipped_rows: u64,
    /// Output directory of each SAE, in config order.
    pub outputs: Vec<PathBuf>,
}

/// How a run treats what is already in its output directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Start {
    /// A new run; an output directory that already holds a trained SAE or a checkpoint is an
    /// error (nothing is overwritten without being asked).
    #[default]
    Fresh,
    /// Continue from the newest checkpoint in the output directory.
    Resume,
    /// A new run that replaces whatever the output directory holds.
    Overwrite,
}

/// A training run over one activation source (an on-disk store, or any [`ActivationSource`]).
pub struct Trainer {
    cfg: TrainConfig,
    origin: PathBuf,
    device: Device,
    store: Box<dyn ActivationSource>,
    runs: Vec<SaeRun>,
    step: u64,
    position: u64,
    skipped_rows: u64,
    norm_scale: f32,
    total_steps: u64,
    /// The output directory's lock, held for the trainer's life.
    _lock: DirLock,
}

/// What a previous run left in `out` that a fresh run would replace: a trained SAE (its own or
/// one per subdirectory), a checkpoint, or a metrics log.
fn previous_output(out: &Path) -> Option<String> {
    if out.join("cfg.json").is_file() {
        return Some("a trained SAE (cfg.json)".into());
    }
    if out.join(checkpoint::CHECKPOINT_DIR).exists() {
        return Some(format!("a checkpoint ({})", checkpoint::CHECKPOINT_DIR));
    }
    if out.join(METRICS_FILE).is_file() {
        return Some(format!("a training log ({METRICS_FILE})"));
    }
    let entries = std::fs::read_dir(out).ok()?;
    entries.flatten().find(|e| e.path().join("cfg.json").is_file()).map(|e| format!("a trained SAE ({}/cfg.json)", e.file_name().to_string_lossy()))
}

impl std::fmt::Debug for Trainer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trainer").field("out", &self.cfg.out).field("step", &self.step).field("total_steps", &self.total_steps).finish()
    }
}

fn config_json(cfg: &TrainConfig) -> serde_json::Value {
    serde_json::to_value(cfg).unwrap_or(serde_json::Value::Null)
}

impl Trainer {
    /// Prepares a run: opens the store, and either starts fresh (initialising each SAE from its
    /// seed, `b_dec` from the data) or, with `resume`, continues from the newest checkpoint in
    /// the output directory. `origin` names the config in errors; `device` is a plain (not
    /// autodiff) device: autodiff is switched on per step.
    pub fn new(cfg: TrainConfig, origin: &Path, registry: &Registry, device: &Device, start: Start) -> Result<Self> {
        cfg.validate(origin)?;
        let store = ActivationStore::open(&cfg.data)?;
        store.require_complete()?;
        Self::with_source(cfg, Box::new(store), origin, registry, device, start)
    }

    /// [`Trainer::new`] on rows from `store` instead of the store directory `cfg.data` (which
    /// then only names the data in the saved config).
    pub fn with_source(cfg: TrainConfig, store: Box<dyn ActivationSource>, origin: &Path, registry: &Registry, device: &Device, start: Start) -> Result<Self> {
        cfg.validate(origin)?;
        // Held for the whole run: a second run on the same directory is refused, not interleaved.
        let lock = DirLock::acquire(&cfg.out)?;
        if start == Start::Fresh
            && let Some(found) = previous_output(&cfg.out)
        {
            return Err(TrainError::config(origin, "out", format!("{} already holds {found}; pass --resume to continue it or --force to replace it", cfg.out.display())));
        }
        let device = device.clone().inner();
        if store.is_empty() {
            return Err(TrainError::config(origin, "data", format!("{} holds no activations", store.name())));
        }
        let tokens = cfg.tokens.unwrap_or(store.len());
        let total_steps = tokens.div_ceil(cfg.batch_size as u64);
        let mut runs = Vec::with_capacity(cfg.saes.len());
        for (i, spec) in cfg.saes.iter().enumerate() {
            if spec.hyper.contains_key("d_out") {
                return Err(TrainError::config(origin, format!("sae[{i}].d_out"), "training transcoders from a store of one hook is not supported yet"));
            }
            let in_spec = |e: sae_core::SaeError| match e {
                sae_core::SaeError::Config { field, reason, .. } => TrainError::config(origin, format!("sae[{i}].{field}"), reason),
                other => other.into(),
            };
            // A key the architecture does not read is a typo in a hand-written config: report it
            // rather than train without it and copy it into cfg.json.
            if let Some(known) = registry.get(&spec.architecture).and_then(|a| a.hyper_keys()) {
                if let Some(key) = spec.hyper.keys().find(|k| !known.contains(&k.as_str()) && !SaeConfig::SHARED_KEYS.contains(&k.as_str())) {
                    let arch = registry.get(&spec.architecture).map_or("", |a| a.name());
                    return Err(TrainError::config(origin, format!("sae[{i}].{key}"), format!("unknown key for `{arch}`; it reads {}", known.join(", "))));
                }
            }
            // The spec's keys read as cfg.json's: shared fields (`apply_b_dec_to_input`, ...) land
            // in their fields, the rest are the architecture's.
            let mut fields = spec.hyper.clone();
            fields.insert("architecture".into(), spec.architecture.clone().into());
            fields.insert("d_in".into(), store.d_in().into());
            fields.insert("d_sae".into(), spec.d_sae.into());
            let sc = SaeConfig::from_json_value(serde_json::Value::Object(fields), origin).map_err(in_spec)?;
            let seed = spec.seed.unwrap_or(cfg.seed);
            let sae = registry.init(sc, &device, seed).map_err(in_spec)?;
            let d_sae = sae.config().d_sae;
            runs.push(SaeRun {
                name: cfg.sae_name(i),
                sae,
                adam: Adam::new(cfg.adam_beta1, cfg.adam_beta2, cfg.adam_eps),
                dead: DeadTracker::new(d_sae, cfg.dead_tokens),
                lr: spec.lr.unwrap_or(cfg.lr),
            });
        }
        let mut trainer = Self { cfg, origin: origin.to_path_buf(), device, store, runs, step: 0, position: 0, skipped_rows: 0, norm_scale: 1.0, total_steps, _lock: lock };
        std::fs::create_dir_all(&trainer.cfg.out).map_err(|e| TrainError::config(origin, "out", format!("cannot create {}: {e}", trainer.cfg.out.display())))?;
        if start == Start::Resume {
            let dir = checkpoint::find(&trainer.cfg.out).ok_or_else(|| TrainError::Checkpoint {
                path: trainer.cfg.out.join(checkpoint::CHECKPOINT_DIR),
                reason: "no checkpoint to resume from".into(),
            })?;
            trainer.restore(&dir)?;
        } else {
            trainer.initialise_from_data()?;
            // A fresh run starts a fresh metrics log.
            let _ = std::fs::remove_file(trainer.cfg.out.join(METRICS_FILE));
        }
        Ok(trainer)
    }

    /// Total steps of the run.
    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }

    /// Steps completed.
    pub fn step(&self) -> u64 {
        self.step
    }

    fn initialise_from_data(&mut self) -> Result<()> {
        let d = self.store.d_in();
        let sample = sample_rows(self.store.as_ref(), self.cfg.stats_rows)?;
        let stats = NormStats::from_rows(&sample, d)?;
        self.norm_scale = match self.cfg.normalize_activations {
            TrainNormalization::None => 1.0,
            TrainNormalization::ExpectedAverageOnlyIn => stats.scale(),
        };
        let centre = match self.cfg.b_dec_init {
            BDecInit::Zeros => None,
            BDecInit::Mean => Some(stats.mean.clone()),
            BDecInit::GeometricMedian => Some(geometric_median(&sample, d, 100, 1e-6)?),
        };
        if let Some(c) = centre {
            let scaled: Vec<f32> = c.iter().map(|v| v * self.norm_scale).collect();
            for run in &mut self.runs {
                if run.sae.params().contains("b_dec") && run.sae.config().apply_b_dec_to_input {
                    run.sae.params_mut().set_vector("b_dec", Tensor::from_data(TensorData::new(scaled.clone(), [d]), &self.device));
                }
            }
        }
        Ok(())
    }

    fn state(&self) -> RunState {
        RunState {
            step: self.step,
            position: self.position,
            skipped_rows: self.skipped_rows,
            norm_scale: self.norm_scale,
            config: config_json(&self.cfg),
            saes: self.runs.iter().map(|r| SaeState { adam_step: r.adam.step, since_fired: r.dead.since_fired.clone() }).collect(),
        }
    }

    fn restore(&mut self, dir: &Path) -> Result<()> {
        let (state, tensors) = checkpoint::load(dir, self.runs.len(), &self.device)?;
        // Only settings that do not change the trajectory may differ (logging, checkpoints).
        let mut saved = state.config.clone();
        let mut now = config_json(&self.cfg);
        for v in [&mut saved, &mut now] {
            if let Some(o) = v.as_object_mut() {
                for k in ["checkpoint_every", "log_every", "out", "data"] {
                    o.remove(k);
                }
            }
        }
        if saved != now {
            return Err(TrainError::Checkpoint { path: dir.to_path_buf(), reason: "was written by a run with a different config; start a new run or restore the config".into() });
        }
        self.step = state.step;
        self.position = state.position;
        self.skipped_rows = state.skipped_rows;
        self.norm_scale = state.norm_scale;
        for ((run, s), t) in self.runs.iter_mut().zip(state.saes).zip(tensors) {
            let cfg = run.sae.config().clone();
            t.params.check_schema(&run.sae.params().iter().map(|(n, p)| (n.to_string(), p.shape())).collect::<Vec<_>>(), dir, &cfg.architecture)?;
            *run.sae.params_mut() = t.params;
            run.adam.step = s.adam_step;
            run.adam.m = t.adam_m;
            run.adam.v = t.adam_v;
            if s.since_fired.len() != run.dead.since_fired.len() {
                return Err(TrainError::Checkpoint { path: dir.to_path_buf(), reason: format!("dead-latent counters of `{}` have the wrong length", run.name) });
            }
            run.dead.since_fired = s.since_fired;
        }
        // Drop metric lines written after the checkpoint, so the log matches an uninterrupted run.
        let metrics = self.cfg.out.join(METRICS_FILE);
        if let Ok(text) = std::fs::read_to_string(&metrics) {
            let kept: String = text
                .lines()
                .filter(|l| StepMetrics::from_json_line(l).is_some_and(|m| m.step <= self.step))
                .map(|l| format!("{l}\n"))
                .collect();
            sae_core::format::atomic::write_atomic(&metrics, kept.as_bytes())?;
        }
        Ok(())
    }

    /// Writes a checkpoint of the current state.
    pub fn checkpoint(&self) -> Result<()> {
        let tensors: Vec<SaeTensors> = self
            .runs
            .iter()
            .map(|r| SaeTensors { params: r.sae.params().clone(), adam_m: r.adam.m.clone(), adam_v: r.adam.v.clone() })
            .collect();
        checkpoint::save(&self.cfg.out, &self.state(), &tensors)
    }

    /// Runs to the end, calling `progress` after every step; checkpoints every
    /// `checkpoint_every` steps and at the end; then saves each SAE in the SAELens format.
    pub fn run(&mut self, mut progress: impl FnMut(Progress)) -> Result<RunSummary> {
        let settings = ShuffleSettings { chunk_rows: 1024, buffer_rows: self.cfg.shuffle_buffer_rows.max(1), seed: self.cfg.seed };
        let store = self.store.as_ref();
        let mut stream = BatchStream::new(store, settings, self.position)?;
        let d = store.d_in();
        let mut log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.cfg.out.join(METRICS_FILE))
            .map_err(|e| TrainError::config(&self.origin, "out", format!("cannot write metrics: {e}")))?;
        while self.step < self.total_steps {
            let first_row = stream.position();
            let mut rows = stream.next_batch(self.cfg.batch_size)?;
            self.skipped_rows += filter_nonfinite(&mut rows, d, self.cfg.nonfinite, &store.name(), first_row)? as u64;
            self.position = stream.position();
            let n = rows.len() / d;
            if n == 0 {
                self.step += 1;
                continue;
            }
            if self.norm_scale != 1.0 {
                rows.iter_mut().for_each(|v| *v *= self.norm_scale);
            }
            let step = self.step;
            let resample_now = self.cfg.resample_dead_every > 0 && (step + 1) % self.cfg.resample_dead_every == 0;
            let host_rows = resample_now.then(|| rows.clone());
            let x = Tensor::<2>::from_data(TensorData::new(rows, [n, d]), &self.device);
            let log_now = (step + 1) % self.cfg.log_every == 0 || step + 1 == self.total_steps;
            for run in &mut self.runs {
                let lr = LrSchedule { lr: run.lr, warmup_steps: self.cfg.lr_warmup_steps, decay: self.cfg.lr_decay, decay_fraction: self.cfg.lr_decay_fraction, total_steps: self.total_steps }.at(step);
                let ctx = TrainContext { dead_mask: run.dead.mask(&self.device), n_dead: run.dead.n_dead(), sparsity_scale: sparsity_scale(step, self.cfg.sparsity_warmup_steps) };
                let logged = train_step(run, &x, &ctx, lr, self.cfg.grad_clip_norm, log_now)?;
                if let Some(partial) = logged {
                    let line = StepMetrics { step: step + 1, tokens: self.position, sae: run.name.clone(), lr, ..partial };
                    writeln!(log, "{}", line.to_json_line()).map_err(|e| TrainError::config(&self.origin, "out", format!("writing metrics: {e}")))?;
                }
            }
            if let Some(host) = &host_rows {
                for (i, run) in self.runs.iter_mut().enumerate() {
                    let dead: Vec<bool> = run.dead.since_fired.iter().map(|s| *s >= run.dead.threshold).collect();
                    if !dead.iter().any(|d| *d) {
                        continue;
                    }
                    let recon = host_f32(run.sae.forward(x.clone())?.output.into_data())?;
                    let seed = self.cfg.seed ^ (step + 1).wrapping_mul(0x9E37_79B9) ^ (i as u64) << 48;
                    let n_resampled = crate::resample::resample_dead_latents(run.sae.as_mut(), &mut run.adam, &dead, host, &recon, d, seed)?;
                    if n_resampled > 0 {
                        run.dead.since_fired.iter_mut().zip(&dead).filter(|(_, d)| **d).for_each(|(s, _)| *s = 0);
                    }
                }
            }
            self.step += 1;
            progress(Progress { step: self.step, total_steps: self.total_steps, tokens: self.position });
            if self.cfg.checkpoint_every > 0 && self.step % self.cfg.checkpoint_every == 0 && self.step < self.total_steps {
                log.flush().ok();
                self.checkpoint()?;
            }
        }
        log.flush().ok();
        self.checkpoint()?;
        let outputs = self.save_outputs()?;
        Ok(RunSummary { steps: self.step, skipped_rows: self.skipped_rows, outputs })
    }

    /// Saves each SAE (inference form, normalisation folded in) in the SAELens format: in the
    /// output directory itself for a single SAE, else in a subdirectory per SAE.
    pub fn save_outputs(&self) -> Result<Vec<PathBuf>> {
        let mut outputs = Vec::new();
        let single = self.runs.len() == 1;
        for run in &self.runs {
            let dir = if single { self.cfg.out.clone() } else { self.cfg.out.join(&run.name) };
            let (cfg, mut params) = run.sae.inference_export()?;
            fold_scale(&mut params, self.norm_scale);
            let exported = ExportedSae { cfg, params };
            save_sae(&exported, &dir, Format::SaeLens, StoreDtype::F32)?;
            outputs.push(dir);
        }
        Ok(outputs)
    }
}

/// One optimisation step of one SAE; returns its metrics when `log` is set (with the step,
/// tokens, name and learning rate left for the caller to fill in).
fn train_step(run: &mut SaeRun, x: &Tensor<2>, ctx: &TrainContext, lr: f64, clip: Option<f64>, log: bool) -> Result<Option<StepMetrics>> {
    let StepResult { out, grad_norm } = optimisation_step(run.sae.as_mut(), &mut run.adam, x, ctx, lr, clip)?;
    let n = x.dims()[0];
    let fires = run.dead.record(&out.codes)?;
    if !log {
        return Ok(None);
    }
    let terms = out.term_values().into_iter().map(|(name, v)| (name, f64::from(v))).collect();
    let output = out.output.detach().without_autodiff();
    let fvu = sae_arch::affine::fvu(output, x.clone()).into_scalar::<f32>();
    Ok(Some(StepMetrics {
        terms,
        loss: f64::from(out.loss.clone().into_scalar::<f32>()),
        l0: fires.iter().map(|f| *f as f64).sum::<f64>() / n as f64,
        fvu: f64::from(fvu),
        dead_fraction: run.dead.n_dead() as f64 / run.dead.since_fired.len() as f64,
        grad_norm,
        step: 0,
        tokens: 0,
        sae: String::new(),
        lr: 0.0,
    }))
}

