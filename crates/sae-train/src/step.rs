//! One optimisation step of one SAE, independent of where the batches come from (the trainer's
//! loop and the benches both call it).

use burn::tensor::Tensor;
use sae_core::{ParamSet, Sae, TrainBatch, TrainContext};

use crate::adam::{Adam, clip_grad_norm};
use crate::error::Result;

/// What one optimisation step produced.
#[derive(Debug)]
pub struct StepResult {
    /// The training forward pass (codes, reconstruction, loss terms) before the update.
    pub out: sae_core::TrainOutput,
    /// The gradient norm before clipping, when clipping is on.
    pub grad_norm: Option<f64>,
}

/// One optimisation step: forward with gradients, backward, the architecture's gradient
/// projection, optional clipping, Adam, and the architecture's post-step hook. The SAE's
/// parameters must be on a plain (not autodiff) device; they stay there.
pub fn optimisation_step(sae: &mut dyn Sae, adam: &mut Adam, x: &Tensor<2>, ctx: &TrainContext, lr: f64, clip: Option<f64>) -> Result<StepResult> {
    let params = std::mem::take(sae.params_mut());
    *sae.params_mut() = params.map(|_, t| t.with_autodiff().require_grad());
    let out = match sae.train_forward(&TrainBatch::autoencode(x.clone()), ctx) {
        Ok(o) => o,
        Err(e) => {
            let p = std::mem::take(sae.params_mut());
            *sae.params_mut() = p.map(|_, t| t.without_autodiff());
            return Err(e.into());
        }
    };
    let mut grads = out.loss.backward();
    let mut g = ParamSet::new();
    for (name, t) in sae.params().iter() {
        // Removed, not cloned: the gradient buffers then have one owner, and the projection and
        // Adam update them in place on the CPU backends.
        if let Some(gr) = t.grad_remove(&mut grads) {
            g.insert(name, gr);
        }
    }
    drop(grads);
    let p = std::mem::take(sae.params_mut());
    *sae.params_mut() = p.map(|_, t| t.without_autodiff());
    sae.project_gradients(&mut g)?;
    let grad_norm = clip.map(|c| clip_grad_norm(&mut g, c)).transpose()?;
    // Owned: on the CPU backends Adam then updates the weights and moments in their buffers.
    let params = std::mem::take(sae.params_mut());
    let updated = adam.step_owned(params, g, lr, sae.kernel_policy())?;
    *sae.params_mut() = updated;
    sae.after_step(&out)?;
    Ok(StepResult { out, grad_norm })
}
