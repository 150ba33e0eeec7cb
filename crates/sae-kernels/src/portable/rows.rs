//! The row-wise decoder updates in burn tensor ops.

use burn::tensor::Tensor;

/// `g[i] − w[i] · ⟨g[i], w[i]⟩` for each row of `g` and `w` `[r, c]`.
pub fn project_out_rows(g: Tensor<2>, w: &Tensor<2>) -> Tensor<2> {
    let parallel = (g.clone() * w.clone()).sum_dim(1);
    g - w.clone() * parallel
}

/// `w[i] / (‖w[i]‖ + eps)` for each row of `w`.
pub fn normalize_rows(w: Tensor<2>, eps: f32) -> Tensor<2> {
    let norms = crate::row_norms(w.clone()).add_scalar(eps).unsqueeze_dim(1);
    w / norms
}
