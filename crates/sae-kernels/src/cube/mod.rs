//! The [`SparseKernels`] and [`DenseKernels`] of the CubeCL backend (WGPU, CUDA, and every other CubeCL runtime):
//! the kernels of [`kernels`] are one source, compiled just in time for the runtime that the
//! tensors' device names. The operands stay on the device; they are made contiguous and, where
//! their element types differ, cast to `f32` / `i32` first, and the result is cast back to the
//! float type of the rows.
//!
//! `scatter_outer` (the gradient of the gathered rows) is a transposition of the `n × k` index
//! list into per-latent segments followed by one thread per output element:
//! count per latent (integer atomics) → exclusive prefix sum (burn's `cumsum`) → place each
//! entry in its segment → sort each segment (so that the sums run in row order) → sum. No
//! float atomics, so the same inputs give the same gradient bits from run to run.

mod kernels;

use burn::backend::Cube;
use burn::backend::ops::{FloatTensorOps, IntTensorOps};
use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::tensor::{DType, Device, Shape};
use burn_cubecl::cubecl::{CubeCount, CubeDim, calculate_cube_count_elemwise, client::Client};
use burn_cubecl::kernel::{cast, into_contiguous};
use burn_cubecl::ops::numeric::{empty_device_dtype, zeros_client};
use burn_cubecl::tensor::CubeTensor;

use sae_core::KernelPolicy;

use crate::extension::{DenseKernels, SparseKernels, dims2};

/// The [`Kernels`](crate::Kernels) of the CubeCL runtimes: the sparse products run as the
/// kernels of this module; the dense products and selections are burn's own (already CubeCL)
/// operations, the trait's defaults.
#[derive(Debug, Clone, Copy)]
pub struct CubeKernels {
    policy: KernelPolicy,
}

impl CubeKernels {
    /// The CubeCL kernels under `policy`.
    pub fn new(policy: KernelPolicy) -> Self {
        Self { policy }
    }
}

impl crate::Kernels for CubeKernels {
    fn route(&self) -> crate::Route {
        crate::Route::Cube
    }

    fn sparse_decode(&self, values: burn::tensor::Tensor<2>, indices: burn::tensor::Tensor<2, burn::tensor::Int>, w_dec: burn::tensor::Tensor<2>) -> sae_core::Result<burn::tensor::Tensor<2>> {
        Ok(crate::extension::sparse::sparse_decode(values, indices, w_dec, self.policy))
    }

    fn gather_pre(&self, enc: &crate::LinearEncoder, xc: burn::tensor::Tensor<2>, indices: burn::tensor::Tensor<2, burn::tensor::Int>) -> sae_core::Result<burn::tensor::Tensor<2>> {
        Ok(enc.pre_at_kernel(xc, indices, self.policy))
    }
}

/// Whether `device` (with or without autodiff) is a CubeCL device (WGPU, CUDA, ...), where the
/// kernels of this module run.
pub fn is_cube(device: &Device) -> bool {
    let inner = device.clone().without_autodiff();
    matches!(inner.as_dispatch(), burn_dispatch::DispatchDevice::Cube(_))
}

/// `t` as a contiguous tensor of `dtype`.
fn operand(t: CubeTensor, dtype: DType) -> CubeTensor {
    let t = if t.dtype == dtype { t } else { cast(t, dtype) };
    into_contiguous(t)
}

/// A new `[rows, cols]` tensor of `dtype` on `like`'s device, uninitialised.
fn empty(like: &CubeTensor, rows: usize, cols: usize, dtype: DType) -> CubeTensor {
    empty_device_dtype(like.client.clone(), like.device.clone(), Shape::new([rows, cols]), dtype)
}

/// A new `[rows, cols]` tensor of `dtype` on `like`'s device, filled with zeros.
fn zeros(like: &CubeTensor, rows: usize, cols: usize, dtype: DType) -> CubeTensor {
    zeros_client(like.client.clone(), like.device.clone(), Shape::new([rows, cols]), dtype)
}

/// The result in `dtype` (the rows' float type).
fn restore(out: CubeTensor, dtype: DType) -> CubeTensor {
    if out.dtype == dtype { out } else { cast(out, dtype) }
}

/// Cube count and dimension for one thread per element of `units`.
fn grid(client: &Client, units: usize) -> (CubeCount, CubeDim) {
    let dim = CubeDim::new(client, units);
    (calculate_cube_count_elemwise(client, units, dim), dim)
}

/// Latent index bound as the kernels' `i32` (indices at or past it contribute nothing).
fn bound(m: usize) -> i32 {
    i32::try_from(m).unwrap_or(i32::MAX)
}

impl SparseKernels for Cube {
    fn sparse_decode(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>, _: KernelPolicy) -> FloatTensor<Self> {
        let ([n, k], [m, d], dtype) = (dims2(&coeffs), dims2(&rows), rows.dtype);
        if n * d == 0 || k == 0 || m == 0 {
            return zeros(&rows, n, d, dtype);
        }
        let (c, idx, r) = (operand(coeffs, DType::F32), operand(indices, DType::I32), operand(rows, DType::F32));
        let out = empty(&r, n, d, DType::F32);
        let (count, dim) = grid(&r.client, n * d);
        let client = r.client.clone();
        kernels::sparse_decode_kernel::launch(
            &client,
            count,
            dim,
            c.into_buffer_arg(),
            idx.into_buffer_arg(),
            r.into_buffer_arg(),
            out.clone().into_buffer_arg(),
            k,
            d,
            bound(m),
        );
        restore(out, dtype)
    }

    fn gather_dot(x: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>, _: KernelPolicy) -> FloatTensor<Self> {
        let ([n, k], [m, d], dtype) = (dims2(&indices), dims2(&rows), rows.dtype);
        if n * k == 0 || d == 0 || m == 0 {
            return zeros(&rows, n, k, dtype);
        }
        let (xi, idx, r) = (operand(x, DType::F32), operand(indices, DType::I32), operand(rows, DType::F32));
        let out = empty(&r, n, k, DType::F32);
        let (count, dim) = grid(&r.client, n * k);
        let client = r.client.clone();
        kernels::gather_dot_kernel::launch(
            &client,
            count,
            dim,
            xi.into_buffer_arg(),
            idx.into_buffer_arg(),
            r.into_buffer_arg(),
            out.clone().into_buffer_arg(),
            k,
            d,
            bound(m),
        );
        restore(out, dtype)
    }

    fn scatter_outer(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, x: FloatTensor<Self>, m: usize, _: KernelPolicy) -> FloatTensor<Self> {
        let ([n, k], [_, d], dtype) = (dims2(&coeffs), dims2(&x), x.dtype);
        if n * k == 0 || d == 0 || m == 0 {
            return zeros(&x, m, d, dtype);
        }
        let (c, idx, xi) = (operand(coeffs, DType::F32), operand(indices, DType::I32), operand(x, DType::F32));
        let client = xi.client.clone();
        let entries = n * k;

        // Segment sizes and starts: counts[i] = #entries naming i; starts = exclusive prefix sum.
        let counts = zeros(&xi, m, 1, DType::I32);
        let (count, dim) = grid(&client, entries);
        kernels::count_kernel::launch(&client, count, dim, idx.clone().into_buffer_arg(), counts.clone().into_buffer_arg(), bound(m));
        let inclusive = Cube::int_cumsum(counts.clone(), 0);
        let starts = Cube::int_sub(inclusive, counts.clone());

        // Each entry's flat position into its segment, then each segment in ascending order.
        let cursor = starts.copy();
        let perm = zeros(&xi, entries, 1, DType::I32);
        let (count, dim) = grid(&client, entries);
        kernels::place_kernel::launch(&client, count, dim, idx.into_buffer_arg(), cursor.into_buffer_arg(), perm.clone().into_buffer_arg(), bound(m));
        let (count, dim) = grid(&client, m);
        kernels::sort_segments_kernel::launch(
            &client,
            count,
            dim,
            perm.clone().into_buffer_arg(),
            starts.clone().into_buffer_arg(),
            counts.clone().into_buffer_arg(),
            m,
        );

        let out = empty(&xi, m, d, DType::F32);
        let (count, dim) = grid(&client, m * d);
        kernels::scatter_outer_kernel::launch(
            &client,
            count,
            dim,
            c.into_buffer_arg(),
            xi.into_buffer_arg(),
            perm.into_buffer_arg(),
            starts.into_buffer_arg(),
            counts.into_buffer_arg(),
            out.clone().into_buffer_arg(),
            k,
            d,
        );
        restore(out, dtype)
    }
}

impl DenseKernels for Cube {
    fn linear_relu(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, _: KernelPolicy) -> FloatTensor<Self> {
        let ([n, _], [_, m]) = (dims2(&x), dims2(&w));
        let bias = Cube::float_expand(Cube::float_reshape(b, Shape::new([1, m])), Shape::new([n, m]));
        Cube::float_clamp_min(Cube::float_add(Cube::float_matmul(x, w), bias), burn::tensor::Scalar::Float(0.0))
    }

    fn relu_mask(g: FloatTensor<Self>, acts: FloatTensor<Self>, _: KernelPolicy) -> FloatTensor<Self> {
        // `acts` is a ReLU's output (≥ 0): its sign is 1 where it is positive, else 0.
        Cube::float_mul(g, Cube::float_sign(acts))
    }

    fn matmul_t(a: FloatTensor<Self>, b: FloatTensor<Self>, ta: bool, tb: bool, _: KernelPolicy) -> FloatTensor<Self> {
        let a = if ta { Cube::float_transpose(a) } else { a };
        let b = if tb { Cube::float_transpose(b) } else { b };
        Cube::float_matmul(a, b)
    }
}
