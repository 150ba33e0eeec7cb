//! Synthetic activations built from known feature directions: the ground truth that training is
//! tested against.
//!
//! Each token is `x = Σᵢ mᵢ·fᵢ + ε` over the features `i` that fire, with unit-norm random
//! directions `fᵢ`, magnitudes `mᵢ ~ |N(μ, σ)|` and Gaussian noise `ε`. Firing follows:
//! - **Zipfian frequencies**: a root feature of rank `r` (random ranks) fires with probability
//!   `∝ r^(−α)`, scaled so that the expected number of active features per token is
//!   [`SyntheticConfig::mean_active`];
//! - **a hierarchy**: the first `parents` features each own `children_per_parent` children that
//!   fire only with their parent and are mutually exclusive (one child, with probability
//!   `child_probability`, whenever the parent fires);
//! - **correlation**: root features fall into `correlation_groups` groups; with probability
//!   `correlation` a feature's firing draw is its group's shared draw instead of its own, which
//!   makes features of a group fire together more often than by chance.
//!
//! Generation runs in blocks of [`BLOCK_ROWS`] rows, each with its own seed, so the output is
//! identical for a seed whatever the number of threads, and a killed run resumes exactly.

use std::path::Path;

use sae_core::format::safetensors_io::{StoreDtype, write_safetensors};
use sae_core::rng::SplitMix64;
use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};
use crate::store::{ActivationStore, StoreWriter};

/// Rows generated per independently seeded block.
pub const BLOCK_ROWS: usize = 4096;
/// File with the true features beside a synthetic store.
pub const GROUND_TRUTH_FILE: &str = "ground_truth.safetensors";

/// Settings of the generator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SyntheticConfig {
    /// Width of the activations.
    pub d_in: usize,
    /// Number of true features.
    pub n_features: usize,
    /// Rows to generate.
    pub tokens: u64,
    /// Seed of every random choice.
    pub seed: u64,
    /// Expected number of active features per token.
    pub mean_active: f32,
    /// Zipf exponent α of the root features' firing probabilities (0: all equal).
    pub zipf_exponent: f32,
    /// Parent features with children (0: no hierarchy).
    pub parents: usize,
    /// Children of each parent.
    pub children_per_parent: usize,
    /// Probability that one child fires when its parent fires.
    pub child_probability: f32,
    /// Probability that a root feature uses its group's shared draw (0: independent firing).
    pub correlation: f32,
    /// Number of correlation groups among root features.
    pub correlation_groups: usize,
    /// Mean magnitude of an active feature.
    pub magnitude_mean: f32,
    /// Standard deviation of the magnitude.
    pub magnitude_std: f32,
    /// Standard deviation of the per-dimension Gaussian noise.
    pub noise_std: f32,
}

impl Default for SyntheticConfig {
    fn default() -> Self {
        Self {
            d_in: 64,
            n_features: 512,
            tokens: 2_000_000,
            seed: 0,
            mean_active: 3.0,
            zipf_exponent: 0.5,
            parents: 32,
            children_per_parent: 3,
            child_probability: 0.8,
            correlation: 0.2,
            correlation_groups: 16,
            magnitude_mean: 1.0,
            magnitude_std: 0.25,
            noise_std: 0.01,
        }
    }
}

/// The true model behind the activations.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundTruth {
    /// Unit-norm feature directions, `[n_features, d_in]` row-major.
    pub features: Vec<f32>,
    /// Width.
    pub d_in: usize,
    /// Marginal firing probability of each feature.
    pub firing_probability: Vec<f32>,
    /// Parent of each feature (`None` for roots).
    pub parent: Vec<Option<usize>>,
}

impl GroundTruth {
    /// Number of features.
    pub fn n_features(&self) -> usize {
        self.parent.len()
    }

    /// Writes `features [n_features, d_in]`, `firing_probability [n_features]` and `parent
    /// [n_features]` (−1 for roots) to a safetensors file, atomically.
    pub fn save(&self, path: &Path) -> Result<()> {
        let n = self.n_features();
        let parent: Vec<f32> = self.parent.iter().map(|p| p.map_or(-1.0, |p| p as f32)).collect();
        write_safetensors(
            path,
            &[
                ("features".into(), vec![n, self.d_in], self.features.clone()),
                ("firing_probability".into(), vec![n], self.firing_probability.clone()),
                ("parent".into(), vec![n], parent),
            ],
            StoreDtype::F32,
            None,
        )?;
        Ok(())
    }

    /// Reads the `features` tensor (and, when present, the others) of a ground-truth file.
    pub fn load(path: &Path) -> Result<Self> {
        let tensors = sae_core::format::safetensors_io::read_safetensors(path)?;
        let features = tensors
            .iter()
            .find(|t| t.name == "features")
            .ok_or_else(|| DataError::Shard { path: path.to_path_buf(), reason: "no `features` tensor".into() })?;
        let [n, d] = match features.shape.as_slice() {
            [n, d] => [*n, *d],
            other => return Err(DataError::Shard { path: path.to_path_buf(), reason: format!("`features` has shape {other:?}, expected [n_features, d_in]") }),
        };
        let vector = |name: &str| tensors.iter().find(|t| t.name == name && t.values.len() == n).map(|t| t.values.clone());
        Ok(Self {
            features: features.values.clone(),
            d_in: d,
            firing_probability: vector("firing_probability").unwrap_or_else(|| vec![f32::NAN; n]),
            parent: vector("parent").map(|p| p.iter().map(|v| (*v >= 0.0).then_some(*v as usize)).collect()).unwrap_or_else(|| vec![None; n]),
        })
    }
}

/// The generator: the ground truth plus everything needed to draw rows.
#[derive(Debug, Clone)]
pub struct SyntheticGenerator {
    cfg: SyntheticConfig,
    truth: GroundTruth,
    /// Root features with their firing probability and correlation group.
    roots: Vec<(usize, f32, usize)>,
    /// Children of each parent feature.
    children: Vec<Vec<usize>>,
}

fn mix(seed: u64, stream: u64) -> u64 {
    SplitMix64::new(seed ^ stream.wrapping_mul(0xD605_BBB5_8C8A_BBB5)).next_u64()
}

impl SyntheticGenerator {
    /// Checks the settings and draws the ground truth (deterministic in `cfg.seed`).
    pub fn new(cfg: SyntheticConfig) -> Result<Self> {
        let c = &cfg;
        let need = |ok: bool, field: &str, reason: String| if ok { Ok(()) } else { Err(DataError::invalid(field, reason)) };
        need(c.d_in > 0, "d_in", "must be positive".into())?;
        need(c.n_features > 0, "n_features", "must be positive".into())?;
        need(c.parents * (1 + c.children_per_parent) <= c.n_features, "parents", format!("{} parents with {} children each need more than {} features", c.parents, c.children_per_parent, c.n_features))?;
        need(c.mean_active > 0.0 && c.mean_active.is_finite(), "mean_active", format!("must be positive, got {}", c.mean_active))?;
        need(c.zipf_exponent >= 0.0, "zipf_exponent", format!("must be ≥ 0, got {}", c.zipf_exponent))?;
        need((0.0..=1.0).contains(&c.child_probability), "child_probability", format!("must be in [0, 1], got {}", c.child_probability))?;
        need((0.0..=1.0).contains(&c.correlation), "correlation", format!("must be in [0, 1], got {}", c.correlation))?;
        need(c.correlation_groups > 0, "correlation_groups", "must be positive".into())?;
        need(c.magnitude_std >= 0.0 && c.noise_std >= 0.0, "magnitude_std/noise_std", "must be ≥ 0".into())?;

        let mut rng = SplitMix64::new(mix(c.seed, 0));
        let mut features = Vec::with_capacity(c.n_features * c.d_in);
        for _ in 0..c.n_features {
            let v: Vec<f32> = (0..c.d_in).map(|_| rng.normal()).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            features.extend(v.iter().map(|x| x / norm));
        }
        // Hierarchy: parent p (p < parents) owns features parents + p·cpp .. + cpp.
        let mut parent = vec![None; c.n_features];
        let mut children = vec![Vec::new(); c.n_features];
        for p in 0..c.parents {
            for j in 0..c.children_per_parent {
                let child = c.parents + p * c.children_per_parent + j;
                parent[child] = Some(p);
                children[p].push(child);
            }
        }
        // Zipf weights over the roots in a random rank order.
        let root_ids: Vec<usize> = (0..c.n_features).filter(|i| parent[*i].is_none()).collect();
        let mut ranks: Vec<usize> = (1..=root_ids.len()).collect();
        for i in (1..ranks.len()).rev() {
            let j = (rng.next_u64() % (i as u64 + 1)) as usize;
            ranks.swap(i, j);
        }
        let weights: Vec<f64> = ranks.iter().map(|r| (*r as f64).powf(-(c.zipf_exponent as f64))).collect();
        // Expected actives = s·(Σ w + child_probability·Σ_{parents} w).
        let child_mass: f64 = root_ids.iter().zip(&weights).filter(|(i, _)| !children[**i].is_empty()).map(|(_, w)| w).sum();
        let total = weights.iter().sum::<f64>() + c.child_probability as f64 * child_mass;
        let s = c.mean_active as f64 / total;
        let mut firing_probability = vec![0f32; c.n_features];
        let mut roots = Vec::with_capacity(root_ids.len());
        for (k, (&i, w)) in root_ids.iter().zip(&weights).enumerate() {
            let p = (s * w).min(1.0) as f32;
            firing_probability[i] = p;
            roots.push((i, p, k % c.correlation_groups));
        }
        for p in 0..c.parents {
            for &child in &children[p] {
                firing_probability[child] = firing_probability[p] * c.child_probability / c.children_per_parent as f32;
            }
        }
        let truth = GroundTruth { features, d_in: c.d_in, firing_probability, parent };
        Ok(Self { cfg, truth, roots, children })
    }

    /// The settings.
    pub fn config(&self) -> &SyntheticConfig {
        &self.cfg
    }

    /// The true features.
    pub fn ground_truth(&self) -> &GroundTruth {
        &self.truth
    }

    /// Draws block `index` (rows `index·BLOCK_ROWS ..`, at most `rows` of them), row-major.
    pub fn block(&self, index: u64, rows: usize) -> Vec<f32> {
        self.block_with_features(index, rows, None)
    }

    /// The generator of a store written by [`SyntheticGenerator::write_store`], from the store's
    /// `source` metadata; `None` when the store was not made by this generator.
    pub fn from_store_source(source: &serde_json::Value) -> Option<Result<Self>> {
        if source.get("generator").and_then(|g| g.as_str()) != Some("sae-data synthetic") {
            return None;
        }
        let cfg = source.get("config").cloned().unwrap_or_default();
        Some(serde_json::from_value::<SyntheticConfig>(cfg).map_err(|e| DataError::invalid("source.config", e.to_string())).and_then(Self::new))
    }

    /// Rows `start .. start + n` of the generated stream (clipped to `cfg.tokens`), row-major,
    /// with the features active in each: the rows of the store, regenerated with what made them.
    pub fn rows_with_active(&self, start: u64, n: usize) -> (Vec<f32>, Vec<Vec<usize>>) {
        let end = (start + n as u64).min(self.cfg.tokens);
        let (mut x, mut active) = (Vec::new(), Vec::new());
        let mut row = start;
        while row < end {
            let block = row / BLOCK_ROWS as u64;
            let block_start = block * BLOCK_ROWS as u64;
            let block_rows = (self.cfg.tokens - block_start).min(BLOCK_ROWS as u64) as usize;
            // A block's rows are drawn in order from its own seed: its first rows are the same
            // whatever the number drawn, so drawing up to the last row needed is enough.
            let upto = ((end - block_start) as usize).min(block_rows);
            let (bx, ba) = self.block_with_active(block, upto);
            let from = (row - block_start) as usize;
            x.extend_from_slice(&bx[from * self.cfg.d_in..]);
            active.extend(ba.into_iter().skip(from));
            row = block_start + upto as u64;
        }
        (x, active)
    }

    /// Like [`SyntheticGenerator::block`], also recording the features active in each row.
    pub fn block_with_active(&self, index: u64, rows: usize) -> (Vec<f32>, Vec<Vec<usize>>) {
        let mut record = Vec::with_capacity(rows);
        let x = self.block_with_features(index, rows, Some(&mut record));
        (x, record)
    }

    fn block_with_features(&self, index: u64, rows: usize, mut record: Option<&mut Vec<Vec<usize>>>) -> Vec<f32> {
        let c = &self.cfg;
        let d = c.d_in;
        let mut rng = SplitMix64::new(mix(c.seed, 1 + index));
        let mut out = vec![0f32; rows * d];
        let mut group_draw = vec![0f64; c.correlation_groups];
        let mut active: Vec<usize> = Vec::new();
        for row in out.chunks_exact_mut(d) {
            active.clear();
            for g in group_draw.iter_mut() {
                *g = rng.next_f64();
            }
            for &(i, p, g) in &self.roots {
                let shared = c.correlation > 0.0 && rng.next_f64() < c.correlation as f64;
                let u = if shared { group_draw[g] } else { rng.next_f64() };
                if u < p as f64 {
                    active.push(i);
                    let kids = &self.children[i];
                    if !kids.is_empty() && rng.next_f64() < c.child_probability as f64 {
                        active.push(kids[(rng.next_u64() % kids.len() as u64) as usize]);
                    }
                }
            }
            for &i in &active {
                let m = (c.magnitude_mean + c.magnitude_std * rng.normal()).abs();
                for (x, f) in row.iter_mut().zip(&self.truth.features[i * d..(i + 1) * d]) {
                    *x += m * f;
                }
            }
            if let Some(r) = record.as_deref_mut() {
                r.push(active.clone());
            }
            if c.noise_std > 0.0 {
                for x in row.iter_mut() {
                    *x += c.noise_std * rng.normal();
                }
            }
        }
        out
    }

    /// Writes `cfg.tokens` rows to a store in `dir` plus [`GROUND_TRUTH_FILE`], resuming an
    /// incomplete store left by a killed run. `progress` is called with the rows written so far.
    pub fn write_store(&self, dir: &Path, mut progress: impl FnMut(u64)) -> Result<ActivationStore> {
        let shard_rows = 16 * BLOCK_ROWS;
        let source = serde_json::json!({"generator": "sae-data synthetic", "config": self.cfg});
        let mut writer = if dir.join(crate::store::METADATA_FILE).exists() {
            let store = ActivationStore::open(dir)?;
            if store.metadata().source != source {
                return Err(DataError::Metadata {
                    path: dir.join(crate::store::METADATA_FILE),
                    field: "source".into(),
                    reason: "the directory holds a store made with other settings".into(),
                });
            }
            if store.metadata().complete {
                progress(store.len());
                return Ok(store);
            }
            StoreWriter::resume(dir)?
        } else {
            StoreWriter::create(dir, self.cfg.d_in, shard_rows, source)?
        };
        self.truth.save(&dir.join(GROUND_TRUTH_FILE))?;
        // Committed rows are always a whole number of shards, hence of blocks.
        let mut block = writer.committed_rows() / BLOCK_ROWS as u64;
        let total_blocks = self.cfg.tokens.div_ceil(BLOCK_ROWS as u64);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        while block < total_blocks {
            let batch: Vec<u64> = (block..total_blocks.min(block + threads as u64)).collect();
            let rows_of = |b: u64| ((self.cfg.tokens - b * BLOCK_ROWS as u64) as usize).min(BLOCK_ROWS);
            let blocks: Vec<Vec<f32>> = std::thread::scope(|s| {
                let handles: Vec<_> = batch.iter().map(|&b| s.spawn(move || self.block(b, rows_of(b)))).collect();
                handles.into_iter().map(|h| h.join().map_err(|_| DataError::invalid("generator", "a generator thread panicked"))).collect::<Result<Vec<_>>>()
            })?;
            for rows in blocks {
                writer.push_rows(&rows)?;
            }
            block += batch.len() as u64;
            progress(writer.rows_written());
        }
        writer.finish()?;
        ActivationStore::open(dir)
    }
}
