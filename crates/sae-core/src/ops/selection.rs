//! What the fused encoders share: the AuxK request, the selection they return, and the steps
//! around a selection made on detached tensors (recomputing the winners' values with gradients,
//! selecting by tensor ops in bounded blocks of rows, reading the encoder on the host).

use burn::tensor::{Bool, Int, Tensor};
#[cfg(any(feature = "flex", feature = "ndarray"))]
use burn::tensor::TensorData;

#[cfg(any(feature = "flex", feature = "ndarray"))]
use super::host;
use super::LinearEncoder;
#[cfg(any(feature = "flex", feature = "ndarray"))]
use crate::params::host_f32;

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

/// A selection made on detached tensors: `(values, indices, aux)`, values raw (before ReLU).
pub(crate) type Selected = (Tensor<2>, Tensor<2, Int>, Option<(Tensor<2>, Tensor<2, Int>)>);

/// Turns a detached selection into the differentiable one: when autodiff tracks the input or
/// a weight, the values of the selected latents are recomputed from the weights
/// ([`LinearEncoder::pre_at`]), so gradients flow through them only. Auxiliary slots that hold
/// a latent that is not flagged are zeroed, and the main values go through ReLU.
pub(crate) fn finish_selection(xc: Tensor<2>, enc: &LinearEncoder, selected: Selected, aux: Option<AuxSelect<'_>>) -> TopKSelection {
    let (values, indices, aux_sel) = selected;
    let (values, aux_sel) = if enc.tracks_gradients(&xc) {
        let values = enc.pre_at(xc.clone(), indices.clone());
        let aux_sel = aux_sel.map(|(_, i)| (enc.pre_at(xc, i.clone()), i));
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
    TopKSelection { values: values.clamp_min(0.0), indices, aux }
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
pub(crate) fn in_row_chunks(xc: &Tensor<2>, d_sae: usize, select: impl FnMut(Tensor<2>) -> Selected) -> Selected {
    in_chunks_of(xc, (DENSE_BUDGET / d_sae.max(1)).max(1), select)
}

/// [`in_row_chunks`] with `chunk` rows per block.
fn in_chunks_of(xc: &Tensor<2>, chunk: usize, mut select: impl FnMut(Tensor<2>) -> Selected) -> Selected {
    let [n, d_in] = xc.dims();
    if n <= chunk {
        return select(xc.clone());
    }
    let (mut values, mut indices, mut aux_v, mut aux_i) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for start in (0..n).step_by(chunk) {
        let (v, i, a) = select(xc.clone().slice([start..(start + chunk).min(n), 0..d_in]));
        values.push(v);
        indices.push(i);
        if let Some((av, ai)) = a {
            aux_v.push(av);
            aux_i.push(ai);
        }
    }
    let aux = (!aux_v.is_empty()).then(|| (Tensor::cat(aux_v, 0), Tensor::cat(aux_i, 0)));
    (Tensor::cat(values, 0), Tensor::cat(indices, 0), aux)
}

/// Runs `f` on host views of `xc`, the encoder and the AuxK flags: `xc` and `W_enc` are read in
/// place where the backend allows ([`host::HostF32`]).
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub(crate) fn with_host_encoder<T>(
    xc: &Tensor<2>,
    enc: &LinearEncoder,
    aux: Option<AuxSelect<'_>>,
    f: impl FnOnce(&[f32], &host::HostEncoder<'_>, Option<host::HostAuxSelect<'_>>) -> T,
) -> T {
    let d_in = xc.dims()[1];
    let d_sae = enc.w_enc.dims()[1];
    let x = host::HostF32::of(xc);
    let w = host::HostF32::of(&enc.w_enc);
    let b = host_f32(enc.b_enc.clone().detach().into_data());
    let s = enc.scale.as_ref().map(|s| host_f32(s.clone().detach().into_data()));
    let dead = aux.map(|a| host_f32(a.dead.clone().float().into_data()).into_iter().map(|v| v > 0.5).collect::<Vec<bool>>());
    let host_enc = host::HostEncoder { w_enc: w.as_slice(), b_enc: &b, scale: s.as_deref(), d_in, d_sae };
    let host_aux = aux.zip(dead.as_deref()).map(|(a, eligible)| host::HostAuxSelect { eligible, k: a.k });
    f(x.as_slice(), &host_enc, host_aux)
}

/// Tensors on `device` from a host selection: `main` is `(values, indices, width)` row-major
/// `[n, width]`, `aux_sel` the auxiliary values and indices `[n, aux.k]`.
#[cfg(any(feature = "flex", feature = "ndarray"))]
pub(crate) fn host_selected(
    device: &burn::tensor::Device,
    n: usize,
    main: (Vec<f32>, Vec<i64>, usize),
    aux_sel: (Vec<f32>, Vec<i64>),
    aux: Option<AuxSelect<'_>>,
) -> Selected {
    let float = |v: Vec<f32>, cols: usize| Tensor::<2>::from_data(TensorData::new(v, [n, cols]), device);
    let int = |v: Vec<i64>, cols: usize| Tensor::<2, Int>::from_data(TensorData::new(v, [n, cols]), device);
    let (values, indices, width) = main;
    let aux = aux.map(|a| (float(aux_sel.0, a.k), int(aux_sel.1, a.k)));
    (float(values, width), int(indices, width), aux)
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
            let mut rng = crate::rng::SplitMix64::new(seed);
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
            let pre = enc.pre(rows);
            let a = aux_with_tensor_ops(&pre, aux);
            let (v, i) = pre.topk_with_indices(4, 1);
            (v, i, a)
        };
        let ints = |t: Tensor<2, Int>| t.into_data().try_into_vec_as::<i64>().unwrap();
        let floats = |t: Tensor<2>| crate::params::host_f32(t.into_data());
        let (v1, i1, a1) = in_chunks_of(&xc, n, select);
        let (v3, i3, a3) = in_chunks_of(&xc, 3, select);
        let ((av1, ai1), (av3, ai3)) = (a1.unwrap(), a3.unwrap());
        assert_eq!(ints(i1), ints(i3));
        assert_eq!(ints(ai1), ints(ai3));
        assert_eq!(floats(v1), floats(v3));
        assert_eq!(floats(av1), floats(av3));
    }
}
