//! The one-pass host Adam update against the portable tensor-op update.

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::params::host_f32;
use sae_core::{KernelPolicy, ParamTensor};
use sae_kernels::host::{HostF32, HostKernels};
use sae_kernels::{AdamCoefficients, AdamMoments, Kernels, Portable};

use super::normals;

fn random(shape: [usize; 2], seed: u64, device: &Device) -> Tensor<2> {
    Tensor::from_data(TensorData::new(normals(shape[0] * shape[1], seed), shape), device)
}

fn matrix(t: ParamTensor) -> Tensor<2> {
    match t {
        ParamTensor::Matrix(t) => t,
        ParamTensor::Vector(_) => panic!("a matrix update returned a vector"),
    }
}

/// Same f32 operations in the same order: the host update gives the portable update's bits, over
/// several steps (moments carried over), at an odd size split over three threads, with the
/// gradient stored in the parameter's layout or transposed (as `W_enc`'s from the sparse
/// backward).
#[test]
fn host_update_equals_the_portable_update_bit_for_bit() {
    let device = Device::flex();
    let shape = [37, 301];
    let host = HostKernels::new(KernelPolicy::fast().with_threads(3));
    let (mut p_host, mut p_port) = (random(shape, 1, &device), random(shape, 1, &device));
    let start = random(shape, 1, &device);
    let (mut m_port, mut v_port): (Option<Tensor<2>>, Option<Tensor<2>>) = (None, None);
    let (mut m_host, mut v_host): (Option<Tensor<2>>, Option<Tensor<2>>) = (None, None);
    for step in 0..5u64 {
        let scale = 0.1 + step as f64;
        let g = match step % 2 {
            0 => random(shape, 100 + step, &device).mul_scalar(scale),
            _ => random([shape[1], shape[0]], 100 + step, &device).mul_scalar(scale).transpose(),
        };
        assert_eq!(HostF32::of(&g).unwrap().is_borrowed(), step % 2 == 0, "step {step}: the layout under test");
        let c = AdamCoefficients::at_step(0.9, 0.999, 1e-8, 1e-3 * (step + 1) as f64, step + 1);
        let wrap = |t: Option<Tensor<2>>| t.map(ParamTensor::Matrix);
        let AdamMoments { param, m, v } = host.adam_update(ParamTensor::Matrix(p_host), ParamTensor::Matrix(g.clone()), wrap(m_host), wrap(v_host), c).unwrap();
        (p_host, m_host, v_host) = (matrix(param), Some(matrix(m)), Some(matrix(v)));
        let AdamMoments { param, m, v } = Portable.adam_update(ParamTensor::Matrix(p_port), ParamTensor::Matrix(g), wrap(m_port), wrap(v_port), c).unwrap();
        (p_port, m_port, v_port) = (matrix(param), Some(matrix(m)), Some(matrix(v)));
    }
    let bits = |t: Tensor<2>| host_f32(t.into_data()).unwrap().into_iter().map(f32::to_bits).collect::<Vec<_>>();
    assert_eq!(bits(p_host.clone()), bits(p_port.clone()), "parameters");
    assert_eq!(bits(m_host.unwrap()), bits(m_port.unwrap()), "first moments");
    assert_eq!(bits(v_host.unwrap()), bits(v_port.unwrap()), "second moments");
    assert!(bits(p_host) != bits(start), "the parameters moved");
}

/// A gradient whose shape is not the parameter's is a typed error on both paths.
#[test]
fn a_gradient_of_another_shape_is_an_error() {
    let device = Device::flex();
    let c = AdamCoefficients::at_step(0.9, 0.999, 1e-8, 1e-3, 1);
    let p = || ParamTensor::Matrix(random([3, 4], 1, &device));
    let g = || ParamTensor::Matrix(random([4, 3], 2, &device));
    for kernels in [&HostKernels::new(KernelPolicy::fast()) as &dyn Kernels, &Portable] {
        let err = kernels.adam_update(p(), g(), None, None, c).unwrap_err();
        assert!(matches!(err, sae_core::SaeError::ShapeMismatch { .. }), "{:?}: {err}", kernels.route());
    }
}
