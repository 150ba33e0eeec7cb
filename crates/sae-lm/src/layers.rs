//! The building blocks shared by the models: linear layers, LayerNorm and RMSNorm with their
//! hook points, and the calls into [`Hooks`] that check what a hook hands back.

use burn::tensor::{Device, Tensor};
use sae_core::SaeError;
use sae_core::hooks::{HookTensor, Hooks};

use crate::error::Result;
use crate::weights::Weights;

/// Calls the hook at `name` on a 3-d activation if it wants it; the replacement must keep the shape.
pub fn hook3(hooks: &mut dyn Hooks, name: &str, x: Tensor<3>) -> Result<Tensor<3>> {
    if !hooks.wants(name) {
        return Ok(x);
    }
    let dims = x.dims();
    match hooks.at(name, HookTensor::D3(x))? {
        HookTensor::D3(t) if t.dims() == dims => Ok(t),
        other => Err(shape_error(name, other.dims(), dims.to_vec())),
    }
}

/// [`hook3`] for a 4-d activation.
pub fn hook4(hooks: &mut dyn Hooks, name: &str, x: Tensor<4>) -> Result<Tensor<4>> {
    if !hooks.wants(name) {
        return Ok(x);
    }
    let dims = x.dims();
    match hooks.at(name, HookTensor::D4(x))? {
        HookTensor::D4(t) if t.dims() == dims => Ok(t),
        other => Err(shape_error(name, other.dims(), dims.to_vec())),
    }
}

fn shape_error(name: &str, actual: Vec<usize>, expected: Vec<usize>) -> crate::LmError {
    SaeError::ShapeMismatch { path: "<hook>".into(), name: name.into(), actual, expected }.into()
}

/// `y = x · Wᵀ + b` with `W` stored `(out, in)` as in PyTorch; kept transposed `[in, out]`.
#[derive(Debug, Clone)]
pub struct Linear {
    /// `Wᵀ` `[in, out]`.
    pub w_t: Tensor<2>,
    /// Bias `[out]`, if any.
    pub b: Option<Tensor<1>>,
}

impl Linear {
    /// Reads `{prefix}.weight` `(out, in)` and, when `bias`, `{prefix}.bias`.
    pub fn load(w: &mut Weights, prefix: &str, d_in: usize, d_out: usize, bias: bool, device: &Device) -> Result<Self> {
        let w_t = w.matrix(&format!("{prefix}.weight"), d_out, d_in, device)?.transpose();
        let b = if bias { Some(w.vector(&format!("{prefix}.bias"), d_out, device)?) } else { None };
        Ok(Self { w_t, b })
    }

    /// Applies the layer to `[batch, pos, in]`.
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let [b, s, d] = x.dims();
        let out = self.w_t.dims()[1];
        let y = x.reshape([b * s, d]).matmul(self.w_t.clone());
        let y = match &self.b {
            Some(bias) => y + bias.clone().unsqueeze_dim(0),
            None => y,
        };
        y.reshape([b, s, out])
    }
}

/// How a norm's scale is computed: from the input (the ordinary forward), or frozen to a
/// constant for an LN-free forward (`scale = c` for every token).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NormScale {
    /// `sqrt(mean(x²) + eps)` (RMSNorm) or `sqrt(var(x) + eps)` (LayerNorm), per token.
    Computed,
    /// The same constant for every token.
    Frozen(f32),
}

/// LayerNorm (`centre = true`: subtract the mean, divide by the standard deviation) or RMSNorm
/// (`centre = false`), with a gain and an optional bias. Hook points, under `prefix`:
/// `hook_scale` `[batch, pos, 1]` and `hook_normalized` (after gain and bias), as in
/// TransformerLens.
#[derive(Debug, Clone)]
pub struct Norm {
    /// Gain `[d]`.
    pub gain: Tensor<1>,
    /// Bias `[d]` (LayerNorm).
    pub bias: Option<Tensor<1>>,
    /// Added to the variance.
    pub eps: f64,
    /// LayerNorm (true) or RMSNorm (false).
    pub centre: bool,
    /// Computed or frozen scale.
    pub scale: NormScale,
}

impl Norm {
    /// Applies the norm to `[batch, pos, d]`, calling the hooks `{prefix}.hook_scale` and
    /// `{prefix}.hook_normalized`.
    pub fn forward(&self, x: Tensor<3>, hooks: &mut dyn Hooks, prefix: &str) -> Result<Tensor<3>> {
        let [b, s, _] = x.dims();
        let x = if self.centre { x.clone() - x.mean_dim(2) } else { x };
        let scale = match self.scale {
            NormScale::Computed => (x.clone().powi_scalar(2).mean_dim(2) + self.eps).sqrt(),
            NormScale::Frozen(c) => Tensor::full([b, s, 1], c, &x.device()),
        };
        let scale = hook3(hooks, &format!("{prefix}.hook_scale"), scale)?;
        let mut y = (x / scale) * self.gain.clone().unsqueeze_dims::<3>(&[0, 1]);
        if let Some(bias) = &self.bias {
            y = y + bias.clone().unsqueeze_dims::<3>(&[0, 1]);
        }
        hook3(hooks, &format!("{prefix}.hook_normalized"), y)
    }
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Device, Tensor, TensorData};
    use sae_core::hooks::NoHooks;

    use super::{Norm, NormScale};

    /// LayerNorm of `[1, 3]` by hand: mean 2, variance 1, so `[-1, 1]` (eps 0); with the scale
    /// frozen to 2, `[-0.5, 0.5]`; gain 3 and bias 1 apply after either. RMSNorm of `[3, 4]`:
    /// rms = sqrt(12.5), so `[3, 4] / 3.5355`.
    #[test]
    fn norms_match_hand_computation_with_computed_and_frozen_scale() {
        let device = Device::flex();
        let x = || Tensor::<3>::from_data(TensorData::new(vec![1.0f32, 3.0], [1, 1, 2]), &device);
        let norm = |scale: NormScale, centre: bool| Norm {
            gain: Tensor::from_data(TensorData::new(vec![3.0f32, 3.0], [2]), &device),
            bias: centre.then(|| Tensor::from_data(TensorData::new(vec![1.0f32, 1.0], [2]), &device)),
            eps: 0.0,
            centre,
            scale,
        };
        let run = |n: Norm, x: Tensor<3>| n.forward(x, &mut NoHooks, "ln").unwrap().into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(run(norm(NormScale::Computed, true), x()), vec![-2.0, 4.0]);
        assert_eq!(run(norm(NormScale::Frozen(2.0), true), x()), vec![-0.5, 2.5]);
        let y = run(norm(NormScale::Computed, false), Tensor::from_data(TensorData::new(vec![3.0f32, 4.0], [1, 1, 2]), &device));
        let r = 12.5f32.sqrt();
        assert!((y[0] - 9.0 / r).abs() < 1e-5 && (y[1] - 12.0 / r).abs() < 1e-5, "{y:?}");
    }
}
