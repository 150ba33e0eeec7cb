//! Host slices and views: wrong lengths are typed errors, Flex tensors are borrowed in place,
//! and the in-place decoder row updates equal the portable ops.

use burn::tensor::{Device, Tensor, TensorData};
use sae_kernels::host::{Eligible, HostEncoder, describe, fused_topk_encode, topk_row, topk_rows};
use sae_core::params::host_f32;
use sae_core::tolerance;

use super::normals;

#[test]
fn slices_of_the_wrong_length_are_typed_errors_not_panics() {
    use sae_core::SaeError;
    use sae_kernels::host::{HostRun, gemm::matmul, sparse};
    let bad = |r: Result<Vec<f32>, SaeError>, name: &str| match r {
        Err(SaeError::ShapeMismatch { name: n, .. }) => assert_eq!(n, name),
        other => panic!("{name}: expected a shape error, got {other:?}"),
    };
    bad(matmul(&[1.0; 5], 2, &[1.0; 6], 3, 2, HostRun::threads(2)), "a");
    bad(matmul(&[1.0; 6], 2, &[1.0; 5], 3, 2, HostRun::threads(2)), "b");
    bad(sparse::sparse_decode(&[1.0; 3], &[0; 4], &[1.0; 8], 2, 2, 4, 2), "coefficients");
    bad(sparse::gather_dot(&[1.0; 7], &[0; 4], &[1.0; 8], 2, 2, 4, 2), "x");
    bad(sparse::scatter_outer(&[1.0; 4], &[0; 3], &[1.0; 8], 2, 2, 4, 2, 2), "indices");
    assert!(matches!(topk_rows(&[1.0; 5], 2, 3, 1, Eligible::All, 2), Err(SaeError::ShapeMismatch { .. })));
    let enc = HostEncoder { w_enc: &[1.0; 6], b_enc: &[0.0; 2], scale: None, d_in: 3, d_sae: 3 };
    assert!(matches!(fused_topk_encode(&[1.0; 6], 2, &enc, 1, None, HostRun::threads(2)), Err(SaeError::ShapeMismatch { .. })));
    // A mask shorter than the row selects nothing past its end instead of panicking.
    let (mut v, mut i) = ([0.0f32; 2], [0i64; 2]);
    topk_row(&[1.0, 2.0, 3.0], 2, Eligible::Only(&[true]), &mut v, &mut i);
    assert_eq!((v, i), ([1.0, f32::NEG_INFINITY], [0, 0]));
    // Out-of-range indices contribute nothing.
    assert_eq!(sparse::sparse_decode(&[2.0, 3.0], &[-1, 9], &[1.0; 4], 1, 2, 2, 1).unwrap(), vec![0.0, 0.0]);
}

#[test]
fn host_view_borrows_flex_tensors_with_and_without_autodiff_and_copies_views() {
    use sae_kernels::host::HostF32;
    let device = Device::flex();
    let values = normals(6 * 5, 11);
    let t = Tensor::<2>::from_data(TensorData::new(values.clone(), [6, 5]), &device);
    let plain = HostF32::of(&t).unwrap();
    assert!(plain.is_borrowed());
    assert_eq!(plain.as_slice(), &values[..]);
    let param = t.clone().autodiff().require_grad();
    let tracked = HostF32::of(&param).unwrap();
    assert!(tracked.is_borrowed(), "an autodiff tensor's inner storage is read in place");
    assert_eq!(tracked.as_slice(), &values[..]);
    assert!(HostF32::of(&param.clone().detach()).unwrap().is_borrowed());
    // A transposed view is not row-major storage: copied, in the view's order.
    let tv = HostF32::of(&t.clone().transpose()).unwrap();
    assert!(!tv.is_borrowed());
    assert_eq!(tv.as_slice(), &host_f32(t.transpose().into_data()).unwrap()[..]);
}

#[test]
fn decoder_row_projection_and_renormalisation_equal_the_portable_ops() {
    use sae_kernels::KernelPolicy;
    use sae_kernels::portable::{normalize_rows as normalize_rows_portable, project_out_rows as project_out_rows_portable};
    let normalize_rows = |w, eps| sae_kernels::normalize_rows(KernelPolicy::fast(), w, eps).unwrap();
    let project_out_rows = |g, w: &Tensor<2>| sae_kernels::project_out_rows(KernelPolicy::fast(), g, w).unwrap();
    let device = Device::flex();
    // 131 rows: split unevenly over threads; 37 columns.
    let (rows, cols) = (131, 37);
    let w = Tensor::<2>::from_data(TensorData::new(normals(rows * cols, 21), [rows, cols]), &device);
    let unit = normalize_rows(w.clone(), f32::EPSILON);
    let want_unit = host_f32(normalize_rows_portable(w, f32::EPSILON).into_data()).unwrap();
    let got_unit = host_f32(unit.clone().into_data()).unwrap();
    // A unit row computed in two orders: the norm's sum of `cols` squares (relative error ε_cols
    // of Σv² = ‖v‖², half of it in ‖v‖) and the division, about elements of size ≤ 1.
    let eps = tolerance::between_implementations(cols) + 4.0 * tolerance::UNIT_ROUNDOFF;
    assert!(got_unit.iter().zip(&want_unit).all(|(a, b)| ((a - b).abs() as f64) <= eps), "on {}", describe());
    for r in 0..rows {
        let norm: f32 = got_unit[r * cols..(r + 1) * cols].iter().map(|v| v * v).sum::<f32>().sqrt();
        assert!(((norm - 1.0).abs() as f64) <= 2.0 * eps, "row {r}: norm {norm}");
    }
    let g = Tensor::<2>::from_data(TensorData::new(normals(rows * cols, 22), [rows, cols]), &device);
    let want = host_f32(project_out_rows_portable(g.clone(), &unit).into_data()).unwrap();
    let hg = host_f32(g.clone().into_data()).unwrap();
    let got = host_f32(project_out_rows(g, &unit).into_data()).unwrap();
    // g − (g·u)·u in two orders: the dot product's ε_cols·Σ|gᵢuᵢ| ≤ ε_cols·‖g‖ (u a unit row)
    // times |u| ≤ 1, plus the roundings of the product and the difference, relative to ‖g‖.
    let row_norm = |r: usize| hg[r * cols..(r + 1) * cols].iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt();
    for (e, (a, b)) in got.iter().zip(&want).enumerate() {
        assert!(((a - b).abs() as f64) <= 2.0 * eps * row_norm(e / cols), "[{}, {}]: {a} vs {b}; on {}", e / cols, e % cols, describe());
    }
    // What is left is orthogonal to each row, up to the same errors and one more dot product.
    for r in 0..rows {
        let dot: f32 = (0..cols).map(|c| got[r * cols + c] * got_unit[r * cols + c]).sum();
        assert!((dot.abs() as f64) <= 4.0 * eps * row_norm(r), "row {r}: {dot}");
    }
}
