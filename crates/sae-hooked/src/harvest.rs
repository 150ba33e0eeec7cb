//! Harvesting from any [`HookedModel`]: batches of input through the model, the activations at
//! one hook point written to a new activation store with the [`RowMeta`] of every row.
//!
//! The model crate supplies the batches (text windows, image batches, diffusion samples) and a
//! filter on row metadata (a text model leaves out its framing tokens); this module runs them,
//! drops non-finite rows and high-norm outliers, and writes shard by shard. With
//! `max_norm_multiple = m`, rows whose L2 norm exceeds `m ×` the median norm of the first batch
//! are dropped (as sparsify and SAELens filter outliers).
//!
//! A killed harvest leaves an incomplete store whose metadata says where the harvest stood at
//! its last committed shard ([`ResumePoint`](sae_data::store::ResumePoint): samples consumed,
//! counters, the outlier threshold). Run again with the same settings and input, it resumes:
//! the batches already used are skipped without a forward pass, the batch the last shard ended
//! in is run again and its committed rows skipped, and the store ends identical to the one an
//! uninterrupted harvest writes.

use std::borrow::Borrow;
use std::path::Path;

use sae_core::hooks::Capture;
use sae_core::{HookedModel, RowMeta, SaeError};
use sae_data::DataError;
use sae_data::store::{METADATA_FILE, StoreWriter};

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
    /// Rows that were already in the store, written by an interrupted harvest that this one
    /// continued (0 for a new store).
    pub resumed_rows: u64,
}

/// Runs `batches` through `model` and writes the activations at `settings.hook` to a new store
/// at `out`, keeping the rows whose metadata passes `keep`; an incomplete store at `out` left by
/// an interrupted harvest with the same `settings.source` and input is continued (module docs). `progress(rows_stored, rows_wanted)`
/// is called after every batch. Batches are pulled only while rows are still wanted, so a lazy
/// iterator never prepares input that is not used.
///
/// Errors: an unknown hook, a hook without a fixed width, a model that does not call its hook
/// or gives metadata that does not match its rows, no batch at all, a complete store at `out`,
/// an interrupted one made with other settings or input, and the batches' own errors.
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
    let mut writer = open_for_resume(out, width, &settings.source)?;
    let mut report = HarvestReport::default();
    let mut batches = batches.into_iter();
    // Rows of the next batch that the interrupted harvest already committed.
    let mut skip_rows = 0u64;
    if let Some(w) = &writer {
        report.resumed_rows = w.committed_rows();
        if let Some(point) = w.resume_point() {
            let cursor = Cursor::parse(&point.cursor, out)?;
            skip_batches(model, &mut batches, cursor.samples, out)?;
            report = HarvestReport { resumed_rows: report.resumed_rows, rows: point.rows_before, ..cursor.report() };
            skip_rows = w.committed_rows() - point.rows_before;
        } else if w.committed_rows() > 0 {
            let reason = "the store has rows but no resume point: it was not written by a harvest of this version; remove it to harvest again".into();
            return Err(DataError::Metadata { path: out.join(METADATA_FILE), field: "resume".into(), reason }.into());
        }
    }
    while report.rows < settings.rows {
        let Some(batch) = batches.next() else { break };
        let batch = batch?;
        let input: &M::Input = batch.borrow();
        let (values, meta) = run_batch(model, input, hook, width, report.samples)?;
        let d = width;
        let norms: Vec<f32> = values.chunks_exact(d).map(|r| r.iter().map(|v| v * v).sum::<f32>().sqrt()).collect();
        if report.reference_norm.is_none() && settings.max_norm_multiple.is_some() {
            report.reference_norm = median(&norms);
        }
        let limit = settings.max_norm_multiple.zip(report.reference_norm).map(|(m, r)| m * r);
        let cursor = Cursor::of(&report).to_json();
        let mut kept_values = Vec::with_capacity(values.len());
        let mut kept_meta = Vec::with_capacity(meta.len());
        let mut kept = 0u64;
        for (r, m) in meta.iter().enumerate() {
            if !keep(m) {
                report.dropped_filtered += 1;
                continue;
            }
            if limit.is_some_and(|l| norms[r] > l) || !norms[r].is_finite() {
                report.dropped_outliers += 1;
                continue;
            }
            if report.rows + kept >= settings.rows {
                break;
            }
            kept += 1;
            if kept > skip_rows {
                kept_values.extend_from_slice(&values[r * d..(r + 1) * d]);
                kept_meta.push(*m);
            }
        }
        skip_rows = skip_rows.saturating_sub(kept);
        // The store is made at the first batch with rows: its metadata kind is that batch's.
        if let Some(first) = meta.first() {
            let w = match &mut writer {
                Some(w) => w,
                None => writer.insert(StoreWriter::create_with_meta(out, width, settings.shard_rows, settings.source.clone(), Some(first.kind()))?),
            };
            w.set_cursor(cursor);
            w.push_rows_with_meta(&kept_values, &kept_meta)?;
        }
        report.rows += kept;
        report.samples += model.batch_len(input) as u64;
        progress(report.rows, settings.rows);
    }
    let Some(writer) = writer else {
        return Err(DataError::invalid("input", format!("no batch of input with rows to run through {}", model.name())).into());
    };
    writer.finish()?;
    Ok(report)
}

/// The writer of an interrupted harvest's store at `out`, if there is one: `None` for a
/// directory with no store; an error for a complete store or one harvested with other settings.
fn open_for_resume(out: &Path, width: usize, source: &serde_json::Value) -> Result<Option<StoreWriter>, DataError> {
    let meta_path = out.join(METADATA_FILE);
    if !meta_path.exists() {
        return Ok(None);
    }
    let writer = StoreWriter::resume(out)?;
    let meta = writer.metadata();
    let differs = |field: &str, what: String| DataError::Metadata { path: meta_path.clone(), field: field.into(), reason: format!("the directory holds an interrupted harvest {what}; choose another directory or remove it") };
    if meta.source != *source {
        return Err(differs("source", format!("made with other settings ({})", meta.source)));
    }
    if meta.d_in != width {
        return Err(differs("d_in", format!("of width {}, not {width}", meta.d_in)));
    }
    Ok(Some(writer))
}

/// Pulls batches until `samples` samples are used, without running the model on them: they
/// gave rows that are already committed. Input that does not end a batch there is not the input
/// of the interrupted harvest.
fn skip_batches<M, B, E>(model: &M, batches: &mut impl Iterator<Item = Result<B, E>>, samples: u64, out: &Path) -> Result<(), E>
where
    M: HookedModel + ?Sized,
    B: Borrow<M::Input>,
    E: From<SaeError> + From<DataError>,
{
    let mut skipped = 0u64;
    while skipped < samples {
        let Some(batch) = batches.next() else { break };
        skipped += model.batch_len(batch?.borrow()) as u64;
    }
    if skipped != samples {
        let reason = format!("the interrupted harvest had used {samples} samples of its input, this input's batches give {skipped} there: it is not the same input");
        return Err(DataError::Metadata { path: out.join(METADATA_FILE), field: "resume".into(), reason }.into());
    }
    Ok(())
}

/// Runs one batch to `hook` and returns its rows (row-major, `width` each) with their metadata.
fn run_batch<M: HookedModel + ?Sized>(model: &M, input: &M::Input, hook: &str, width: usize, first_sample: u64) -> Result<(Vec<f32>, Vec<RowMeta>), SaeError> {
    let mut capture = Capture::new([hook]);
    model.forward_to(input, &mut capture, hook)?;
    let acts = capture.take(hook).ok_or_else(|| SaeError::Invariant(format!("{} did not call its hook {hook}", model.name())))?;
    let rows = acts.flat_rows();
    let [n, d] = rows.dims();
    if d != width {
        return Err(SaeError::ShapeMismatch { path: model.name().into(), name: hook.into(), actual: vec![n, d], expected: vec![n, width] });
    }
    let meta = model.row_meta(input, hook, first_sample)?;
    if meta.len() != n {
        return Err(SaeError::Invariant(format!("{} gave {} row metadata for {n} rows at {hook}", model.name(), meta.len())));
    }
    let values = rows.into_data().try_to_vec::<f32>().map_err(|e| SaeError::HostRead { what: format!("activations at {hook}"), reason: format!("{e:?}") })?;
    Ok((values, meta))
}

/// The harvest's state before a batch, kept in the store's [`ResumePoint`]s.
#[derive(Debug, Clone, PartialEq)]
struct Cursor {
    samples: u64,
    dropped_outliers: u64,
    dropped_filtered: u64,
    reference_norm: Option<f32>,
}

impl Cursor {
    fn of(r: &HarvestReport) -> Self {
        Self { samples: r.samples, dropped_outliers: r.dropped_outliers, dropped_filtered: r.dropped_filtered, reference_norm: r.reference_norm }
    }

    fn report(&self) -> HarvestReport {
        HarvestReport { samples: self.samples, dropped_outliers: self.dropped_outliers, dropped_filtered: self.dropped_filtered, reference_norm: self.reference_norm, ..HarvestReport::default() }
    }

    fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "samples": self.samples, "dropped_outliers": self.dropped_outliers,
            "dropped_filtered": self.dropped_filtered, "reference_norm": self.reference_norm,
        })
    }

    /// Reads a cursor back; metadata is untrusted, so every field is checked.
    fn parse(v: &serde_json::Value, out: &Path) -> Result<Self, DataError> {
        let bad = |reason: String| DataError::Metadata { path: out.join(METADATA_FILE), field: "resume.cursor".into(), reason };
        let int = |k: &str| v.get(k).and_then(serde_json::Value::as_u64).ok_or_else(|| bad(format!("`{k}` is missing or not a non-negative integer")));
        let reference_norm = match v.get("reference_norm") {
            None | Some(serde_json::Value::Null) => None,
            Some(x) => Some(x.as_f64().filter(|f| f.is_finite() && *f >= 0.0).ok_or_else(|| bad("`reference_norm` is not a finite non-negative number".into()))? as f32),
        };
        let known = ["samples", "dropped_outliers", "dropped_filtered", "reference_norm"];
        if let Some(k) = v.as_object().and_then(|o| o.keys().find(|k| !known.contains(&k.as_str()))) {
            return Err(bad(format!("unknown key `{k}`")));
        }
        Ok(Self { samples: int("samples")?, dropped_outliers: int("dropped_outliers")?, dropped_filtered: int("dropped_filtered")?, reference_norm })
    }
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
