//! Ground-truth metrics on synthetic data, where every row's true active features are known:
//! SynthSAEBench's latent classification and uniqueness (SAELens `sae_lens.synthetic`), and
//! absorption measured on the generator's parent–child hierarchy.
//!
//! - **Classification** (SAELens `ClassificationMetricsCalculator`): each latent is paired with
//!   the true feature of largest |cosine| with its decoder row, and read as a detector of that
//!   feature: per latent precision TP/(TP+FP), recall TP/(TP+FN) (0 when undefined), F1, and
//!   accuracy; each reported as the mean over latents.
//! - **Uniqueness** (`feature_uniqueness`): the number of distinct true features that are some
//!   latent's best match, over the number of latents.
//! - **Absorption on ground truth**: with each parent feature's latent found by the Hungarian
//!   matching of the MCC, for every parent–child pair the fraction of rows where the child fires
//!   (and so its parent) but the parent's latent is silent — the child's latent has absorbed the
//!   parent's direction there (Chanin et al. 2024, "A is for Absorption") — set against the
//!   fraction of rows where the parent fires with none of its children and its latent fires.

use serde::Serialize;

/// Per-latent detector counts and the hierarchy counts, accumulated over batches.
#[derive(Debug, Clone)]
pub struct SyntheticAccumulator {
    /// Best-matching true feature of each latent.
    best_match: Vec<usize>,
    /// Latents whose best match is each true feature.
    latents_of: Vec<Vec<usize>>,
    /// The matched latent of each true feature (Hungarian), `None` when unmatched.
    matched_latent: Vec<Option<usize>>,
    /// Parent of each true feature.
    parent: Vec<Option<usize>>,
    /// Whether each true feature has children.
    is_parent: Vec<bool>,
    tp: Vec<u64>,
    fires: Vec<u64>,
    positives: Vec<u64>,
    /// Per child feature: rows where it fired, and of those rows where its parent's latent was silent.
    child_rows: Vec<u64>,
    child_parent_silent: Vec<u64>,
    /// Per parent feature: rows where it fired with no child, and of those rows where its latent fired.
    alone_rows: Vec<u64>,
    alone_latent_fires: Vec<u64>,
    true_l0_sum: u64,
    rows: u64,
}

/// One parent–child pair's absorption.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairAbsorption {
    /// The parent feature.
    pub parent: usize,
    /// The child feature.
    pub child: usize,
    /// The parent's matched latent.
    pub parent_latent: usize,
    /// Rows where the child fired.
    pub child_rows: u64,
    /// Fraction of those rows where the parent's latent stayed silent.
    pub absorption: f64,
    /// Fraction of the rows where the parent fired without any child on which its latent fired.
    pub parent_alone_recall: f64,
}

/// The metrics; JSON keys as SynthSAEBench's where it has them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyntheticMetrics {
    /// Mean per-latent precision.
    pub precision: f64,
    /// Mean per-latent recall.
    pub recall: f64,
    /// Mean per-latent F1.
    pub f1: f64,
    /// Mean per-latent accuracy.
    pub accuracy: f64,
    /// Distinct best-matched true features over latents.
    pub uniqueness: f64,
    /// Mean number of true features active per row.
    pub true_l0: f64,
    /// Mean over parent–child pairs (with the child seen at least once) of
    /// [`PairAbsorption::absorption`]; `None` without a hierarchy.
    pub absorption: Option<f64>,
    /// Mean over the same pairs of [`PairAbsorption::parent_alone_recall`]: absorption reads
    /// against it (a parent latent silent on 30 % of its child's rows absorbs nothing if it is
    /// also silent on 30 % of the rows where its parent fires alone).
    pub parent_alone_recall: Option<f64>,
    /// Every pair.
    pub pairs: Vec<PairAbsorption>,
    /// Rows seen.
    pub rows: u64,
}

impl SyntheticAccumulator {
    /// Starts from the `[n_latents, n_true]` |cosine| matrix of decoder rows and true features
    /// (row-major), the Hungarian match of each true feature (`matched_latent`, from
    /// [`feature_recovery`](crate::recovery::feature_recovery); `None` for unmatched), and each
    /// true feature's parent. Returns `None` when the sizes disagree.
    pub fn new(abs_cos: &[f32], n_latents: usize, matched_latent: Vec<Option<usize>>, parent: Vec<Option<usize>>) -> Option<Self> {
        let n_true = parent.len();
        if abs_cos.len() != n_latents.checked_mul(n_true)? || matched_latent.len() != n_true || n_true == 0 {
            return None;
        }
        if parent.iter().flatten().any(|p| *p >= n_true) || matched_latent.iter().flatten().any(|l| *l >= n_latents) {
            return None;
        }
        // argmax with the first index on ties, as torch's argmax.
        let best_match: Vec<usize> = abs_cos
            .chunks_exact(n_true)
            .map(|row| row.iter().enumerate().fold(0, |best, (j, c)| if *c > row[best] { j } else { best }))
            .collect();
        let mut is_parent = vec![false; n_true];
        for p in parent.iter().flatten() {
            is_parent[*p] = true;
        }
        let mut latents_of = vec![Vec::new(); n_true];
        for (l, &g) in best_match.iter().enumerate() {
            latents_of[g].push(l);
        }
        Some(Self {
            best_match,
            latents_of,
            matched_latent,
            parent,
            is_parent,
            tp: vec![0; n_latents],
            fires: vec![0; n_latents],
            positives: vec![0; n_latents],
            child_rows: vec![0; n_true],
            child_parent_silent: vec![0; n_true],
            alone_rows: vec![0; n_true],
            alone_latent_fires: vec![0; n_true],
            true_l0_sum: 0,
            rows: 0,
        })
    }

    /// Adds a batch: the dense codes `[n, n_latents]` row-major and the true active features of
    /// each of the `n` rows. Returns `false` (adding nothing) when the sizes disagree or a
    /// feature index is out of range.
    pub fn update(&mut self, codes: &[f32], active: &[Vec<usize>]) -> bool {
        let (n_latents, n_true) = (self.best_match.len(), self.parent.len());
        if codes.len() != active.len() * n_latents || active.iter().flatten().any(|g| *g >= n_true) {
            return false;
        }
        let mut on = vec![false; n_true];
        let mut has_child = vec![false; n_true];
        let mut unique = Vec::new();
        for (row, listed) in codes.chunks_exact(n_latents.max(1)).zip(active) {
            // A feature listed twice in a row is one active feature (counts stay within rows).
            unique.clear();
            unique.extend_from_slice(listed);
            unique.sort_unstable();
            unique.dedup();
            let features = &unique;
            for &g in features {
                on[g] = true;
                if let Some(p) = self.parent[g] {
                    has_child[p] = true;
                }
            }
            for (l, v) in row.iter().enumerate() {
                if *v > 0.0 {
                    self.fires[l] += 1;
                    if on[self.best_match[l]] {
                        self.tp[l] += 1;
                    }
                }
            }
            for &g in features {
                for &l in &self.latents_of[g] {
                    self.positives[l] += 1;
                }
                if let Some(p) = self.parent[g] {
                    self.child_rows[g] += 1;
                    if let Some(pl) = self.matched_latent[p] {
                        if row[pl] <= 0.0 {
                            self.child_parent_silent[g] += 1;
                        }
                    }
                }
                if self.is_parent[g] && !has_child[g] {
                    self.alone_rows[g] += 1;
                    if self.matched_latent[g].is_some_and(|l| row[l] > 0.0) {
                        self.alone_latent_fires[g] += 1;
                    }
                }
            }
            for &g in features {
                on[g] = false;
                if let Some(p) = self.parent[g] {
                    has_child[p] = false;
                }
            }
            self.true_l0_sum += features.len() as u64;
            self.rows += 1;
        }
        true
    }

    /// The metrics of everything added.
    pub fn finish(&self) -> SyntheticMetrics {
        let n = self.rows;
        let ratio = |a: u64, b: u64| if b > 0 { a as f64 / b as f64 } else { 0.0 };
        let (mut p_sum, mut r_sum, mut f_sum, mut a_sum) = (0.0, 0.0, 0.0, 0.0);
        for l in 0..self.best_match.len() {
            let (tp, fp, fn_) = (self.tp[l], self.fires[l] - self.tp[l], self.positives[l] - self.tp[l]);
            let tn = n.saturating_sub(tp + fp + fn_);
            let (p, r) = (ratio(tp, tp + fp), ratio(tp, tp + fn_));
            p_sum += p;
            r_sum += r;
            f_sum += if p + r > 0.0 { 2.0 * p * r / (p + r) } else { 0.0 };
            a_sum += if n > 0 { (tp + tn) as f64 / n as f64 } else { 0.0 };
        }
        let latents = self.best_match.len().max(1) as f64;
        let mut distinct = self.best_match.clone();
        distinct.sort_unstable();
        distinct.dedup();
        let pairs: Vec<PairAbsorption> = (0..self.parent.len())
            .filter_map(|c| {
                let p = self.parent[c]?;
                let parent_latent = self.matched_latent[p]?;
                Some(PairAbsorption {
                    parent: p,
                    child: c,
                    parent_latent,
                    child_rows: self.child_rows[c],
                    absorption: ratio(self.child_parent_silent[c], self.child_rows[c]),
                    parent_alone_recall: ratio(self.alone_latent_fires[p], self.alone_rows[p]),
                })
            })
            .collect();
        let seen: Vec<&PairAbsorption> = pairs.iter().filter(|q| q.child_rows > 0).collect();
        let mean = |f: fn(&PairAbsorption) -> f64| (!seen.is_empty()).then(|| seen.iter().map(|q| f(q)).sum::<f64>() / seen.len() as f64);
        SyntheticMetrics {
            precision: p_sum / latents,
            recall: r_sum / latents,
            f1: f_sum / latents,
            accuracy: a_sum / latents,
            uniqueness: if self.best_match.is_empty() { 0.0 } else { distinct.len() as f64 / latents },
            true_l0: ratio(self.true_l0_sum, n),
            absorption: mean(|q| q.absorption),
            parent_alone_recall: mean(|q| q.parent_alone_recall),
            pairs,
            rows: n,
        }
    }
}

/// The synthetic suite of `sae eval`: SynthSAEBench's keys (`mcc`, `precision`, `recall`, `f1`,
/// `uniqueness`, `explained_variance`, `shrinkage`, `absorption`) and the rest of
/// [`SyntheticMetrics`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SyntheticReport {
    /// Mean matched |cosine| of the Hungarian matching of true features to decoder rows.
    pub mcc: f64,
    /// 1 − FVU over the evaluated rows.
    pub explained_variance: f64,
    /// Mean over rows of ‖x̂‖ / ‖x‖ (SynthSAEBench's `shrinkage`, SAELens's `l2_ratio`).
    pub shrinkage: f64,
    /// Mean number of latents firing per row.
    pub sae_l0: f64,
    /// Latents that never fired on the evaluated rows.
    pub dead_latents: usize,
    /// Classification, uniqueness and absorption.
    #[serde(flatten)]
    pub metrics: SyntheticMetrics,
}

/// Runs `sae` over `batches` of rows `[n, d_in]` with the true features active in each, and
/// measures it against the true feature directions `features` `[n_true, d_in]` and their
/// `parent`s. `progress(rows done)` is called after each batch. Sizes that disagree and batches
/// with non-finite rows are typed errors (the rows of a synthetic store are all finite).
pub fn evaluate_synthetic<E>(
    sae: &dyn sae_core::Sae,
    features: &[f32],
    parent: &[Option<usize>],
    batches: impl IntoIterator<Item = std::result::Result<(Vec<f32>, Vec<Vec<usize>>), E>>,
    mut progress: impl FnMut(u64),
) -> std::result::Result<SyntheticReport, E>
where
    E: From<sae_core::SaeError>,
{
    use burn::tensor::{Tensor, TensorData};
    use sae_core::SaeError;
    let (d, n_latents, n_true) = (sae.config().d_in, sae.config().d_sae, parent.len());
    if features.len() != n_true * d || n_true == 0 {
        return Err(SaeError::ShapeMismatch { path: "<ground truth>".into(), name: "features".into(), actual: vec![features.len()], expected: vec![n_true, d] }.into());
    }
    let device = sae.device();
    let decoder = sae_core::params::host_f32(sae.params().matrix("W_dec")?.into_data())?;
    let abs_cos: Vec<f32> = crate::stability::cosine_matrix(&decoder, features, n_latents, n_true, d, &device)?.into_iter().map(f32::abs).collect();
    let recovery = crate::recovery::feature_recovery(features, &decoder, d, crate::evaluate::RECOVERY_THRESHOLD)
        .ok_or_else(|| SaeError::Unsupported("feature recovery failed: the decoder holds non-finite values".into()))?;
    let mut matched = vec![None; n_true];
    for (g, l) in recovery.matched_latent.iter().enumerate() {
        matched[g] = Some(*l);
    }
    let mut acc = SyntheticAccumulator::new(&abs_cos, n_latents, matched, parent.to_vec())
        .ok_or_else(|| SaeError::Unsupported("ground-truth parents out of range".into()))?;
    let mut recon = crate::reconstruction::ReconstructionAccumulator::default();
    let mut done = 0u64;
    for batch in batches {
        let (x, active) = batch?;
        let n = active.len();
        if x.len() != n * d || x.iter().any(|v| !v.is_finite()) {
            return Err(SaeError::ShapeMismatch { path: "<synthetic rows>".into(), name: "batch".into(), actual: vec![x.len()], expected: vec![n, d] }.into());
        }
        if n == 0 {
            continue;
        }
        let xt = Tensor::<2>::from_data(TensorData::new(x, [n, d]), &device);
        let fwd = sae.forward(xt.clone())?;
        let codes = sae_core::params::host_f32(fwd.codes.to_dense().into_data())?;
        recon.update(xt, fwd.output, &fwd.codes)?;
        if !acc.update(&codes, &active) {
            return Err(SaeError::Invariant("codes or active features of a batch have the wrong size".into()).into());
        }
        done += n as u64;
        progress(done);
    }
    if done == 0 {
        return Err(SaeError::Unsupported("no synthetic row to evaluate".into()).into());
    }
    let r = recon.finish();
    Ok(SyntheticReport {
        mcc: recovery.mcc,
        explained_variance: r.explained_variance,
        shrinkage: r.l2_ratio,
        sae_l0: r.l0,
        dead_latents: r.feature_density.iter().filter(|f| **f == 0.0).count(),
        metrics: acc.finish(),
    })
}
