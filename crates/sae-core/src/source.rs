//! Where activations come from: an [`ActivationSource`] hands out rows `[n, d_in]` by index, with
//! typed per-row metadata ([`RowMeta`]) saying where each row came from in its model's input: a
//! token of a text, a patch of an image, a spatial position of a diffusion step. The trainer,
//! the metrics and labeling read activations through this trait only, so a new model source
//! (vision, diffusion) plugs in by writing rows somewhere that implements it (the on-disk store of
//! `sae-data` does).

use crate::error::Result;

/// Where one activation row came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowMeta {
    /// A token of a text model's input.
    Token {
        /// Token id in the model's vocabulary.
        id: u32,
        /// Position in its context window.
        pos: u32,
        /// Index of the context window in the harvest.
        window: u32,
    },
    /// A patch (or spatial cell of a feature map) of an image model's input.
    Patch {
        /// Index of the image in the harvest.
        image: u32,
        /// Row of the patch in the image's grid.
        row: u32,
        /// Column of the patch in the image's grid.
        col: u32,
    },
    /// A spatial position of one denoising step of a diffusion model.
    Diffusion {
        /// Index of the generated sample in the harvest.
        sample: u32,
        /// Denoising step.
        step: u32,
        /// Row of the position in the feature map.
        y: u32,
        /// Column of the position in the feature map.
        x: u32,
    },
}

/// Which kind of [`RowMeta`] a source keeps: every row of one source has the same kind.
/// Serialised in lower case (`"token"`, `"patch"`, `"diffusion"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RowMetaKind {
    /// [`RowMeta::Token`].
    Token,
    /// [`RowMeta::Patch`].
    Patch,
    /// [`RowMeta::Diffusion`].
    Diffusion,
}

impl RowMetaKind {
    /// The names of the kind's fields, in the order of [`RowMeta::fields`].
    pub fn field_names(self) -> &'static [&'static str] {
        match self {
            Self::Token => &["id", "pos", "window"],
            Self::Patch => &["image", "row", "col"],
            Self::Diffusion => &["sample", "step", "y", "x"],
        }
    }

    /// The metadata with these field values (as [`RowMeta::fields`] lists them), or `None` when
    /// `values` has the wrong length for the kind.
    pub fn from_fields(self, values: &[u32]) -> Option<RowMeta> {
        match (self, values) {
            (Self::Token, &[id, pos, window]) => Some(RowMeta::Token { id, pos, window }),
            (Self::Patch, &[image, row, col]) => Some(RowMeta::Patch { image, row, col }),
            (Self::Diffusion, &[sample, step, y, x]) => Some(RowMeta::Diffusion { sample, step, y, x }),
            _ => None,
        }
    }
}

impl RowMeta {
    /// The kind of this metadata.
    pub fn kind(&self) -> RowMetaKind {
        match self {
            Self::Token { .. } => RowMetaKind::Token,
            Self::Patch { .. } => RowMetaKind::Patch,
            Self::Diffusion { .. } => RowMetaKind::Diffusion,
        }
    }

    /// The field values in the order of [`RowMetaKind::field_names`].
    pub fn fields(&self) -> Vec<u32> {
        match *self {
            Self::Token { id, pos, window } => vec![id, pos, window],
            Self::Patch { image, row, col } => vec![image, row, col],
            Self::Diffusion { sample, step, y, x } => vec![sample, step, y, x],
        }
    }

    /// The index of the sample (text window, image, generated sample) the row belongs to.
    pub fn sample(&self) -> u32 {
        match *self {
            Self::Token { window, .. } => window,
            Self::Patch { image, .. } => image,
            Self::Diffusion { sample, .. } => sample,
        }
    }
}

/// A random-access source of activation rows. Rows are `f32`, row-major, `d_in` wide; indices
/// run over `0..len()`.
pub trait ActivationSource {
    /// Width of every row.
    fn d_in(&self) -> usize;

    /// Number of rows.
    fn len(&self) -> u64;

    /// Whether the source holds no row.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Replaces the contents of `out` with rows `start .. start + n` (`n × d_in` values). Rows
    /// past the end are an error.
    fn read_rows(&self, start: u64, n: usize, out: &mut Vec<f32>) -> Result<()>;

    /// The metadata of rows `start .. start + n`, or `None` when the source keeps none.
    fn read_meta(&self, start: u64, n: usize) -> Result<Option<Vec<RowMeta>>>;

    /// What to call the source in messages (a store's directory).
    fn name(&self) -> String;
}

/// Rows held in memory (for tests and small experiments), with optional metadata.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct InMemorySource {
    /// Row-major values, `len × d_in`.
    pub rows: Vec<f32>,
    /// Row width.
    pub d_in: usize,
    /// One entry per row, when kept.
    pub meta: Option<Vec<RowMeta>>,
}

impl ActivationSource for InMemorySource {
    fn d_in(&self) -> usize {
        self.d_in
    }

    fn len(&self) -> u64 {
        self.rows.len().checked_div(self.d_in).unwrap_or(0) as u64
    }

    fn read_rows(&self, start: u64, n: usize, out: &mut Vec<f32>) -> Result<()> {
        let end = self.end_of(start, n)?;
        out.clear();
        out.extend_from_slice(&self.rows[start as usize * self.d_in..end * self.d_in]);
        Ok(())
    }

    fn read_meta(&self, start: u64, n: usize) -> Result<Option<Vec<RowMeta>>> {
        let end = self.end_of(start, n)?;
        match &self.meta {
            None => Ok(None),
            Some(m) => m.get(start as usize..end).map(|m| Some(m.to_vec())).ok_or_else(|| crate::SaeError::ShapeMismatch {
                path: "<memory>".into(),
                name: "row metadata".into(),
                actual: vec![m.len()],
                expected: vec![self.len() as usize],
            }),
        }
    }

    fn name(&self) -> String {
        "<memory>".into()
    }
}

impl InMemorySource {
    /// The end of rows `start .. start + n`, or a [`ShapeMismatch`](crate::SaeError::ShapeMismatch)
    /// when they run past the source (no overflow on huge `start`).
    fn end_of(&self, start: u64, n: usize) -> Result<usize> {
        start.checked_add(n as u64).filter(|e| *e <= self.len()).map(|e| e as usize).ok_or_else(|| crate::SaeError::ShapeMismatch {
            path: "<memory>".into(),
            name: format!("rows {start}.. (+{n})"),
            actual: vec![start.saturating_add(n as u64) as usize],
            expected: vec![self.len() as usize],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_round_trips_through_its_fields() {
        let all = [RowMeta::Token { id: 7, pos: 3, window: 9 }, RowMeta::Patch { image: 2, row: 5, col: 1 }, RowMeta::Diffusion { sample: 4, step: 30, y: 6, x: 8 }];
        for m in all {
            let kind = m.kind();
            assert_eq!(kind.field_names().len(), m.fields().len());
            assert_eq!(kind.from_fields(&m.fields()), Some(m));
            assert_eq!(kind.from_fields(&[1]), None);
        }
        assert_eq!(all.map(|m| m.sample()), [9, 2, 4]);
    }

    #[test]
    fn in_memory_rows_and_meta_by_index_and_out_of_range_is_an_error() {
        let meta = (0..3).map(|i| RowMeta::Token { id: i, pos: i, window: 0 }).collect();
        let src = InMemorySource { rows: (0..6).map(|v| v as f32).collect(), d_in: 2, meta: Some(meta) };
        assert_eq!(src.len(), 3);
        let mut out = vec![9.0];
        src.read_rows(1, 2, &mut out).unwrap();
        assert_eq!(out, vec![2.0, 3.0, 4.0, 5.0]);
        assert_eq!(src.read_meta(2, 1).unwrap(), Some(vec![RowMeta::Token { id: 2, pos: 2, window: 0 }]));
        assert!(src.read_rows(2, 2, &mut out).is_err());
        assert!(src.read_rows(u64::MAX, 2, &mut out).is_err());
        assert!(src.read_meta(2, 2).is_err(), "metadata past the end is an error, not None");
        let short = InMemorySource { meta: Some(vec![]), ..src };
        assert!(short.read_meta(0, 1).is_err(), "metadata shorter than the rows is an error");
    }
}
