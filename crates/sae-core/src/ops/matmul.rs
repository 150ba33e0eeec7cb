//! The dense encoder/decoder product and the dense encoders (ReLU, JumpReLU), on the fastest
//! kernel for the tensors' device.

use burn::tensor::Tensor;

#[cfg(any(feature = "flex", feature = "ndarray"))]
use super::host;

/// `a [m, k] · b [k, n]`. When both tensors are on Flex or NdArray without autodiff (inference,
/// or the detached selection pass of training), this is the threaded host GEMM
/// ([`host::gemm::matmul`]); under autodiff on those backends the same GEMM with its backward
/// ([`super::dense_kernels`]); otherwise burn's `matmul`, with its gradients. Allocates `m × n`.
pub fn matmul(a: Tensor<2>, b: Tensor<2>) -> Tensor<2> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    {
        let (da, db) = (a.device(), b.device());
        if host::is_host(&da) && (da.is_autodiff() || db.is_autodiff()) && !super::portable_only() {
            return super::dense_kernels::matmul_t(a, b, false, false);
        }
        if host::is_host(&da) && !da.is_autodiff() && !db.is_autodiff() && !super::portable_only() {
            let ([m, k], [_, n]) = (a.dims(), b.dims());
            let (av, bv) = (host::HostF32::of(&a), host::HostF32::of(&b));
            // Lengths come from the tensors' shapes; on a mismatch burn's matmul reports it.
            if let Ok(out) = host::gemm::matmul(av.as_slice(), m, bv.as_slice(), k, n, host::threads()) {
                return Tensor::from_data(burn::tensor::TensorData::new(out, [m, n]), &da);
            }
        }
    }
    a.matmul(b)
}

/// The activation of a dense encoder.
#[derive(Debug, Clone)]
pub enum DenseActivation {
    /// `max(pre, 0)`.
    Relu,
    /// `max(pre, 0) · [pre > threshold]`, with a per-latent threshold `[d_sae]`.
    JumpRelu(Tensor<1>),
}

/// `activation(x · w + b)`, `[m, n]`, for the dense (ReLU-family) encoders. On Flex and NdArray
/// without autodiff the bias and activation run inside the threaded GEMM, block by block; under
/// autodiff there, ReLU is one operation with a fused backward
/// ([`super::dense_kernels::linear_relu`]); otherwise burn tensor ops (differentiable).
/// Allocates `m × n`.
pub fn dense_encode(x: Tensor<2>, w: Tensor<2>, b: Tensor<1>, activation: &DenseActivation) -> Tensor<2> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    {
        let device = x.device();
        let threshold = match activation {
            DenseActivation::JumpRelu(t) => Some(t),
            DenseActivation::Relu => None,
        };
        let plain = |d: burn::tensor::Device| host::is_host(&d) && !d.is_autodiff() && !super::portable_only();
        // A bias or threshold whose length is not `w`'s width goes to burn's ops below, which
        // report the mismatch (the epilogue's `zip` would silently skip the extra columns).
        let n = w.dims()[1];
        let fits = b.dims()[0] == n && threshold.is_none_or(|t| t.dims()[0] == n);
        if fits && plain(device.clone()) && plain(w.device()) && plain(b.device()) && threshold.is_none_or(|t| plain(t.device())) {
            let ([m, k], [_, n]) = (x.dims(), w.dims());
            let host = |t: burn::tensor::TensorData| crate::params::host_f32(t);
            let (xv, wv, bv) = (host::HostF32::of(&x), host::HostF32::of(&w), host(b.clone().into_data()));
            let tv = threshold.map(|t| host(t.clone().into_data()));
            let out = host::gemm::matmul_then(xv.as_slice(), m, wv.as_slice(), k, n, host::threads(), |row| match &tv {
                Some(t) => row.iter_mut().zip(&bv).zip(t).for_each(|((p, b), t)| {
                    let v = *p + b;
                    *p = if v > *t { v.max(0.0) } else { 0.0 };
                }),
                None => row.iter_mut().zip(&bv).for_each(|(p, b)| *p = (*p + b).max(0.0)),
            });
            // Lengths come from the tensors' shapes; on a mismatch burn's ops below report it.
            if let Ok(out) = out {
                return Tensor::from_data(burn::tensor::TensorData::new(out, [m, n]), &device);
            }
        }
    }
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if matches!(activation, DenseActivation::Relu) && b.dims()[0] == w.dims()[1] && host::is_host(&x.device()) && !super::portable_only() {
        return super::dense_kernels::linear_relu(x, w, b);
    }
    let pre = matmul(x, w) + b.unsqueeze_dim(0);
    match activation {
        DenseActivation::Relu => pre.clamp_min(0.0),
        DenseActivation::JumpRelu(t) => {
            let gate = pre.clone().greater(t.clone().unsqueeze_dim(0)).float();
            pre.clamp_min(0.0) * gate
        }
    }
}
