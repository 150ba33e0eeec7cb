//! Harvesting from any [`HookedModel`]: batches of input through the model, the activations at
//! one hook point written to a new activation store with the [`RowMeta`] of every row.
//!
//! The model crate supplies the batches (text windows, image batches, diffusion samples) and a
//! filter on row metadata (a text model leaves out its framing tokens); this module runs them,
//! drops non-finite rows and high-norm outliers, and writes shard by shard. With
//! `max_norm_multiple = m`, rows whose L2 norm exceeds `m ×` the median norm of the first batch
//! are dropped (as sparsify and SAELens filter outliers).

use std::borrow::Borrow;
use std::path::Path;

use sae_core::hooks::Capture;
use sae_core::{HookedModel, RowMeta, SaeError};
use sae_data::DataError;
use sae_data::store::StoreWriter;

/// What to harvest and how much.
#[derive(Debug, Clone)]
pub struct HarvestSettings {
    /// The hook point (checked against the model's).
    pub hook: String,
    /// Rows to store; fewer when the input runs out first.
    pub rows: u64,
    /// Drop rows whose norm exceeds this multiple of the first batch's median norm.
    pub max_norm_multiple: Option<f32>,
    /// Rows per store shard.
    pub shard_rows: usize,
    /// Where the activations came from (model, hook, corpus), kept in the store's metadata.
    pub source: serde_json::Value,
}

impl Default for HarvestSettings {
    fn default() -> Self {
        Self { hook: String::new(), rows: 100_000, max_norm_multiple: Some(10.0), shard_rows: 65_536, source: serde_json::Value::Null }
    }
}

/// What a harvest did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HarvestReport {
    /// Rows stored.
    pub rows: u64,
    /// Samples (windows, images) run through the model.
    pub samples: u64,
    /// Rows dropped as high-norm outliers or for non-finite values.
    pub dropped_outliers: u64,
    /// Rows the caller's filter left out (a text model's framing tokens).
    pub dropped_filtered: u64,
    /// The median norm the outlier filter used.
    pub reference_norm: Option<f32>,
}

/// Runs `batches` through `model` and writes the activations at `settings.hook` to a new store
/// at `out`, keeping the rows whose metadata passes `keep`. `progress(rows_stored, rows_wanted)`
/// is called after every batch. Batches are pulled only while rows are still wanted, so a lazy
/// iterator never prepares input that is not used.
///
/// Errors: an unknown hook, a hook without a fixed width, a model that does not call its hook
/// or gives metadata that does not match its rows, no batch at all, and the batches' own errors.
pub fn harvest<M, B, E>(
    model: &M,
    batches: impl IntoIterator<Item = Result<B, E>>,
    settings: &HarvestSettings,
    keep: impl Fn(&RowMeta) -> bool,
    out: &Path,
    mut progress: impl FnMut(u64, u64),
) -> Result<HarvestReport, E>
where
    M: HookedModel + ?Sized,
    B: Borrow<M::Input>,
    E: From<SaeError> + From<DataError>,
{
    let hook = settings.hook.as_str();
    model.check_hook(hook)?;
    let width = model
        .hook_width(hook)
        .ok_or_else(|| SaeError::Unsupported(format!("{hook} of {} has no fixed width (attention patterns cannot be harvested)", model.name())))?;
    if settings.rows == 0 || settings.shard_rows == 0 {
        return Err(DataError::invalid("rows/shard_rows", "must be positive").into());
    }
    let mut writer: Option<StoreWriter> = None;
    let mut report = HarvestReport::default();
    let mut batches = batches.into_iter();
    while report.rows < settings.rows {
        let Some(batch) = batches.next() else { break };
        let batch = batch?;
        let input: &M::Input = batch.borrow();
        let mut capture = Capture::new([hook]);
        model.forward_to(input, &mut capture, hook)?;
        let acts = capture.take(hook).ok_or_else(|| SaeError::Invariant(format!("{} did not call its hook {hook}", model.name())))?;
        let rows = acts.flat_rows();
        let [n, d] = rows.dims();
        if d != width {
            return Err(SaeError::ShapeMismatch { path: model.name().into(), name: hook.into(), actual: vec![n, d], expected: vec![n, width] }.into());
        }
        let meta = model.row_meta(input, hook, report.samples)?;
        if meta.len() != n {
            return Err(SaeError::Invariant(format!("{} gave {} row metadata for {n} rows at {hook}", model.name(), meta.len())).into());
        }
        let values = rows.into_data().try_to_vec::<f32>().map_err(|e| SaeError::HostRead { what: format!("activations at {hook}"), reason: format!("{e:?}") })?;
        let norms: Vec<f32> = values.chunks_exact(d).map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt()).collect();
        if report.reference_norm.is_none() && settings.max_norm_multiple.is_some() {
            report.reference_norm = median(&norms);
        }
        let limit = settings.max_norm_multiple.zip(report.reference_norm).map(|(m, r)| m * r);
        let mut kept_values = Vec::with_capacity(values.len());
        let mut kept_meta = Vec::with_capacity(n);
        for (r, m) in meta.iter().enumerate() {
            if !keep(m) {
                report.dropped_filtered += 1;
                continue;
            }
            if limit.is_some_and(|l| norms[r] > l) || !norms[r].is_finite() {
                report.dropped_outliers += 1;
                continue;
            }
            if report.rows + kept_meta.len() as u64 >= settings.rows {
                break;
            }
            kept_values.extend_from_slice(&values[r * d..(r + 1) * d]);
            kept_meta.push(*m);
        }
        // The store is made at the first batch with rows: its metadata kind is that batch's.
        if let Some(first) = meta.first() {
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(StoreWriter::create_with_meta(out, width, settings.shard_rows, settings.source.clone(), Some(first.kind()))?),
            };
            w.push_rows_with_meta(&kept_values, &kept_meta)?;
        }
        report.rows += kept_meta.len() as u64;
        report.samples += model.batch_len(input) as u64;
        progress(report.rows, settings.rows);
    }
    let Some(writer) = writer else {
        return Err(DataError::invalid("input", format!("no batch of input with rows to run through {}", model.name())).into());
    };
    writer.finish()?;
    Ok(report)
}

/// The middle value of `norms` (the upper one of an even count); `None` when empty.
fn median(norms: &[f32]) -> Option<f32> {
    let mut sorted = norms.to_vec();
    sorted.sort_by(f32::total_cmp);
    sorted.get(sorted.len() / 2).copied()
}

#[cfg(test)]
mod tests {
    #[test]
    fn median_is_the_upper_middle() {
        assert_eq!(super::median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(super::median(&[4.0, 1.0, 3.0, 2.0]), Some(3.0));
        assert_eq!(super::median(&[]), None);
    }
}
