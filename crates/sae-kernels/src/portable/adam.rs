//! The Adam update in burn tensor ops (every backend): the same f32 operations in the same order
//! as the host kernel (`crate::host::adam`), so both give the same bits.

use burn::tensor::Tensor;
use sae_core::{ParamTensor, Result, SaeError};

use crate::adam::{AdamCoefficients, AdamMoments};

/// One update of `p` with gradient `g` and moments `m`, `v` (zeros when `None`). A gradient or
/// moment whose rank or shape is not the parameter's is a [`SaeError::ShapeMismatch`].
pub fn adam_update(p: ParamTensor, g: ParamTensor, m: Option<ParamTensor>, v: Option<ParamTensor>, c: AdamCoefficients) -> Result<AdamMoments> {
    let shape = p.shape();
    for (name, t) in [("gradient", Some(&g)), ("first moment", m.as_ref()), ("second moment", v.as_ref())] {
        if let Some(t) = t
            && t.shape() != shape
        {
            return Err(SaeError::ShapeMismatch { path: "<adam>".into(), name: name.into(), actual: t.shape(), expected: shape });
        }
    }
    Ok(match (p, g) {
        (ParamTensor::Matrix(p), ParamTensor::Matrix(g)) => {
            let (p, m, v) = update(p, g, m.and_then(matrix), v.and_then(matrix), c);
            AdamMoments { param: ParamTensor::Matrix(p), m: ParamTensor::Matrix(m), v: ParamTensor::Matrix(v) }
        }
        (ParamTensor::Vector(p), ParamTensor::Vector(g)) => {
            let (p, m, v) = update(p, g, m.and_then(vector), v.and_then(vector), c);
            AdamMoments { param: ParamTensor::Vector(p), m: ParamTensor::Vector(m), v: ParamTensor::Vector(v) }
        }
        // Equal shapes (checked above) have equal ranks.
        _ => return Err(SaeError::invariant("Adam: parameter and gradient of equal shape but different rank")),
    })
}

fn matrix(t: ParamTensor) -> Option<Tensor<2>> {
    match t {
        ParamTensor::Matrix(t) => Some(t),
        ParamTensor::Vector(_) => None,
    }
}

fn vector(t: ParamTensor) -> Option<Tensor<1>> {
    match t {
        ParamTensor::Vector(t) => Some(t),
        ParamTensor::Matrix(_) => None,
    }
}

/// The update of one tensor: `(p, m, v)`.
fn update<const D: usize>(p: Tensor<D>, g: Tensor<D>, m: Option<Tensor<D>>, v: Option<Tensor<D>>, c: AdamCoefficients) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let m = m.unwrap_or_else(|| g.zeros_like()).mul_scalar(c.beta1) + g.clone().mul_scalar(c.one_minus_beta1);
    let v = v.unwrap_or_else(|| g.zeros_like()).mul_scalar(c.beta2) + g.powi_scalar(2).mul_scalar(c.one_minus_beta2);
    // p ← p − lr · (m / c₁) / (√(v / c₂) + ε)
    let denom = v.clone().div_scalar(c.correction2).sqrt().add_scalar(c.eps);
    let p = p - m.clone().div_scalar(c.correction1).div(denom).mul_scalar(c.lr);
    (p, m, v)
}
