//! Named hook points: how a model lets a caller read or replace an activation mid-forward.
//!
//! A model source (`sae-lm`, ...) calls [`Hooks::at`] at every hook point it offers, in forward
//! order, with names in TransformerLens style (`blocks.3.hook_resid_post`,
//! `blocks.3.attn.hook_pattern`). The hook returns the activation to continue with: the same
//! tensor to observe, another to intervene (splice in an SAE reconstruction, ablate a feature,
//! add a steering vector). [`Hooks::wants`] lets the model skip the call (and any work done only
//! to expose the activation) where nobody listens.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use sae_core::hooks::{Capture, Hooks, HookTensor};
//!
//! let device = Device::flex();
//! let mut capture = Capture::new(["blocks.0.hook_resid_post"]);
//! let x = HookTensor::D3(Tensor::<3>::ones([1, 2, 4], &device));
//! let same = capture.at("blocks.0.hook_resid_post", x)?;
//! assert_eq!(capture.get("blocks.0.hook_resid_post").map(|t| t.dims()), Some(vec![1, 2, 4]));
//! # let _ = same;
//! # Ok::<(), sae_core::SaeError>(())
//! ```

use std::collections::BTreeMap;

use burn::tensor::Tensor;

use crate::error::Result;

/// An activation at a hook point: `[batch, pos, d]` (residual stream, norms, MLP) or 4-d
/// (`[batch, pos, head, d_head]` for q/k/v/z, `[batch, head, query, key]` for the pattern).
#[derive(Debug, Clone)]
pub enum HookTensor {
    /// A 3-d activation.
    D3(Tensor<3>),
    /// A 4-d activation.
    D4(Tensor<4>),
}

impl HookTensor {
    /// The shape.
    pub fn dims(&self) -> Vec<usize> {
        match self {
            Self::D3(t) => t.dims().to_vec(),
            Self::D4(t) => t.dims().to_vec(),
        }
    }

    /// The activation as a matrix: `[a, b, c]` → `[a · b, c]` and `[a, b, c, d]` → `[a · b, c · d]`,
    /// i.e. `[batch · pos, d]` for the residual stream, `[batch · pos, heads · d_head]` (heads
    /// concatenated) for q/k/v/z, and `[batch · head, query · key]` for a pattern.
    pub fn flat_rows(&self) -> Tensor<2> {
        match self {
            Self::D3(t) => {
                let [b, s, d] = t.dims();
                t.clone().reshape([b * s, d])
            }
            Self::D4(t) => {
                let [a, b, c, d] = t.dims();
                t.clone().reshape([a * b, c * d])
            }
        }
    }
}

/// Something that sees (and may replace) activations at named hook points.
pub trait Hooks {
    /// Whether the hook at `name` wants to be called.
    fn wants(&self, name: &str) -> bool;
    /// Called at hook point `name` (only when [`Hooks::wants`] said so); returns the activation
    /// the forward pass continues with, which must have the same shape.
    fn at(&mut self, name: &str, x: HookTensor) -> Result<HookTensor>;
}

/// No hooks: a plain forward pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl Hooks for NoHooks {
    fn wants(&self, _name: &str) -> bool {
        false
    }
    fn at(&mut self, _name: &str, x: HookTensor) -> Result<HookTensor> {
        Ok(x)
    }
}

/// Records the activations at the named hook points (detached), leaving them unchanged.
#[derive(Debug, Clone, Default)]
pub struct Capture {
    names: Vec<String>,
    seen: BTreeMap<String, HookTensor>,
}

impl Capture {
    /// Captures the hook points in `names`.
    pub fn new<S: Into<String>>(names: impl IntoIterator<Item = S>) -> Self {
        Self { names: names.into_iter().map(Into::into).collect(), seen: BTreeMap::new() }
    }

    /// The activation captured at `name` in the last forward pass.
    pub fn get(&self, name: &str) -> Option<&HookTensor> {
        self.seen.get(name)
    }

    /// Removes and returns the activation captured at `name`.
    pub fn take(&mut self, name: &str) -> Option<HookTensor> {
        self.seen.remove(name)
    }
}

impl Hooks for Capture {
    fn wants(&self, name: &str) -> bool {
        self.names.iter().any(|n| n == name)
    }
    fn at(&mut self, name: &str, x: HookTensor) -> Result<HookTensor> {
        let kept = match &x {
            HookTensor::D3(t) => HookTensor::D3(t.clone().detach()),
            HookTensor::D4(t) => HookTensor::D4(t.clone().detach()),
        };
        self.seen.insert(name.to_string(), kept);
        Ok(x)
    }
}
