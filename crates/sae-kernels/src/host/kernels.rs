//! [`HostKernels`]: the [`Kernels`] of the CPU backends (Flex, NdArray). Each method reads its
//! operands to host slices (in place where the backend allows, [`HostF32`]), runs the threaded
//! slice kernel of this module's siblings, and wraps the result as a tensor of the same backend.
//! A read that fails is an error; shapes a kernel cannot take go to the portable version, which
//! reports them in burn's words.

use burn::tensor::{DType, Device, Int, Tensor, TensorData};
use sae_core::params::host_f32;
use sae_core::{KernelPolicy, ParamTensor, Result};

use super::{HostAuxSelect, HostEncoder, HostF32, HostRun, adam, fused_batch_topk_encode, fused_topk_encode, rows};
use crate::adam::{AdamCoefficients, AdamMoments};
use crate::extension::{dense, sparse};
use crate::linear_encoder::LinearEncoder;
use crate::matmul::DenseActivation;
use crate::selection::{AuxSelect, Selected};
use crate::{Kernels, Route, portable};

/// The CPU kernels, running under a [`KernelPolicy`] (threads, GEMM).
#[derive(Debug, Clone, Copy)]
pub struct HostKernels {
    policy: KernelPolicy,
}

impl HostKernels {
    /// The host kernels under `policy`.
    pub fn new(policy: KernelPolicy) -> Self {
        Self { policy }
    }

    fn run(&self) -> HostRun {
        HostRun::of(&self.policy)
    }
}

impl Kernels for HostKernels {
    fn route(&self) -> Route {
        Route::Host
    }

    fn matmul(&self, a: Tensor<2>, b: Tensor<2>) -> Result<Tensor<2>> {
        // Without autodiff this is the Flex/NdArray implementation itself (the host GEMM on the
        // tensors' own memory); under autodiff, the same GEMM with its backward.
        Ok(dense::matmul_t(a, b, false, false, self.policy))
    }

    fn dense_encode(&self, x: Tensor<2>, w: Tensor<2>, b: Tensor<1>, activation: &DenseActivation) -> Result<Tensor<2>> {
        let threshold = match activation {
            DenseActivation::JumpRelu(t) => Some(t),
            DenseActivation::Relu => None,
        };
        // A bias or threshold whose length is not `w`'s width goes to the portable version,
        // whose burn ops report the mismatch (an epilogue's `zip` would skip the extra columns).
        let n = w.dims()[1];
        let fits = b.dims()[0] == n && threshold.is_none_or(|t| t.dims()[0] == n) && x.dims()[1] == w.dims()[0];
        let plain = |d: Device| !d.is_autodiff();
        if fits && plain(x.device()) && plain(w.device()) && plain(b.device()) && threshold.is_none_or(|t| plain(t.device())) {
            let ([m, k], device) = (x.dims(), x.device());
            let (xv, wv, bv) = (HostF32::of(&x)?, HostF32::of(&w)?, host_f32(b.into_data())?);
            let tv = threshold.map(|t| host_f32(t.clone().into_data())).transpose()?;
            let out = super::gemm::matmul_then(xv.as_slice(), m, wv.as_slice(), k, n, self.run(), |row| match &tv {
                Some(t) => row.iter_mut().zip(&bv).zip(t).for_each(|((p, b), t)| {
                    let v = *p + b;
                    *p = if v > *t { v.max(0.0) } else { 0.0 };
                }),
                None => row.iter_mut().zip(&bv).for_each(|(p, b)| *p = (*p + b).max(0.0)),
            })?;
            return Ok(Tensor::from_data(TensorData::new(out, [m, n]), &device));
        }
        if fits && matches!(activation, DenseActivation::Relu) {
            return Ok(dense::linear_relu(x, w, b, self.policy));
        }
        Ok(portable::dense_activation(self.matmul(x, w)? + b.unsqueeze_dim(0), activation))
    }

    fn sparse_decode(&self, values: Tensor<2>, indices: Tensor<2, Int>, w_dec: Tensor<2>) -> Result<Tensor<2>> {
        Ok(sparse::sparse_decode(values, indices, w_dec, self.policy))
    }

    fn gather_pre(&self, enc: &LinearEncoder, xc: Tensor<2>, indices: Tensor<2, Int>) -> Result<Tensor<2>> {
        Ok(enc.pre_at_kernel(xc, indices, self.policy))
    }

    fn select_topk(&self, xc: &Tensor<2>, enc: &LinearEncoder, k: usize, aux: Option<AuxSelect<'_>>) -> Result<Selected> {
        if k == 0 {
            return portable::select_topk(self, xc, enc, k, aux);
        }
        let n = xc.dims()[0];
        let sel = with_host_encoder(xc, enc, aux, |x, host_enc, host_aux| fused_topk_encode(x, n, host_enc, k, host_aux, self.run()))??;
        Ok(host_selected(&xc.device(), n, (sel.values, sel.indices, k), (sel.aux_values, sel.aux_indices), aux))
    }

    fn select_batch_topk(&self, xc: &Tensor<2>, enc: &LinearEncoder, k_total: usize, aux: Option<AuxSelect<'_>>) -> Result<Selected> {
        let n = xc.dims()[0];
        let sel = with_host_encoder(xc, enc, aux, |x, host_enc, host_aux| fused_batch_topk_encode(x, n, host_enc, k_total, host_aux, self.run()))??;
        Ok(host_selected(&xc.device(), n, (sel.values, sel.indices, sel.width), (sel.aux_values, sel.aux_indices), aux))
    }

    fn project_out_rows(&self, g: Tensor<2>, w: &Tensor<2>) -> Result<Tensor<2>> {
        if !(in_place(&g) && in_place(w) && g.dims() == w.dims()) {
            return Ok(portable::project_out_rows(g, w));
        }
        let ([r, c], device) = (g.dims(), g.device());
        let wv = HostF32::of(w)?;
        let mut data = g.into_data();
        let gs = data.as_mut_slice::<f32>().map_err(|e| sae_core::SaeError::host_read("the decoder gradient", format!("{e:?}")))?;
        rows::project_out_rows(gs, wv.as_slice(), r, c, self.policy.host_threads())?;
        Ok(Tensor::from_data(data, &device))
    }

    fn normalize_rows(&self, w: Tensor<2>, eps: f32) -> Result<Tensor<2>> {
        if !in_place(&w) {
            return Ok(portable::normalize_rows(w, eps));
        }
        let ([r, c], device) = (w.dims(), w.device());
        let mut data = w.into_data();
        let ws = data.as_mut_slice::<f32>().map_err(|e| sae_core::SaeError::host_read("the decoder", format!("{e:?}")))?;
        rows::normalize_rows(ws, r, c, eps, self.policy.host_threads())?;
        Ok(Tensor::from_data(data, &device))
    }

    fn adam_update(&self, p: ParamTensor, g: ParamTensor, m: Option<ParamTensor>, v: Option<ParamTensor>, c: AdamCoefficients) -> Result<AdamMoments> {
        let threads = self.policy.host_threads();
        match (p, g) {
            (ParamTensor::Matrix(p), ParamTensor::Matrix(g)) => adam_tensor(p, g, (m, v), c, threads, ParamTensor::Matrix, |t| match t {
                ParamTensor::Matrix(t) => Some(t),
                ParamTensor::Vector(_) => None,
            }),
            (ParamTensor::Vector(p), ParamTensor::Vector(g)) => adam_tensor(p, g, (m, v), c, threads, ParamTensor::Vector, |t| match t {
                ParamTensor::Vector(t) => Some(t),
                ParamTensor::Matrix(_) => None,
            }),
            // A rank mismatch: the portable version reports it.
            (p, g) => portable::adam_update(p, g, m, v, c),
        }
    }
}

/// The Adam update of one rank-`D` parameter on the host, or by the portable version when its
/// operands' shapes differ (which reports them). `wrap` and `unwrap` move between the tensor and
/// its [`ParamTensor`] variant.
fn adam_tensor<const D: usize>(
    p: Tensor<D>,
    g: Tensor<D>,
    (m, v): (Option<ParamTensor>, Option<ParamTensor>),
    c: AdamCoefficients,
    threads: usize,
    wrap: fn(Tensor<D>) -> ParamTensor,
    unwrap: fn(ParamTensor) -> Option<Tensor<D>>,
) -> Result<AdamMoments> {
    match adam_on_host(p, g, m.and_then(unwrap), v.and_then(unwrap), c, threads)? {
        Ok((p, m, v)) => Ok(AdamMoments { param: wrap(p), m: wrap(m), v: wrap(v) }),
        Err(back) => {
            let (p, g, m, v) = *back;
            portable::adam_update(wrap(p), wrap(g), m.map(wrap), v.map(wrap), c)
        }
    }
}

/// Whether the in-place host kernels apply to `t`: f32, not on an autodiff device.
fn in_place(t: &Tensor<2>) -> bool {
    !t.device().is_autodiff() && t.dtype() == DType::F32
}

/// Updated `(parameter, first moment, second moment)`.
type Moments<const D: usize> = (Tensor<D>, Tensor<D>, Tensor<D>);

/// `(parameter, gradient, first moment, second moment)` handed back for the portable version.
type Operands<const D: usize> = Box<(Tensor<D>, Tensor<D>, Option<Tensor<D>>, Option<Tensor<D>>)>;

/// The Adam update of one tensor in one threaded pass over its own buffers (which a CPU backend
/// hands over without a copy when nothing else holds them). `Ok(Err(operands))` gives the
/// tensors back for the portable version when their shapes differ (it reports that).
fn adam_on_host<const D: usize>(p: Tensor<D>, g: Tensor<D>, m: Option<Tensor<D>>, v: Option<Tensor<D>>, c: AdamCoefficients, threads: usize) -> Result<std::result::Result<Moments<D>, Operands<D>>> {
    let (device, shape) = (p.device(), p.dims());
    let same_shape = g.dims() == shape && m.as_ref().is_none_or(|m| m.dims() == shape) && v.as_ref().is_none_or(|v| v.dims() == shape);
    if !same_shape {
        return Ok(Err(Box::new((p, g, m, v))));
    }
    let host = |t: Tensor<D>| t.into_data().convert_dtype(DType::F32);
    let zeros = || TensorData::new(vec![0.0f32; shape.iter().product::<usize>()], shape);
    // A matrix gradient stored transposed (`W_enc`'s, from the sparse backward) is read in place
    // in that layout rather than copied into the parameter's.
    let transposed = if D == 2 && HostF32::borrowed(&g).is_none() { HostF32::borrowed(&g.clone().swap_dims(0, 1)) } else { None };
    let mut pd = host(p);
    let (mut md, mut vd) = (m.map_or_else(zeros, host), v.map_or_else(zeros, host));
    let read = |e| sae_core::SaeError::host_read("an Adam operand", format!("{e:?}"));
    let (ps, ms, vs) = (pd.as_mut_slice::<f32>().map_err(read)?, md.as_mut_slice::<f32>().map_err(read)?, vd.as_mut_slice::<f32>().map_err(read)?);
    match &transposed {
        Some(gt) => adam::adam_update_transposed(ps, gt.as_slice(), ms, vs, shape[0], shape[1], c, threads)?,
        None => adam::adam_update(ps, HostF32::of(&g)?.as_slice(), ms, vs, c, threads)?,
    }
    let tensor = |d: TensorData| Tensor::<D>::from_data(d, &device);
    Ok(Ok((tensor(pd), tensor(md), tensor(vd))))
}

/// Runs `f` on host views of `xc`, the encoder and the AuxK flags: `xc` and `W_enc` are read in
/// place where the backend allows ([`HostF32`]).
fn with_host_encoder<T>(xc: &Tensor<2>, enc: &LinearEncoder, aux: Option<AuxSelect<'_>>, f: impl FnOnce(&[f32], &HostEncoder<'_>, Option<HostAuxSelect<'_>>) -> T) -> Result<T> {
    let d_in = xc.dims()[1];
    let d_sae = enc.w_enc.dims()[1];
    let x = HostF32::of(xc)?;
    let w = HostF32::of(&enc.w_enc)?;
    let b = host_f32(enc.b_enc.clone().detach().into_data())?;
    let s = enc.scale.as_ref().map(|s| host_f32(s.clone().detach().into_data())).transpose()?;
    let dead = aux.map(|a| host_f32(a.dead.clone().float().into_data()).map(|v| v.into_iter().map(|v| v > 0.5).collect::<Vec<bool>>())).transpose()?;
    let host_enc = HostEncoder { w_enc: w.as_slice(), b_enc: &b, scale: s.as_deref(), d_in, d_sae };
    let host_aux = aux.zip(dead.as_deref()).map(|(a, eligible)| HostAuxSelect { eligible, k: a.k });
    Ok(f(x.as_slice(), &host_enc, host_aux))
}

/// Tensors on `device` from a host selection: `main` is `(values, indices, width)` row-major
/// `[n, width]`, `aux_sel` the auxiliary values and indices `[n, aux.k]`.
fn host_selected(device: &Device, n: usize, main: (Vec<f32>, Vec<i64>, usize), aux_sel: (Vec<f32>, Vec<i64>), aux: Option<AuxSelect<'_>>) -> Selected {
    let float = |v: Vec<f32>, cols: usize| Tensor::<2>::from_data(TensorData::new(v, [n, cols]), device);
    let int = |v: Vec<i64>, cols: usize| Tensor::<2, Int>::from_data(TensorData::new(v, [n, cols]), device);
    let (values, indices, width) = main;
    let aux = aux.map(|a| (float(aux_sel.0, a.k), int(aux_sel.1, a.k)));
    Selected { values: float(values, width), indices: int(indices, width), aux }
}
