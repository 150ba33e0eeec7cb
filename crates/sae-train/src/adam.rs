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

/// The update of one parameter on the host (Flex, NdArray): one threaded pass
/// ([`sae_core::ops::host::adam::adam_update`]) over the tensors' own buffers, which a CPU
/// backend hands over without a copy when nothing else holds them. `Err` gives the tensors
/// back when they are on another backend or `SAE_KERNELS=portable` is set.
#[cfg(any(feature = "flex", feature = "ndarray"))]
fn moments_on_host<const D: usize>(p: Tensor<D>, g: Tensor<D>, m: Option<Tensor<D>>, v: Option<Tensor<D>>, a: &Adam, lr: f64) -> std::result::Result<Moments<D>, Box<Operands<D>>> {
    use burn::tensor::{DType, TensorData};
    use sae_core::ops::host::{HostF32, adam, is_host, threads};
    let device = p.device();
    let shape = p.dims();
    let same_shape = g.dims() == shape && m.as_ref().is_none_or(|m| m.dims() == shape) && v.as_ref().is_none_or(|v| v.dims() == shape);
    if !is_host(&device) || sae_core::ops::portable_only() || !same_shape {
        return Err(Box::new((p, g, m, v)));
    }
    let host = |t: Tensor<D>| t.into_data().convert_dtype(DType::F32);
    let zeros = || TensorData::new(vec![0.0f32; shape.iter().product::<usize>()], shape);
    // A matrix gradient stored transposed (`W_enc`'s, from the sparse backward) is read in place
    // in that layout rather than copied into the parameter's.
    let transposed = if D == 2 && HostF32::borrowed(&g).is_none() { HostF32::borrowed(&g.clone().swap_dims(0, 1)) } else { None };
    let mut pd = host(p);
    let (mut md, mut vd) = (m.map_or_else(zeros, host), v.map_or_else(zeros, host));
    let c = adam::AdamCoefficients::at_step(a.beta1, a.beta2, a.eps, lr, a.step);
    let (done, g) = match (pd.as_mut_slice::<f32>(), md.as_mut_slice::<f32>(), vd.as_mut_slice::<f32>()) {
        (Ok(ps), Ok(ms), Ok(vs)) => match &transposed {
            Some(gt) => (adam::adam_update_transposed(ps, gt.as_slice(), ms, vs, shape[0], shape[1], c, threads()).is_ok(), g),
            None => {
                let gv = HostF32::of(&g);
                (adam::adam_update(ps, gv.as_slice(), ms, vs, c, threads()).is_ok(), g)
            }
        },
        _ => (false, g),
    };
    let tensor = |d: TensorData| Tensor::<D>::from_data(d, &device);
    if done {
        Ok((tensor(pd), tensor(md), tensor(vd)))
    } else {
        // Unreachable for f32 data of equal shapes (checked above); the portable path decides.
        Err(Box::new((tensor(pd), g, Some(tensor(md)), Some(tensor(vd)))))
    }
}

#[cfg(not(any(feature = "flex", feature = "ndarray")))]
fn moments_on_host<const D: usize>(p: Tensor<D>, g: Tensor<D>, m: Option<Tensor<D>>, v: Option<Tensor<D>>, _: &Adam, _: f64) -> std::result::Result<Moments<D>, Box<Operands<D>>> {
    Err(Box::new((p, g, m, v)))
}

/// Updated `(parameter, first moment, second moment)`.
type Moments<const D: usize> = (Tensor<D>, Tensor<D>, Tensor<D>);

/// `(parameter, gradient, first moment, second moment)` before an update.
type Operands<const D: usize> = (Tensor<D>, Tensor<D>, Option<Tensor<D>>, Option<Tensor<D>>);

/// One parameter's update: on the host in one pass where the tensors live there, else in
/// portable tensor operations ([`moments`]).
fn update<const D: usize>(p: Tensor<D>, g: Tensor<D>, m: Option<Tensor<D>>, v: Option<Tensor<D>>, a: &Adam, lr: f64) -> Moments<D> {
    match moments_on_host(p, g, m, v, a, lr) {
        Ok(done) => done,
        Err(operands) => {
            let (p, g, m, v) = *operands;
            moments(p, g, m, v, a, lr)
        }
    }
}

/// The update in portable burn tensor operations (every backend): returns `(p, m, v)`.
pub fn moments<const D: usize>(p: Tensor<D>, g: Tensor<D>, m: Option<Tensor<D>>, v: Option<Tensor<D>>, a: &Adam, lr: f64) -> (Tensor<D>, Tensor<D>, Tensor<D>) {
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
    /// as BatchTopK's threshold) are returned unchanged. Takes copies of the parameters and
    /// gradients' handles; [`Adam::step_owned`] avoids the copies on the CPU backends.
    pub fn step(&mut self, params: &ParamSet, grads: &ParamSet, lr: f64) -> ParamSet {
        self.step_owned(params.clone(), grads.clone(), lr)
    }

    /// [`Adam::step`] consuming the parameters and gradients, so that on Flex and NdArray the
    /// update runs in place in their buffers (no copy of weights or moments).
    pub fn step_owned(&mut self, params: ParamSet, mut grads: ParamSet, lr: f64) -> ParamSet {
        self.step += 1;
        let names = params.names();
        let mut params = params;
        let mut out = ParamSet::new();
        for name in names {
            let Some(p) = params.remove(&name) else { continue };
            let (m_old, v_old) = (self.m.remove(&name), self.v.remove(&name));
            let updated = match (p, grads.remove(&name)) {
                (ParamTensor::Matrix(p), Some(ParamTensor::Matrix(g))) => {
                    let as_m = |t: Option<ParamTensor>| match t { Some(ParamTensor::Matrix(t)) => Some(t), _ => None };
                    let (p, m, v) = update(p, g, as_m(m_old), as_m(v_old), self, lr);
                    self.m.insert(&name, ParamTensor::Matrix(m));
                    self.v.insert(&name, ParamTensor::Matrix(v));
                    ParamTensor::Matrix(p)
                }
                (ParamTensor::Vector(p), Some(ParamTensor::Vector(g))) => {
                    let as_v = |t: Option<ParamTensor>| match t { Some(ParamTensor::Vector(t)) => Some(t), _ => None };
                    let (p, m, v) = update(p, g, as_v(m_old), as_v(v_old), self, lr);
                    self.m.insert(&name, ParamTensor::Vector(m));
                    self.v.insert(&name, ParamTensor::Vector(v));
                    ParamTensor::Vector(p)
                }
                (p, _) => {
                    // No gradient (a buffer) or a rank mismatch: unchanged, moments kept.
                    if let Some(m) = m_old {
                        self.m.insert(&name, m);
                    }
                    if let Some(v) = v_old {
                        self.v.insert(&name, v);
                    }
                    p
                }
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

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};
    use sae_core::ops::host::HostF32;
    use sae_core::params::host_f32;
    use sae_core::rng::SplitMix64;

    fn random(shape: [usize; 2], seed: u64, device: &Device) -> Tensor<2> {
        let mut rng = SplitMix64::new(seed);
        let v: Vec<f32> = (0..shape[0] * shape[1]).map(|_| rng.normal()).collect();
        Tensor::from_data(TensorData::new(v, shape), device)
    }

    /// The one-pass host update gives the portable tensor-op update's numbers, bit for bit,
    /// over several steps (moments carried over), at an odd size split over threads, with the
    /// gradient stored in the parameter's layout or transposed.
    #[test]
    fn host_update_equals_the_portable_update_bit_for_bit() {
        let device = Device::flex();
        let shape = [37, 301];
        let mut adam = Adam::new(0.9, 0.999, 1e-8);
        let (mut p_host, mut p_port) = (random(shape, 1, &device), random(shape, 1, &device));
        let start = random(shape, 1, &device);
        let (mut m_port, mut v_port): (Option<Tensor<2>>, Option<Tensor<2>>) = (None, None);
        let (mut m_host, mut v_host): (Option<Tensor<2>>, Option<Tensor<2>>) = (None, None);
        for step in 0..5u64 {
            adam.step = step + 1;
            // Odd steps: the gradient is a transposed view (as `W_enc`'s from the sparse backward).
            let scale = 0.1 + step as f64;
            let g = match step % 2 {
                0 => random(shape, 100 + step, &device).mul_scalar(scale),
                _ => random([shape[1], shape[0]], 100 + step, &device).mul_scalar(scale).transpose(),
            };
            assert_eq!(HostF32::of(&g).is_borrowed(), step % 2 == 0, "step {step}: the layout under test");
            let lr = 1e-3 * (step + 1) as f64;
            let (p, m, v) = moments_on_host(p_host, g.clone(), m_host, v_host, &adam, lr).map_err(|_| "not on the host").expect("Flex is a host backend");
            (p_host, m_host, v_host) = (p, Some(m), Some(v));
            let (p, m, v) = moments(p_port, g, m_port, v_port, &adam, lr);
            (p_port, m_port, v_port) = (p, Some(m), Some(v));
        }
        let bits = |t: Tensor<2>| host_f32(t.into_data()).into_iter().map(f32::to_bits).collect::<Vec<_>>();
        assert_eq!(bits(p_host.clone()), bits(p_port.clone()), "parameters");
        assert_eq!(bits(m_host.unwrap()), bits(m_port.unwrap()), "first moments");
        assert_eq!(bits(v_host.unwrap()), bits(v_port.unwrap()), "second moments");
        assert!(bits(p_host) != bits(start), "the parameters moved");
    }
}
