//! Adam (Kingma & Ba 2015) over a [`ParamSet`], with bias correction, as in `torch.optim.Adam`.

use sae_core::{KernelPolicy, ParamSet, ParamTensor, Result};
use sae_kernels::{AdamCoefficients, AdamMoments};

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

impl Adam {
    /// A fresh optimiser.
    pub fn new(beta1: f64, beta2: f64, eps: f64) -> Self {
        Self { beta1, beta2, eps, step: 0, m: ParamSet::new(), v: ParamSet::new() }
    }

    /// One step: returns the updated parameters. Parameters without a gradient (buffers such
    /// as BatchTopK's threshold) are returned unchanged. Takes copies of the parameters and
    /// gradients' handles; [`Adam::step_owned`] avoids the copies on the CPU backends.
    pub fn step(&mut self, params: &ParamSet, grads: &ParamSet, lr: f64, policy: KernelPolicy) -> Result<ParamSet> {
        self.step_owned(params.clone(), grads.clone(), lr, policy)
    }

    /// [`Adam::step`] consuming the parameters and gradients, so that on Flex and NdArray the
    /// update runs in place in their buffers (no copy of weights or moments). Each parameter's
    /// update is `sae_kernels::adam_update` under `policy`.
    pub fn step_owned(&mut self, params: ParamSet, mut grads: ParamSet, lr: f64, policy: KernelPolicy) -> Result<ParamSet> {
        self.step += 1;
        let c = AdamCoefficients::at_step(self.beta1, self.beta2, self.eps, lr, self.step);
        let names = params.names();
        let mut params = params;
        let mut out = ParamSet::new();
        for name in names {
            let Some(p) = params.remove(&name) else { continue };
            let (m_old, v_old) = (self.m.remove(&name), self.v.remove(&name));
            let updated = match (p, grads.remove(&name)) {
                (p, Some(g)) if g.shape() == p.shape() => {
                    let AdamMoments { param, m, v } = sae_kernels::adam_update(policy, p, g, m_old, v_old, c)?;
                    self.m.insert(&name, m);
                    self.v.insert(&name, v);
                    param
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
        Ok(out)
    }
}

/// Scales all gradients so that their joint L2 norm is at most `max_norm`; returns the norm
/// before clipping.
pub fn clip_grad_norm(grads: &mut ParamSet, max_norm: f64) -> Result<f64> {
    let mut squares = 0.0f64;
    for (_, g) in grads.iter() {
        squares += g.to_vec()?.iter().map(|v| (*v as f64).powi(2)).sum::<f64>();
    }
    let total = squares.sqrt();
    if total > max_norm && total > 0.0 {
        let s = max_norm / total;
        let scaled = std::mem::take(grads).map(|_, g| match g {
            ParamTensor::Matrix(t) => ParamTensor::Matrix(t.mul_scalar(s)),
            ParamTensor::Vector(t) => ParamTensor::Vector(t.mul_scalar(s)),
        });
        *grads = scaled;
    }
    Ok(total)
}
