//! # sae-train
//!
//! Trains any architecture of a [`Registry`](sae_core::Registry) on an activation store, on any
//! burn backend: Adam with warm-up and decay, sparsity warm-up, gradient clipping, the
//! architecture's own gradient projection and post-step hooks, `b_dec` initialised to the
//! geometric median, normalisation folded into the saved weights, dead latents tracked in
//! tokens (for AuxK), several SAEs from one pass over the data, JSON-lines metrics, and
//! checkpoints from which a killed run resumes bit-identically.
//!
//! ```
//! use burn::tensor::Device;
//! use sae_data::synthetic::{SyntheticConfig, SyntheticGenerator};
//! use sae_train::{SaeSpec, TrainConfig, Trainer};
//!
//! let tmp = std::env::temp_dir().join(format!("sae-train-doc-{}", std::process::id()));
//! # std::fs::remove_dir_all(&tmp).ok();
//! let synth = SyntheticConfig { d_in: 8, n_features: 16, tokens: 2048, parents: 0, ..Default::default() };
//! SyntheticGenerator::new(synth)?.write_store(&tmp.join("store"), |_| {})?;
//! let spec: SaeSpec = serde_json::from_value(serde_json::json!({"architecture": "topk", "d_sae": 16, "k": 2}))?;
//! let mut cfg = TrainConfig::new(tmp.join("store"), tmp.join("out"), vec![spec]);
//! cfg.batch_size = 256;
//! let mut trainer = Trainer::new(cfg, "<doc>".as_ref(), &sae_arch::registry(), &Device::flex(), sae_train::Start::Fresh)?;
//! let summary = trainer.run(|_| {})?;
//! assert_eq!(summary.steps, 8);
//! assert!(tmp.join("out/cfg.json").is_file());
//! # std::fs::remove_dir_all(&tmp).ok();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(missing_docs)]

pub mod adam;
pub mod bench;
pub mod checkpoint;
pub mod config;
pub mod dead;
pub mod error;
pub mod export;
pub mod metrics;
pub mod plot;
pub mod resample;
pub mod schedule;
pub mod step;
pub mod trainer;

pub use config::{SaeSpec, TrainConfig};
pub use error::{Result, TrainError};
pub use metrics::{Curve, StepMetrics};
pub use step::{StepResult, optimisation_step};
pub use trainer::{Progress, RunSummary, Start, Trainer};
