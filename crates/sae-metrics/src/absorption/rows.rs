//! Rows of features a probe reads: dense model activations or sparse SAE codes, one interface.

use sae_core::{Result, SaeError};

/// One row of features.
#[derive(Debug, Clone, Copy)]
pub enum Row<'a> {
    /// Every feature, in order.
    Dense(&'a [f32]),
    /// The non-zero features only: their indices (ascending) and values.
    Sparse {
        /// Feature indices.
        indices: &'a [u32],
        /// Their values.
        values: &'a [f32],
    },
}

impl Row<'_> {
    /// `Σ_j row[j] · w[j]`.
    pub fn dot(&self, w: &[f32]) -> f32 {
        match *self {
            Row::Dense(x) => x.iter().zip(w).map(|(a, b)| a * b).sum(),
            Row::Sparse { indices, values } => indices.iter().zip(values).map(|(&j, v)| v * w[j as usize]).sum(),
        }
    }

    /// `w[j] += alpha · row[j]` for every feature.
    pub fn add_scaled_to(&self, alpha: f32, w: &mut [f32]) {
        match *self {
            Row::Dense(x) => w.iter_mut().zip(x).for_each(|(o, v)| *o += alpha * v),
            Row::Sparse { indices, values } => indices.iter().zip(values).for_each(|(&j, v)| w[j as usize] += alpha * v),
        }
    }

    /// The value of feature `j`.
    pub fn get(&self, j: usize) -> f32 {
        match *self {
            Row::Dense(x) => x[j],
            Row::Sparse { indices, values } => indices.binary_search(&(j as u32)).map_or(0.0, |p| values[p]),
        }
    }
}

/// A table of feature rows.
pub trait FeatureRows {
    /// Features per row.
    fn dim(&self) -> usize;
    /// Rows.
    fn len(&self) -> usize;
    /// Whether there are no rows.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Row `i`.
    fn row(&self, i: usize) -> Row<'_>;
}

/// Dense rows `[n, d]`, row-major (model activations).
#[derive(Debug, Clone, PartialEq)]
pub struct DenseRows {
    d: usize,
    data: Vec<f32>,
}

impl DenseRows {
    /// Rows of width `d` from `data` (`n · d` values, all finite).
    pub fn new(d: usize, data: Vec<f32>) -> Result<Self> {
        if d == 0 || data.len() % d != 0 {
            return Err(SaeError::Unsupported(format!("{} values are not rows of width {d}", data.len())));
        }
        if let Some(p) = data.iter().position(|v| !v.is_finite()) {
            return Err(SaeError::Unsupported(format!("row {} holds a NaN or infinite value", p / d)));
        }
        Ok(Self { d, data })
    }

    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }
}

impl FeatureRows for DenseRows {
    fn dim(&self) -> usize {
        self.d
    }
    fn len(&self) -> usize {
        self.data.len() / self.d
    }
    fn row(&self, i: usize) -> Row<'_> {
        Row::Dense(&self.data[i * self.d..(i + 1) * self.d])
    }
}

/// Sparse rows (SAE codes): the non-zero values of each row, compressed by row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SparseRows {
    d: usize,
    offsets: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl SparseRows {
    /// No rows yet, of width `d`.
    pub fn new(d: usize) -> Self {
        Self { d, offsets: vec![0], indices: Vec::new(), values: Vec::new() }
    }

    /// Appends the non-zero entries of dense rows `[n, d]` (all finite).
    pub fn push_dense(&mut self, dense: &[f32]) -> Result<()> {
        if self.d == 0 || dense.len() % self.d != 0 {
            return Err(SaeError::Unsupported(format!("{} values are not rows of width {}", dense.len(), self.d)));
        }
        for row in dense.chunks(self.d) {
            for (j, &v) in row.iter().enumerate() {
                if !v.is_finite() {
                    return Err(SaeError::Unsupported(format!("SAE code {j} of row {} is NaN or infinite", self.len())));
                }
                if v != 0.0 {
                    self.indices.push(j as u32);
                    self.values.push(v);
                }
            }
            self.offsets.push(self.indices.len());
        }
        Ok(())
    }

    /// The rows `idx`, in that order.
    pub fn select(&self, idx: &[usize]) -> Self {
        let mut out = Self::new(self.d);
        for &i in idx {
            let (a, b) = (self.offsets[i], self.offsets[i + 1]);
            out.indices.extend_from_slice(&self.indices[a..b]);
            out.values.extend_from_slice(&self.values[a..b]);
            out.offsets.push(out.indices.len());
        }
        out
    }
}

impl FeatureRows for SparseRows {
    fn dim(&self) -> usize {
        self.d
    }
    fn len(&self) -> usize {
        self.offsets.len() - 1
    }
    fn row(&self, i: usize) -> Row<'_> {
        let (a, b) = (self.offsets[i], self.offsets[i + 1]);
        Row::Sparse { indices: &self.indices[a..b], values: &self.values[a..b] }
    }
}
