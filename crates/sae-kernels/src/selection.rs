//! What the fused encoders share: the AuxK request, the selection they return, and the steps
//! around a selection made on detached tensors (recomputing the winners' values with gradients,
//! selecting by tensor ops in bounded blocks of rows, reading the encoder on the host).

use burn::tensor::{Bool, Int, Tensor};
use sae_core::Result;

use crate::Kernels;
use crate::linear_encoder::LinearEncoder;

/// A second selection for AuxK: the `k` largest pre-activations among the latents flagged in
/// `dead` `[d_sae]`. When fewer than `k` latents are flagged, the extra slots hold value 0.
#[derive(Debug, Clone, Copy)]
pub struct AuxSelect<'a> {
    /// Latents that may be selected.
    pub dead: &'a Tensor<1, Bool>,
    /// How many per row; at most the number of flagged latents.
    pub k: usize,
}

/// What a fused encoder ([`topk_encode`](super::topk_encode), [`batch_topk_encode`](super::batch_topk_encode),
/// [`groupmax_encode`](super::groupmax_encode)) selected.
#[derive(Debug, Clone)]
pub struct TopKSelection {
    /// ReLU of the selected pre-activations, `[n, slots]`: per row in descending order for
    /// top-k and BatchTopK (whose empty slots, after a row's winners, hold 0), in group order
    /// for groupmax.
    pub values: Tensor<2>,
    /// Their latent indices, `[n, slots]`; `-1` marks an empty slot.
    pub indices: Tensor<2, Int>,
    /// The auxiliary selection, when asked for: raw pre-activations (no ReLU) `[n, k_aux]` and
    /// their indices.
    pub aux: Option<(Tensor<2>, Tensor<2, Int>)>,
}

/// A selection made on detached tensors ([`Kernels::select_topk`],
/// [`Kernels::select_batch_topk`]), values raw (before ReLU).
#[derive(Debug, Clone)]
pub struct Selected {
    /// Selected pre-activations `[n, slots]`.
    pub values: Tensor<2>,
    /// Their latent indices `[n, slots]`; `-1` marks an empty slot.
    pub indices: Tensor<2, Int>,
    /// The auxiliary selection's values and indices `[n, k_aux]`, when asked for.
    pub aux: Option<(Tensor<2>, Tensor<2, Int>)>,
}

/// Turns a detached selection into the differentiable one: when autodiff tracks the input or
/// a weight, the values of the selected latents are recomputed from the weights
/// ([`Kernels::gather_pre`]), so gradients flow through them only. Auxiliary slots that hold
/// a latent that is not flagged are zeroed, and the main values go through ReLU.
pub(crate) fn finish_selection(kernels: &dyn Kernels, xc: Tensor<2>, enc: &LinearEncoder, selected: Selected, aux: Option<AuxSelect<'_>>) -> Result<TopKSelection> {
    let Selected { values, indices, aux: aux_sel } = selected;
    let (values, aux_sel) = if enc.tracks_gradients(&xc) {
        let values = kernels.gather_pre(enc, xc.clone(), indices.clone())?;
        let aux_sel = match aux_sel {
            Some((_, i)) => Some((kernels.gather_pre(enc, xc, i.clone())?, i)),
            None => None,
        };
        (values, aux_sel)
    } else {
        (values, aux_sel)
    };
    // Slots beyond the number of flagged latents hold a latent that is not flagged: zero them.
    let aux = aux.zip(aux_sel).map(|(a, (v, i))| {
        let [rows, ka] = i.dims();
        let flagged = a.dead.clone().float().select(0, i.clone().reshape([rows * ka])).reshape([rows, ka]);
        (v.mask_fill(flagged.lower_elem(0.5), 0.0), i)
    });
    Ok(TopKSelection { values: values.clamp_min(0.0), indices, aux })
}

/// The AuxK selection by tensor ops on detached pre-activations `pre`.
pub(crate) fn aux_with_tensor_ops(pre: &Tensor<2>, aux: Option<AuxSelect<'_>>) -> Option<(Tensor<2>, Tensor<2, Int>)> {
    aux.map(|a| {
        let masked = pre.clone().mask_fill(a.dead.clone().bool_not().unsqueeze_dim(0), f32::NEG_INFINITY);
        masked.topk_with_indices(a.k, 1)
    })
}

/// Most dense pre-activations (floats) a selection by tensor ops holds at once: 2²⁵ (128 MiB).
const DENSE_BUDGET: usize = 1 << 25;

/// Runs a per-row selection `select` on blocks of rows of `xc` small enough that their dense
/// pre-activations (`rows × d_sae`) stay within [`DENSE_BUDGET`], and joins the results.
pub(crate) fn in_row_chunks(xc: &Tensor<2>, d_sae: usize, select: impl FnMut(Tensor<2>) -> Result<Selected>) -> Result<Selected> {
    in_chunks_of(xc, (DENSE_BUDGET / d_sae.max(1)).max(1), select)
}

/// [`in_row_chunks`] with `chunk` rows per block.
fn in_chunks_of(xc: &Tensor<2>, chunk: usize, mut select: impl FnMut(Tensor<2>) -> Result<Selected>) -> Result<Selected> {
    let [n, d_in] = xc.dims();
    if n <= chunk {
        return select(xc.clone());
    }
    let (mut values, mut indices, mut aux_v, mut aux_i) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for start in (0..n).step_by(chunk) {
        let Selected { values: v, indices: i, aux: a } = select(xc.clone().slice([start..(start + chunk).min(n), 0..d_in]))?;
        values.push(v);
        indices.push(i);
        if let Some((av, ai)) = a {
            aux_v.push(av);
            aux_i.push(ai);
        }
    }
    let aux = (!aux_v.is_empty()).then(|| (Tensor::cat(aux_v, 0), Tensor::cat(aux_i, 0)));
    Ok(Selected { values: Tensor::cat(values, 0), indices: Tensor::cat(indices, 0), aux })
}

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn selections_in_row_blocks_equal_one_selection() {
        let device = Device::flex();
        let (n, d_in, d_sae) = (11, 5, 17);
        let data = |len: usize, seed: u64| {
            let mut rng = sae_core::rng::SplitMix64::new(seed);
            (0..len).map(|_| rng.normal()).collect::<Vec<f32>>()
        };
        let xc = Tensor::<2>::from_data(TensorData::new(data(n * d_in, 1), [n, d_in]), &device);
        let enc = LinearEncoder {
            w_enc: Tensor::from_data(TensorData::new(data(d_in * d_sae, 2), [d_in, d_sae]), &device),
            b_enc: Tensor::from_data(TensorData::new(data(d_sae, 3), [d_sae]), &device),
            scale: None,
        };
        let dead = Tensor::<1>::from_data(TensorData::new((0..d_sae).map(|j| (j % 3 == 0) as u8 as f32).collect::<Vec<f32>>(), [d_sae]), &device).greater_elem(0.5);
        let aux = Some(AuxSelect { dead: &dead, k: 2 });
        let select = |rows: Tensor<2>| {
            let pre = enc.pre_with(&crate::Portable, rows)?;
            let a = aux_with_tensor_ops(&pre, aux);
            let (v, i) = pre.topk_with_indices(4, 1);
            Ok(Selected { values: v, indices: i, aux: a })
        };
        let ints = |t: Tensor<2, Int>| t.into_data().try_into_vec_as::<i64>().unwrap();
        let floats = |t: Tensor<2>| sae_core::params::host_f32(t.into_data()).unwrap();
        let Selected { values: v1, indices: i1, aux: a1 } = in_chunks_of(&xc, n, select).unwrap();
        let Selected { values: v3, indices: i3, aux: a3 } = in_chunks_of(&xc, 3, select).unwrap();
        let ((av1, ai1), (av3, ai3)) = (a1.unwrap(), a3.unwrap());
        assert_eq!(ints(i1), ints(i3));
        assert_eq!(ints(ai1), ints(ai3));
        assert_eq!(floats(v1), floats(v3));
        assert_eq!(floats(av1), floats(av3));
    }
}
