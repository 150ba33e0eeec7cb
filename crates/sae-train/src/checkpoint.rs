//! Checkpoints: everything needed to continue a run bit-identically (weights, Adam moments,
//! dead-latent counters, step, data position), written as a directory that replaces the
//! previous one only once it is complete.
//!
//! Layout of `OUT/checkpoint/`: `state.json` (counters, the config it belongs to) and per SAE
//! `sae{i}.params.safetensors`, `sae{i}.adam_m.safetensors`, `sae{i}.adam_v.safetensors`.
//! A new checkpoint is written to `OUT/.checkpoint-new/`, then the old directory is renamed
//! away and the new one into place; if a crash interrupts the swap, `load` finds the newest
//! complete copy.

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use sae_core::format::safetensors_io::{StoreDtype, read_safetensors, write_safetensors};
use sae_core::{ParamSet, ParamTensor};
use serde::{Deserialize, Serialize};

use crate::error::{Result, TrainError};

/// Directory name of the current checkpoint inside the output directory.
pub const CHECKPOINT_DIR: &str = "checkpoint";
const NEW_DIR: &str = ".checkpoint-new";
const OLD_DIR: &str = ".checkpoint-old";

/// Counters of one SAE.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SaeState {
    /// Adam steps taken.
    pub adam_step: u64,
    /// Tokens since each latent fired.
    pub since_fired: Vec<u64>,
}

/// `state.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunState {
    /// Steps completed.
    pub step: u64,
    /// Rows consumed from the batch stream.
    pub position: u64,
    /// Rows dropped for non-finite values.
    pub skipped_rows: u64,
    /// The activation scale applied during training (1 when not normalising).
    pub norm_scale: f32,
    /// The config, as JSON, that the run was started with.
    pub config: serde_json::Value,
    /// Per SAE, in config order.
    pub saes: Vec<SaeState>,
}

/// Parameters and optimiser moments of one SAE.
#[derive(Debug, Clone)]
pub struct SaeTensors {
    /// Training-form parameters.
    pub params: ParamSet,
    /// Adam first moments.
    pub adam_m: ParamSet,
    /// Adam second moments.
    pub adam_v: ParamSet,
}

fn write_set(path: &Path, set: &ParamSet) -> Result<()> {
    let tensors = set.iter().map(|(n, t)| Ok((n.to_string(), t.shape(), t.to_vec()?))).collect::<sae_core::Result<Vec<(String, Vec<usize>, Vec<f32>)>>>()?;
    write_safetensors(path, &tensors, StoreDtype::F32, None)?;
    Ok(())
}

fn read_set(path: &Path, device: &Device) -> Result<ParamSet> {
    let mut set = ParamSet::new();
    for t in read_safetensors(path)? {
        let p = ParamTensor::from_host(t.values, &t.shape, device).map_err(|e| TrainError::Checkpoint { path: path.to_path_buf(), reason: e.to_string() })?;
        set.insert(t.name, p);
    }
    Ok(set)
}

/// Writes a checkpoint into `out`, replacing the previous one.
pub fn save(out: &Path, state: &RunState, saes: &[SaeTensors]) -> Result<()> {
    let new = out.join(NEW_DIR);
    let io = |action: &str, p: &Path, e: std::io::Error| TrainError::Checkpoint { path: p.to_path_buf(), reason: format!("{action}: {e}") };
    if new.exists() {
        std::fs::remove_dir_all(&new).map_err(|e| io("removing stale", &new, e))?;
    }
    std::fs::create_dir_all(&new).map_err(|e| io("creating", &new, e))?;
    for (i, s) in saes.iter().enumerate() {
        write_set(&new.join(format!("sae{i}.params.safetensors")), &s.params)?;
        write_set(&new.join(format!("sae{i}.adam_m.safetensors")), &s.adam_m)?;
        write_set(&new.join(format!("sae{i}.adam_v.safetensors")), &s.adam_v)?;
    }
    let json = serde_json::to_vec_pretty(state).map_err(|e| TrainError::Checkpoint { path: new.clone(), reason: e.to_string() })?;
    sae_core::format::atomic::write_atomic(&new.join("state.json"), &json)?;
    let current = out.join(CHECKPOINT_DIR);
    let old = out.join(OLD_DIR);
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io("removing", &old, e))?;
    }
    if current.exists() {
        std::fs::rename(&current, &old).map_err(|e| io("moving aside", &current, e))?;
    }
    std::fs::rename(&new, &current).map_err(|e| io("moving into place", &new, e))?;
    if let Ok(d) = std::fs::File::open(out) {
        let _ = d.sync_all();
    }
    if old.exists() {
        std::fs::remove_dir_all(&old).map_err(|e| io("removing", &old, e))?;
    }
    Ok(())
}

/// The directory of the newest complete checkpoint in `out`, if any.
pub fn find(out: &Path) -> Option<PathBuf> {
    // `checkpoint` is complete whenever it exists; if the swap was interrupted after moving it
    // aside, the old copy is the newest complete one (the new one may be partial).
    [CHECKPOINT_DIR, OLD_DIR].iter().map(|d| out.join(d)).find(|d| d.join("state.json").is_file())
}

/// Loads the checkpoint in `dir` with `n_saes` SAEs onto `device`.
pub fn load(dir: &Path, n_saes: usize, device: &Device) -> Result<(RunState, Vec<SaeTensors>)> {
    let state_path = dir.join("state.json");
    let text = std::fs::read_to_string(&state_path).map_err(|e| TrainError::Checkpoint { path: state_path.clone(), reason: e.to_string() })?;
    let state: RunState = serde_json::from_str(&text).map_err(|e| TrainError::Checkpoint { path: state_path.clone(), reason: e.to_string() })?;
    if state.saes.len() != n_saes {
        return Err(TrainError::Checkpoint { path: state_path, reason: format!("holds {} SAEs, the config has {n_saes}", state.saes.len()) });
    }
    let mut saes = Vec::with_capacity(n_saes);
    for i in 0..n_saes {
        saes.push(SaeTensors {
            params: read_set(&dir.join(format!("sae{i}.params.safetensors")), device)?,
            adam_m: read_set(&dir.join(format!("sae{i}.adam_m.safetensors")), device)?,
            adam_v: read_set(&dir.join(format!("sae{i}.adam_v.safetensors")), device)?,
        });
    }
    Ok((state, saes))
}
