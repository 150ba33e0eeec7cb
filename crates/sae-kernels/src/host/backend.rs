//! The [`SparseKernels`] of the CPU backends (Flex, NdArray): the operands are read to host
//! slices, the threaded kernels of [`super::sparse`] run on them, and the result is wrapped as a
//! tensor of the same backend.

// NdArray is deprecated in burn 0.22 but still a supported backend of this workspace.
#![allow(deprecated)]

use burn::backend::tensor::{FloatTensor, IntTensor};
use burn::backend::{Backend, TensorMetadata};
use std::borrow::Cow;

use burn::tensor::{TensorData, read_sync};

use sae_core::KernelPolicy;

use crate::extension::{DenseKernels, SparseKernels, dims2};
use super::gemm::{self, Operand};
use super::{HostRun, sparse};

// A backend operation has no error channel: it returns a tensor. The reads below are of a CPU
// backend's own tensors with the lengths their shapes give, which cannot fail; should one fail
// all the same (a bug in burn or here), the operation stops with a message naming what failed
// instead of computing on zeros.

/// Host values of a float primitive, `len` of them.
fn floats<B: Backend>(t: FloatTensor<B>, len: usize) -> Vec<f32> {
    let v = read_sync(B::float_into_data(t)).map_err(|e| format!("{e:?}")).and_then(|d| d.try_into_vec_as::<f32>().map_err(|e| format!("{e:?}")));
    match v {
        Ok(v) if v.len() == len => v,
        Ok(v) => panic!("internal invariant violated: a host tensor read gave {} floats, its shape says {len}", v.len()),
        Err(e) => panic!("internal invariant violated: a CPU backend's float tensor could not be read: {e}"),
    }
}

/// Host values of an int primitive, `len` of them.
fn ints<B: Backend>(t: IntTensor<B>, len: usize) -> Vec<i64> {
    let v = read_sync(B::int_into_data(t)).map_err(|e| format!("{e:?}")).and_then(|d| d.try_into_vec_as::<i64>().map_err(|e| format!("{e:?}")));
    match v {
        Ok(v) if v.len() == len => v,
        Ok(v) => panic!("internal invariant violated: a host tensor read gave {} ints, its shape says {len}", v.len()),
        Err(e) => panic!("internal invariant violated: a CPU backend's int tensor could not be read: {e}"),
    }
}

/// Borrowing the memory of a CPU backend's tensor where its layout allows, so that a kernel
/// reads the weights in place instead of copying them first.
trait HostView: Backend {
    /// The tensor's f32 elements in row-major order, when it is contiguous f32 memory.
    fn view_floats(_t: &FloatTensor<Self>) -> Option<&[f32]> {
        None
    }
    /// The tensor's i64 elements in row-major order, when it is contiguous i64 memory.
    fn view_ints(_t: &IntTensor<Self>) -> Option<&[i64]> {
        None
    }
}

#[cfg(feature = "flex")]
impl HostView for burn::backend::Flex {
    fn view_floats(t: &FloatTensor<Self>) -> Option<&[f32]> {
        t.as_slice::<f32>()
    }
    fn view_ints(t: &IntTensor<Self>) -> Option<&[i64]> {
        t.as_slice::<i64>()
    }
}

#[cfg(feature = "ndarray")]
impl HostView for burn::backend::NdArray {}

/// The f32 elements of `t` (`len` of them): borrowed in place where the backend allows
/// ([`HostView`]), else a host copy.
fn float_slice<B: HostView>(t: &FloatTensor<B>, len: usize) -> Cow<'_, [f32]> {
    match B::view_floats(t).filter(|s| s.len() == len) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(floats::<B>(t.clone(), len)),
    }
}

/// The i64 elements of `t` (`len` of them), borrowed where possible, like [`float_slice`].
fn int_slice<B: HostView>(t: &IntTensor<B>, len: usize) -> Cow<'_, [i64]> {
    match B::view_ints(t).filter(|s| s.len() == len) {
        Some(s) => Cow::Borrowed(s),
        None => Cow::Owned(ints::<B>(t.clone(), len)),
    }
}

/// The kernels' result: the operands were read with exactly the lengths their shapes give
/// ([`float_slice`], [`int_slice`]), so the kernels' length checks cannot fail here.
fn checked(r: sae_core::Result<Vec<f32>>, op: &str) -> Vec<f32> {
    r.unwrap_or_else(|e| panic!("internal invariant violated: host {op} on operands read with their own shapes: {e}"))
}

fn host_sparse_decode<B: HostView>(coeffs: FloatTensor<B>, indices: IntTensor<B>, rows: FloatTensor<B>, policy: KernelPolicy) -> FloatTensor<B> {
    let ([n, k], [m, d], device) = (dims2(&coeffs), dims2(&rows), rows.device());
    let out = checked(sparse::sparse_decode(&float_slice::<B>(&coeffs, n * k), &int_slice::<B>(&indices, n * k), &float_slice::<B>(&rows, m * d), n, k, d, policy.host_threads()), "sparse_decode");
    B::float_from_data(TensorData::new(out, [n, d]), &device)
}

fn host_gather_dot<B: HostView>(x: FloatTensor<B>, indices: IntTensor<B>, rows: FloatTensor<B>, policy: KernelPolicy) -> FloatTensor<B> {
    let ([n, k], [m, d], device) = (dims2(&indices), dims2(&rows), rows.device());
    let out = checked(sparse::gather_dot(&float_slice::<B>(&x, n * d), &int_slice::<B>(&indices, n * k), &float_slice::<B>(&rows, m * d), n, k, d, policy.host_threads()), "gather_dot");
    B::float_from_data(TensorData::new(out, [n, k]), &device)
}

fn host_scatter_outer<B: HostView>(coeffs: FloatTensor<B>, indices: IntTensor<B>, x: FloatTensor<B>, m: usize, policy: KernelPolicy) -> FloatTensor<B> {
    let ([n, k], [_, d], device) = (dims2(&coeffs), dims2(&x), x.device());
    let out = checked(sparse::scatter_outer(&float_slice::<B>(&coeffs, n * k), &int_slice::<B>(&indices, n * k), &float_slice::<B>(&x, n * d), n, k, d, m, policy.host_threads()), "scatter_outer");
    B::float_from_data(TensorData::new(out, [m, d]), &device)
}

/// `op(a) · op(b)` on the host GEMM, reading both operands in place with their layout.
fn host_matmul_t<B: HostView>(a: FloatTensor<B>, b: FloatTensor<B>, ta: bool, tb: bool, policy: KernelPolicy) -> FloatTensor<B> {
    let ([ra, ca], [rb, cb], device) = (dims2(&a), dims2(&b), a.device());
    let (sa, sb) = (float_slice::<B>(&a, ra * ca), float_slice::<B>(&b, rb * cb));
    let operand = |data, rows, cols, t: bool| if t { Operand::transpose_of(data, cols, rows) } else { Operand::row_major(data, rows, cols) };
    let (oa, ob) = (operand(&sa[..], ra, ca, ta), operand(&sb[..], rb, cb, tb));
    let (m, n) = (oa.rows, ob.cols);
    match gemm::matmul_operands(oa, ob, HostRun::of(&policy)) {
        Ok(out) => B::float_from_data(TensorData::new(out, [m, n]), &device),
        // Inner sizes that differ: burn's matmul reports the mismatch in its own words.
        Err(_) => {
            let a = if ta { B::float_transpose(a) } else { a };
            let b = if tb { B::float_transpose(b) } else { b };
            B::float_matmul(a, b)
        }
    }
}

/// `max(x · w + b, 0)` on the host GEMM, with the bias and ReLU in its epilogue.
fn host_linear_relu<B: HostView>(x: FloatTensor<B>, w: FloatTensor<B>, b: FloatTensor<B>, policy: KernelPolicy) -> FloatTensor<B> {
    let ([n, k], [kw, m], device) = (dims2(&x), dims2(&w), x.device());
    let bias_len = dims2(&b).iter().product::<usize>();
    let out = (bias_len == m)
        .then(|| {
            let (sx, sw, sb) = (float_slice::<B>(&x, n * k), float_slice::<B>(&w, kw * m), float_slice::<B>(&b, m));
            let bias: &[f32] = &sb;
            gemm::matmul_then(&sx, n, &sw, kw, m, HostRun::of(&policy), |row| row.iter_mut().zip(bias).for_each(|(p, b)| *p = (*p + b).max(0.0))).ok()
        })
        .flatten();
    match out {
        Some(out) => B::float_from_data(TensorData::new(out, [n, m]), &device),
        // Sizes that do not fit (inner sizes, or a bias that is not `m` long): the same result
        // in burn's ops, which report the mismatch in their own words.
        None => {
            let bias = B::float_expand(B::float_reshape(b, burn::tensor::Shape::new([1, bias_len])), burn::tensor::Shape::new([n, m]));
            B::float_clamp_min(B::float_add(B::float_matmul(x, w), bias), burn::tensor::Scalar::Float(0.0))
        }
    }
}

/// `g` where `acts > 0`, else 0, in one threaded pass.
fn host_relu_mask<B: HostView>(g: FloatTensor<B>, acts: FloatTensor<B>, policy: KernelPolicy) -> FloatTensor<B> {
    let ([n, m], device) = (dims2(&g), g.device());
    let (sg, sa) = (float_slice::<B>(&g, n * m), float_slice::<B>(&acts, n * m));
    let mut out = vec![0.0f32; n * m];
    let per = (n * m).div_ceil(policy.host_threads()).max(1);
    std::thread::scope(|s| {
        for ((o, g), a) in out.chunks_mut(per).zip(sg.chunks(per)).zip(sa.chunks(per)) {
            s.spawn(move || o.iter_mut().zip(g).zip(a).for_each(|((o, g), a)| *o = if *a > 0.0 { *g } else { 0.0 }));
        }
    });
    B::float_from_data(TensorData::new(out, [n, m]), &device)
}

macro_rules! host_impl {
    ($backend:ty) => {
        impl SparseKernels for $backend {
            fn sparse_decode(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>, policy: KernelPolicy) -> FloatTensor<Self> {
                host_sparse_decode::<Self>(coeffs, indices, rows, policy)
            }
            fn gather_dot(x: FloatTensor<Self>, indices: IntTensor<Self>, rows: FloatTensor<Self>, policy: KernelPolicy) -> FloatTensor<Self> {
                host_gather_dot::<Self>(x, indices, rows, policy)
            }
            fn scatter_outer(coeffs: FloatTensor<Self>, indices: IntTensor<Self>, x: FloatTensor<Self>, m: usize, policy: KernelPolicy) -> FloatTensor<Self> {
                host_scatter_outer::<Self>(coeffs, indices, x, m, policy)
            }
        }
        impl DenseKernels for $backend {
            fn linear_relu(x: FloatTensor<Self>, w: FloatTensor<Self>, b: FloatTensor<Self>, policy: KernelPolicy) -> FloatTensor<Self> {
                host_linear_relu::<Self>(x, w, b, policy)
            }
            fn relu_mask(g: FloatTensor<Self>, acts: FloatTensor<Self>, policy: KernelPolicy) -> FloatTensor<Self> {
                host_relu_mask::<Self>(g, acts, policy)
            }
            fn matmul_t(a: FloatTensor<Self>, b: FloatTensor<Self>, ta: bool, tb: bool, policy: KernelPolicy) -> FloatTensor<Self> {
                host_matmul_t::<Self>(a, b, ta, tb, policy)
            }
        }
    };
}

#[cfg(feature = "flex")]
host_impl!(burn::backend::Flex);
#[cfg(feature = "ndarray")]
host_impl!(burn::backend::NdArray);
