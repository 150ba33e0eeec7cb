//! The evaluation of an SAE on an activation source, as one library call: the batched loop over
//! the last rows of the source (rows that a run training on a prefix has not seen), the
//! reconstruction and sparsity metrics, and the ground-truth feature recovery when known
//! features are given. `sae eval` is this call and printing; a service or a notebook calls the
//! same function.

use burn::tensor::{Tensor, TensorData};
use sae_core::validate::drop_nonfinite_rows;
use sae_core::{ActivationSource, Result, Sae, SaeError};
use serde::Serialize;

use crate::reconstruction::{ReconstructionAccumulator, ReconstructionMetrics};
use crate::recovery::feature_recovery;

/// |cosine| from which a true feature counts as recovered.
pub const RECOVERY_THRESHOLD: f64 = 0.9;

/// What to evaluate.
#[derive(Debug, Clone, Copy)]
pub struct EvalOptions<'a> {
    /// Rows to evaluate: the last `rows` of the source (all of them when it holds fewer).
    pub rows: u64,
    /// Rows per batch (at least 1).
    pub batch_size: usize,
    /// Known feature directions, `[n, d_in]` row-major, to match the decoder against.
    pub ground_truth: Option<&'a [f32]>,
}

impl Default for EvalOptions<'_> {
    fn default() -> Self {
        Self { rows: 200_000, batch_size: 4096, ground_truth: None }
    }
}

/// How well the decoder recovers known features.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoverySummary {
    /// Mean |cosine| of the optimal one-to-one matching (MCC).
    pub mcc: f64,
    /// Fraction of true features matched at |cosine| ≥ [`RECOVERY_THRESHOLD`].
    pub recovered_frac: f64,
    /// Number of true features.
    pub n_true_features: usize,
}

/// The result of [`evaluate`]; its JSON is `sae eval --json`'s (flat keys).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EvalReport {
    /// Reconstruction and sparsity.
    #[serde(flatten)]
    pub reconstruction: ReconstructionMetrics,
    /// Rows left out for holding a NaN or an infinity.
    pub skipped_rows: usize,
    /// Ground-truth recovery, when features were given.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub recovery: Option<RecoverySummary>,
}

/// Evaluates `sae` on the last `options.rows` rows of `source`, calling `progress(rows done)`
/// after each batch. A width that does not match, a batch size of 0, no finite row at all, or
/// ground-truth features of another width are typed errors.
pub fn evaluate(sae: &dyn Sae, source: &dyn ActivationSource, options: &EvalOptions<'_>, mut progress: impl FnMut(u64)) -> Result<EvalReport> {
    let d = source.d_in();
    if sae.config().d_in != d {
        return Err(SaeError::ShapeMismatch { path: source.name().into(), name: "rows (the SAE's d_in)".into(), actual: vec![d], expected: vec![sae.config().d_in] });
    }
    if options.batch_size == 0 {
        return Err(SaeError::Unsupported("evaluation batch size must be positive".into()));
    }
    let n = options.rows.min(source.len());
    let start = source.len() - n;
    let device = sae.device();
    let (mut acc, mut rows, mut done, mut skipped) = (ReconstructionAccumulator::default(), Vec::new(), 0u64, 0usize);
    while done < n {
        let take = (options.batch_size as u64).min(n - done) as usize;
        source.read_rows(start + done, take, &mut rows)?;
        skipped += drop_nonfinite_rows(&mut rows, d);
        let m = rows.len() / d.max(1);
        if m > 0 {
            let x = Tensor::<2>::from_data(TensorData::new(std::mem::take(&mut rows), [m, d]), &device);
            let fwd = sae.forward(x.clone())?;
            acc.update(x, fwd.output, &fwd.codes)?;
        }
        done += take as u64;
        progress(done);
    }
    // Metrics of nothing (mse 0, nothing dead) would read as a perfect SAE.
    if n == 0 || skipped as u64 == n {
        return Err(SaeError::Unsupported(format!("{}: no row to evaluate ({n} rows read, {skipped} of them non-finite)", source.name())));
    }
    let recovery = match options.ground_truth {
        None => None,
        Some(features) => Some(recover(sae, features, d)?),
    };
    Ok(EvalReport { reconstruction: acc.finish(), skipped_rows: skipped, recovery })
}

/// Matches the decoder rows of `sae` to `features` (width `d`).
fn recover(sae: &dyn Sae, features: &[f32], d: usize) -> Result<RecoverySummary> {
    if d == 0 || features.len() % d != 0 {
        return Err(SaeError::ShapeMismatch { path: "<ground truth>".into(), name: "features".into(), actual: vec![features.len()], expected: vec![features.len() / d.max(1), d] });
    }
    let w_dec = sae.params().matrix("W_dec")?;
    let w_dec = sae_core::params::host_f32(w_dec.into_data())?;
    let r = feature_recovery(features, &w_dec, d, RECOVERY_THRESHOLD).ok_or_else(|| SaeError::Unsupported("feature recovery failed: the decoder holds non-finite values".into()))?;
    Ok(RecoverySummary { mcc: r.mcc, recovered_frac: r.recovered_frac, n_true_features: features.len() / d })
}
