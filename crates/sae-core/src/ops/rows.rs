//! Row-wise decoder updates: removing each row's component from its gradient, and rescaling
//! rows to unit norm. In place on the host (Flex, NdArray) when the tensor's buffer is not shared,
//! else in burn tensor ops.

use burn::tensor::Tensor;

/// `g[i] − w[i] · ⟨g[i], w[i]⟩` for each row (the gradient without its component along a
/// unit-norm row). `g` and `w` `[r, c]`; neither may be on an autodiff device.
pub fn project_out_rows(g: Tensor<2>, w: &Tensor<2>) -> Tensor<2> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if in_place_on_host(&g) && in_place_on_host(w) && g.dims() == w.dims() {
        let ([rows, cols], device) = (g.dims(), g.device());
        let wv = super::host::HostF32::of(w);
        let mut data = g.into_data();
        if let Ok(gs) = data.as_mut_slice::<f32>()
            && super::host::rows::project_out_rows(gs, wv.as_slice(), rows, cols, super::host::threads()).is_ok()
        {
            return Tensor::from_data(data, &device);
        }
        // Not f32 after all: the portable path on the data as it was.
        return project_out_rows_portable(Tensor::from_data(data, &device), w);
    }
    project_out_rows_portable(g, w)
}

/// [`project_out_rows`] in burn tensor ops (every backend).
pub fn project_out_rows_portable(g: Tensor<2>, w: &Tensor<2>) -> Tensor<2> {
    let parallel = (g.clone() * w.clone()).sum_dim(1);
    g - w.clone() * parallel
}

/// `w[i] / (‖w[i]‖ + eps)` for each row. `w` must not be on an autodiff device.
pub fn normalize_rows(w: Tensor<2>, eps: f32) -> Tensor<2> {
    #[cfg(any(feature = "flex", feature = "ndarray"))]
    if in_place_on_host(&w) {
        let ([rows, cols], device) = (w.dims(), w.device());
        let mut data = w.into_data();
        if let Ok(ws) = data.as_mut_slice::<f32>()
            && super::host::rows::normalize_rows(ws, rows, cols, eps, super::host::threads()).is_ok()
        {
            return Tensor::from_data(data, &device);
        }
        return normalize_rows_portable(Tensor::from_data(data, &device), eps);
    }
    normalize_rows_portable(w, eps)
}

/// [`normalize_rows`] in burn tensor ops (every backend).
pub fn normalize_rows_portable(w: Tensor<2>, eps: f32) -> Tensor<2> {
    let norms = super::row_norms(w.clone()).add_scalar(eps).unsqueeze_dim(1);
    w / norms
}

/// Whether the in-place host kernels apply to `t`: an f32 tensor on Flex or NdArray without
/// autodiff, and the kernels not turned off (`SAE_KERNELS=portable`).
#[cfg(any(feature = "flex", feature = "ndarray"))]
fn in_place_on_host(t: &Tensor<2>) -> bool {
    let device = t.device();
    super::host::is_host(&device) && !device.is_autodiff() && !super::portable_only() && t.dtype() == burn::tensor::DType::F32
}
