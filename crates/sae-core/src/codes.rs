//! Sparse codes: the output of an SAE encoder.

use burn::tensor::{IndexingUpdateOp, Int, Tensor};

use crate::error::Result;
use crate::params::{host_f32, host_i64};

/// Per-row statistics of a runtime input normalisation, kept so that decoding can invert it.
///
/// Encoding sees `(x - shift) * in_scale`; decoding returns `y * out_scale + shift`.
#[derive(Debug, Clone)]
pub struct RowNorm {
    /// Subtracted before encoding, added after decoding: `[n, 1]`.
    pub shift: Tensor<2>,
    /// Multiplies the centred input: `[n, 1]`.
    pub in_scale: Tensor<2>,
    /// Multiplies the decoder output: `[n, 1]`.
    pub out_scale: Tensor<2>,
}

/// The latent values of a batch.
#[derive(Debug, Clone)]
pub enum CodeValues {
    /// `k` slots per row: values `[n, k]` and their latent indices `[n, k]`.
    /// Zero values are allowed (a selected latent whose activation is 0), and a negative index
    /// marks an empty slot (its value is 0), so that rows may hold different numbers of active
    /// latents (BatchTopK).
    TopK {
        /// Activations of the selected latents.
        values: Tensor<2>,
        /// Latent indices of the selected latents.
        indices: Tensor<2, Int>,
    },
    /// Dense activations `[n, d_sae]`, mostly zeros.
    Dense(Tensor<2>),
}

/// Sparse codes of a batch of `n` rows over `d_sae` latents.
#[derive(Debug, Clone)]
pub struct SparseCodes {
    /// The values.
    pub values: CodeValues,
    /// Number of latents.
    pub d_sae: usize,
    /// Runtime normalisation applied to the input, if any.
    pub row_norm: Option<RowNorm>,
}

impl SparseCodes {
    /// Codes from top-k values and indices.
    pub fn topk(values: Tensor<2>, indices: Tensor<2, Int>, d_sae: usize) -> Self {
        Self { values: CodeValues::TopK { values, indices }, d_sae, row_norm: None }
    }

    /// Codes from dense activations `[n, d_sae]`.
    pub fn dense(acts: Tensor<2>) -> Self {
        let d_sae = acts.dims()[1];
        Self { values: CodeValues::Dense(acts), d_sae, row_norm: None }
    }

    /// Attaches the normalisation statistics of the input.
    pub fn with_row_norm(mut self, row_norm: Option<RowNorm>) -> Self {
        self.row_norm = row_norm;
        self
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        match &self.values {
            CodeValues::TopK { values, .. } => values.dims()[0],
            CodeValues::Dense(acts) => acts.dims()[0],
        }
    }

    /// Dense activations `[n, d_sae]`. Allocates `n × d_sae` floats for top-k codes.
    pub fn to_dense(&self) -> Tensor<2> {
        match &self.values {
            CodeValues::Dense(acts) => acts.clone(),
            CodeValues::TopK { values, indices } => {
                let [n, _] = values.dims();
                let empty = indices.clone().lower_elem(0);
                Tensor::zeros([n, self.d_sae], &values.device()).scatter(
                    1,
                    indices.clone().clamp_min(0),
                    values.clone().mask_fill(empty, 0.0),
                    IndexingUpdateOp::Add,
                )
            }
        }
    }

    /// Number of non-zero latents in each row, `[n]`.
    pub fn l0_per_row(&self) -> Tensor<1> {
        let vals = match &self.values {
            CodeValues::TopK { values, .. } => values.clone(),
            CodeValues::Dense(acts) => acts.clone(),
        };
        vals.detach().not_equal_elem(0.0).float().sum_dim(1).squeeze_dim(1)
    }

    /// How many rows each latent is active (> 0) on, `[d_sae]`, read back to the host. For
    /// top-k codes this reads only the `n × k` selected values and indices.
    pub fn firing_counts(&self) -> Result<Vec<f32>> {
        Ok(match &self.values {
            CodeValues::TopK { values, indices } => {
                let vals = host_f32(values.clone().detach().into_data())?;
                let idx = host_i64(indices.clone().into_data())?;
                let mut counts = vec![0.0f32; self.d_sae];
                for (v, i) in vals.iter().zip(&idx) {
                    if *v > 0.0
                        && let Some(c) = usize::try_from(*i).ok().and_then(|i| counts.get_mut(i))
                    {
                        *c += 1.0;
                    }
                }
                counts
            }
            CodeValues::Dense(acts) => {
                let active = acts.clone().detach().greater_elem(0.0).float();
                host_f32(active.sum_dim(0).reshape([self.d_sae]).into_data())?
            }
        })
    }

    /// The smallest positive activation of the batch, or `None` when nothing fired (what the
    /// BatchTopK inference threshold follows). Reads only the `n × k` values of top-k codes.
    pub fn smallest_positive(&self) -> Result<Option<f32>> {
        Ok(match &self.values {
            CodeValues::TopK { values, .. } => host_f32(values.clone().detach().into_data())?.into_iter().filter(|v| *v > 0.0).reduce(f32::min),
            CodeValues::Dense(acts) => {
                let acts = acts.clone().detach();
                let positive = acts.clone().greater_elem(0.0);
                if !positive.clone().any().into_scalar::<bool>() {
                    return Ok(None);
                }
                Some(acts.mask_fill(positive.bool_not(), f32::INFINITY).min().into_scalar::<f32>())
            }
        })
    }
}
