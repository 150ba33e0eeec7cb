//! Adam (Kingma & Ba 2015) over a [`ParamSet`], with bias correction, as in `torch.optim.Adam`.

use burn::tensor::Tensor;
use sae_core::{ParamSet, ParamTensor};

/// Adam's hyperparameters and moment estimates.
#[derive(Debug, Clone)]
pub struct Adam {
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Steps taken.
    pub step: u64,
    /// First moments, by parameter name.
    pub m: ParamSet,
    /// Second moments, by parameter name.
    pub v: ParamSet,
}

fn moments<const D: usize>(p: Tensor<D>, g: Tensor<D>, m: Option<Tensor<D>>, v: Option<Tensor<D>>, a: &Adam, lr: f64) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
    let m = m.unwrap_or_else(|| g.zeros_like()).mul_scalar(a.beta1) + g.clone().mul_scalar(1.0 - a.beta1);
    let v = v.unwrap_or_else(|| g.zeros_like()).mul_scalar(a.beta2) + g.powi_scalar(2).mul_scalar(1.0 - a.beta2);
    let t = a.step as i32;
    let bc1 = 1.0 - a.beta1.powi(t);
    let bc2 = 1.0 - a.beta2.powi(t);
    // p ← p − lr · (m / bc1) / (√(v / bc2) + eps)
    let denom = v.clone().div_scalar(bc2).sqrt().add_scalar(a.eps);
    let p = p - m.clone().div_scalar(bc1).div(denom).mul_scalar(lr);
    (p, m, v)
}

impl Adam {
    /// A fresh optimiser.
    pub fn new(beta1: f64, beta2: f64, eps: f64) -> Self {
        Self { beta1, beta2, eps, step: 0, m: ParamSet::new(), v: ParamSet::new() }
    }

    /// One step: returns the updated parameters. Parameters without a gradient (buffers such
    /// as BatchTopK's threshold) are returned unchanged.
    pub fn step(&mut self, params: &ParamSet, grads: &ParamSet, lr: f64) -> ParamSet {
        self.step += 1;
        let mut out = ParamSet::new();
        for (name, p) in params.iter() {
            let (m_old, v_old) = (self.m.get(name).cloned(), self.v.get(name).cloned());
            let updated = match (p.clone(), grads.get(name).cloned()) {
                (ParamTensor::Matrix(p), Some(ParamTensor::Matrix(g))) => {
                    let as_m = |t: Option<ParamTensor>| match t { Some(ParamTensor::Matrix(t)) => Some(t), _ => None };
                    let (p, m, v) = moments(p, g, as_m(m_old), as_m(v_old), self, lr);
                    self.m.insert(name, ParamTensor::Matrix(m));
                    self.v.insert(name, ParamTensor::Matrix(v));
                    ParamTensor::Matrix(p)
                }
                (ParamTensor::Vector(p), Some(ParamTensor::Vector(g))) => {
                    let as_v = |t: Option<ParamTensor>| match t { Some(ParamTensor::Vector(t)) => Some(t), _ => None };
                    let (p, m, v) = moments(p, g, as_v(m_old), as_v(v_old), self, lr);
                    self.m.insert(name, ParamTensor::Vector(m));
                    self.v.insert(name, ParamTensor::Vector(v));
                    ParamTensor::Vector(p)
                }
                (p, _) => p,
            };
            out.insert(name, updated);
        }
        out
    }
}

/// Scales all gradients so that their joint L2 norm is at most `max_norm`; returns the norm
/// before clipping.
pub fn clip_grad_norm(grads: &mut ParamSet, max_norm: f64) -> f64 {
    let total: f64 = grads.iter().map(|(_, g)| g.to_vec().iter().map(|v| (*v as f64).powi(2)).sum::<f64>()).sum::<f64>().sqrt();
    if total > max_norm && total > 0.0 {
        let s = max_norm / total;
        let scaled = std::mem::take(grads).map(|_, g| match g {
            ParamTensor::Matrix(t) => ParamTensor::Matrix(t.mul_scalar(s)),
            ParamTensor::Vector(t) => ParamTensor::Vector(t.mul_scalar(s)),
        });
        *grads = scaled;
    }
    total
}
