//! Top-activating examples: for chosen features, the rows of an activation source where each
//! fires most strongly, with the tokens around them (same window only) and the feature's
//! activation on each, plus the tokens that carry most of the feature's activation mass.

use std::collections::HashMap;

use burn::tensor::{Tensor, TensorData};
use sae_core::{ActivationSource, RowMeta, Sae};
use serde::Serialize;

use crate::error::{LabelError, Result};

/// One token of an example's context.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ContextToken {
    /// Token id.
    pub token: u32,
    /// The feature's activation on this token.
    pub value: f32,
}

/// One top-activating example.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Example {
    /// Row of the store.
    pub row: u64,
    /// The feature's activation there.
    pub value: f32,
    /// Tokens around the row from the same window, in order.
    pub context: Vec<ContextToken>,
    /// Index of the row's own token in `context`.
    pub centre: usize,
}

/// A token that carries much of a feature's activation.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenStat {
    /// Token id.
    pub token: u32,
    /// Rows with this token on which the feature fired.
    pub count: u64,
    /// Sum of the feature's activation on them.
    pub total: f64,
}

/// What one feature responds to.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FeatureExamples {
    /// Feature index.
    pub feature: usize,
    /// Fraction of scanned rows on which it fired.
    pub density: f64,
    /// Examples, strongest first.
    pub examples: Vec<Example>,
    /// Tokens by activation mass, largest first.
    pub top_tokens: Vec<TokenStat>,
}

/// `n` live features spread evenly over the density range (ascending): features that never
/// fire or fire on at least `max_density` of rows are left out.
pub fn pick_features(density: &[f64], n: usize, max_density: f64) -> Vec<usize> {
    let mut live: Vec<usize> = (0..density.len()).filter(|&i| density[i] > 0.0 && density[i] < max_density).collect();
    live.sort_by(|&a, &b| density[a].total_cmp(&density[b]).then(a.cmp(&b)));
    if live.len() <= n || n == 0 {
        return if n == 0 { Vec::new() } else { live };
    }
    if n == 1 {
        return vec![live[live.len() / 2]];
    }
    (0..n).map(|i| live[(i * (live.len() - 1) + (n - 1) / 2) / (n - 1)]).collect()
}

/// A token of a text source's row: its id and the index of its context window.
#[derive(Debug, Clone, Copy)]
struct RowToken {
    id: u32,
    window: u32,
}

/// The tokens of rows `start .. start + n` of `store`, `None` when it keeps no metadata; rows
/// that are not tokens (image patches, diffusion positions) are an error: these examples are
/// contexts of text.
fn read_tokens(store: &dyn ActivationSource, start: u64, n: usize) -> Result<Option<Vec<RowToken>>> {
    let Some(meta) = store.read_meta(start, n)? else { return Ok(None) };
    meta.into_iter()
        .map(|m| match m {
            RowMeta::Token { id, window, .. } => Ok(RowToken { id, window }),
            other => Err(LabelError::Input(format!("{}: rows are {other:?}, not tokens: token contexts need a text source", store.name()))),
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// Calls `f(first_row, codes [m, d_sae] row-major)` for the first `rows` rows of `store`, in
/// batches of `batch`.
fn for_each_batch(sae: &dyn Sae, store: &dyn ActivationSource, rows: u64, batch: usize, mut f: impl FnMut(u64, usize, &[f32]) -> Result<()>) -> Result<()> {
    let d = store.d_in();
    if sae.config().d_in != d {
        return Err(LabelError::Input(format!("the SAE takes d_in {} but the store holds rows of width {d}", sae.config().d_in)));
    }
    let device = sae.device();
    let n = rows.min(store.len());
    let mut start = 0u64;
    let mut buf = Vec::new();
    while start < n {
        let m = (batch as u64).min(n - start) as usize;
        store.read_rows(start, m, &mut buf)?;
        for v in buf.iter_mut().filter(|v| !v.is_finite()) {
            *v = 0.0;
        }
        let codes = sae.encode(Tensor::<2>::from_data(TensorData::new(std::mem::take(&mut buf), [m, d]), &device))?;
        let dense = codes.to_dense().into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| LabelError::Input(format!("reading codes: {e:?}")))?;
        f(start, m, &dense)?;
        start += m as u64;
    }
    Ok(())
}

/// Fraction of the first `rows` rows of `store` on which each feature fires.
pub fn densities(sae: &dyn Sae, store: &dyn ActivationSource, rows: u64, batch: usize, mut progress: impl FnMut(u64)) -> Result<Vec<f64>> {
    let d_sae = sae.config().d_sae;
    let mut counts = vec![0u64; d_sae];
    let mut seen = 0u64;
    for_each_batch(sae, store, rows, batch.max(1), |start, m, dense| {
        for row in dense.chunks_exact(d_sae) {
            for (c, &v) in counts.iter_mut().zip(row) {
                *c += u64::from(v > 0.0);
            }
        }
        seen = start + m as u64;
        progress(seen);
        Ok(())
    })?;
    Ok(counts.iter().map(|&c| c as f64 / seen.max(1) as f64).collect())
}

/// Scans the first `rows` rows of `store` and returns, for each of `features`, its `per_feature`
/// strongest rows with `before` tokens of context before and `after` after (same window only),
/// and its top 10 tokens by activation mass. The store must hold tokens.
#[allow(clippy::too_many_arguments)]
pub fn top_examples(sae: &dyn Sae, store: &dyn ActivationSource, rows: u64, features: &[usize], per_feature: usize, (before, after): (usize, usize), batch: usize, mut progress: impl FnMut(u64)) -> Result<Vec<FeatureExamples>> {
    let d_sae = sae.config().d_sae;
    if let Some(&bad) = features.iter().find(|&&f| f >= d_sae) {
        return Err(LabelError::Input(format!("feature {bad} is outside the SAE's {d_sae} latents")));
    }
    if read_tokens(store, 0, 0)?.is_none() {
        return Err(LabelError::Input(format!("{} holds no tokens (harvest it with `sae harvest`)", store.name())));
    }
    let mut best: Vec<Vec<(f32, u64)>> = vec![Vec::with_capacity(per_feature + 1); features.len()];
    let mut fired = vec![0u64; features.len()];
    let mut mass: Vec<HashMap<u32, (u64, f64)>> = vec![HashMap::new(); features.len()];
    let mut seen = 0u64;
    for_each_batch(sae, store, rows, batch.max(1), |start, m, dense| {
        let tokens = read_tokens(store, start, m)?.unwrap_or_default();
        for (r, row) in dense.chunks_exact(d_sae).enumerate() {
            for (j, &f) in features.iter().enumerate() {
                let v = row[f];
                if v <= 0.0 {
                    continue;
                }
                fired[j] += 1;
                if let Some(t) = tokens.get(r) {
                    let e = mass[j].entry(t.id).or_insert((0, 0.0));
                    e.0 += 1;
                    e.1 += v as f64;
                }
                let list = &mut best[j];
                if list.len() < per_feature || list.last().is_some_and(|&(w, _)| v > w) {
                    let at = list.partition_point(|&(w, _)| w >= v);
                    list.insert(at, (v, start + r as u64));
                    list.truncate(per_feature);
                }
            }
        }
        seen = start + m as u64;
        progress(seen);
        Ok(())
    })?;
    let mut out = Vec::with_capacity(features.len());
    for (j, &f) in features.iter().enumerate() {
        let mut examples = Vec::with_capacity(best[j].len());
        for &(value, row) in &best[j] {
            let first = row.saturating_sub(before as u64);
            let last = (row + after as u64 + 1).min(store.len());
            let toks = read_tokens(store, first, (last - first) as usize)?.unwrap_or_default();
            let Some(centre_window) = toks.get((row - first) as usize).map(|t| t.window) else {
                return Err(LabelError::Input(format!("{}: no token stored for row {row}", store.name())));
            };
            let keep: Vec<usize> = (0..toks.len()).filter(|&i| toks[i].window == centre_window).collect();
            let mut acts = Vec::new();
            store.read_rows(first, (last - first) as usize, &mut acts)?;
            let d = store.d_in();
            for v in acts.iter_mut().filter(|v| !v.is_finite()) {
                *v = 0.0;
            }
            let n = toks.len();
            let codes = sae.encode(Tensor::<2>::from_data(TensorData::new(acts, [n, d]), &sae.device()))?.to_dense();
            let col = codes.slice([0..n, f..f + 1]).into_data().convert::<f32>().try_to_vec::<f32>().map_err(|e| LabelError::Input(format!("reading codes: {e:?}")))?;
            let context = keep.iter().map(|&i| ContextToken { token: toks[i].id, value: col[i] }).collect();
            let centre = keep.iter().position(|&i| i == (row - first) as usize).unwrap_or(0);
            examples.push(Example { row, value, context, centre });
        }
        let mut top_tokens: Vec<TokenStat> = mass[j].iter().map(|(&token, &(count, total))| TokenStat { token, count, total }).collect();
        top_tokens.sort_by(|a, b| b.total.total_cmp(&a.total).then(a.token.cmp(&b.token)));
        top_tokens.truncate(10);
        out.push(FeatureExamples { feature: f, density: fired[j] as f64 / seen.max(1) as f64, examples, top_tokens });
    }
    Ok(out)
}
