//! A model with named hook points: what a model source (a language model, a CNN, a UNet)
//! implements so that the generic harvesting, interventions, training and metrics work on it
//! unchanged.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use sae_core::hooks::{Capture, HookTensor, Hooks};
//! use sae_core::model::HookedModel;
//! use sae_core::RowMeta;
//!
//! /// Doubles its input; one hook point on the doubled activation.
//! struct Doubler;
//!
//! impl HookedModel for Doubler {
//!     type Input = Tensor<3>;
//!     type Output = Tensor<3>;
//!     fn name(&self) -> &str {
//!         "doubler"
//!     }
//!     fn hook_names(&self) -> Vec<String> {
//!         vec!["hook_double".into()]
//!     }
//!     fn hook_width(&self, _hook: &str) -> Option<usize> {
//!         Some(2)
//!     }
//!     fn forward(&self, x: &Tensor<3>, hooks: &mut dyn Hooks) -> sae_core::Result<Tensor<3>> {
//!         let y = HookTensor::D3(x.clone() * 2.0);
//!         let y = if hooks.wants("hook_double") { hooks.at("hook_double", y)? } else { y };
//!         match y {
//!             HookTensor::D3(t) => Ok(t),
//!             HookTensor::D4(_) => unreachable!("the hook keeps the shape"),
//!         }
//!     }
//!     fn batch_len(&self, x: &Tensor<3>) -> usize {
//!         x.dims()[0]
//!     }
//!     fn row_meta(&self, x: &Tensor<3>, _hook: &str, first: u64) -> sae_core::Result<Vec<RowMeta>> {
//!         let [b, s, _] = x.dims();
//!         Ok((0..b * s).map(|r| RowMeta::Token { id: 0, pos: (r % s) as u32, window: (first as usize + r / s) as u32 }).collect())
//!     }
//! }
//!
//! let x = Tensor::<3>::ones([1, 3, 2], &Device::flex());
//! let mut capture = Capture::new(["hook_double"]);
//! Doubler.forward(&x, &mut capture)?;
//! assert_eq!(capture.get("hook_double").map(|t| t.dims()), Some(vec![1, 3, 2]));
//! assert!(Doubler.check_hook("hook_triple").is_err());
//! # Ok::<(), sae_core::SaeError>(())
//! ```

use crate::error::{Result, SaeError};
use crate::hooks::Hooks;
use crate::source::RowMeta;

/// A model whose forward pass calls [`Hooks`] at named hook points (TransformerLens style:
/// `blocks.3.hook_resid_post`). The rows an SAE sees at a hook are
/// [`HookTensor::flat_rows`](crate::hooks::HookTensor::flat_rows) of the activation passed there;
/// [`HookedModel::row_meta`] says where each of them came from in the input.
pub trait HookedModel {
    /// One batch of input: token ids `[batch][pos]` for a text model, an image tensor for a
    /// vision model, noise and a prompt for a diffusion model.
    type Input: ?Sized;
    /// What a full forward pass returns (logits, hidden states, an image).
    type Output;

    /// Short name, for messages and the `source` of a harvested store.
    fn name(&self) -> &str;

    /// Every hook point, in forward order.
    fn hook_names(&self) -> Vec<String>;

    /// Width of the rows at `hook`, or `None` where it depends on the input (attention patterns,
    /// whose width is the query length).
    fn hook_width(&self, hook: &str) -> Option<usize>;

    /// Runs `input` through the whole model, calling `hooks` at every hook point it wants.
    fn forward(&self, input: &Self::Input, hooks: &mut dyn Hooks) -> Result<Self::Output>;

    /// Runs as much of the model as `hook` needs (at least up to and including `hook`): what
    /// harvesting an early hook needs, without the rest. Default: the whole forward pass.
    fn forward_to(&self, input: &Self::Input, hooks: &mut dyn Hooks, hook: &str) -> Result<()> {
        let _ = hook;
        self.forward(input, hooks).map(drop)
    }

    /// Number of samples (texts, images) in a batch of input.
    fn batch_len(&self, input: &Self::Input) -> usize;

    /// Where each row at `hook` comes from, for `input` whose first sample is sample number
    /// `first_sample` of a harvest: one entry per row of the activation's
    /// [`flat_rows`](crate::hooks::HookTensor::flat_rows), in order.
    fn row_meta(&self, input: &Self::Input, hook: &str, first_sample: u64) -> Result<Vec<RowMeta>>;

    /// `Ok` if `hook` is one of [`HookedModel::hook_names`], else [`SaeError::UnknownHook`]
    /// listing them (per-block names folded into one `blocks.{i}.…` pattern).
    fn check_hook(&self, hook: &str) -> Result<()> {
        let names = self.hook_names();
        if names.iter().any(|n| n == hook) {
            return Ok(());
        }
        let mut patterns: Vec<String> = Vec::new();
        let mut blocks = 0usize;
        for n in names {
            let (p, block) = generic_hook(&n);
            blocks = blocks.max(block.map_or(0, |b| b + 1));
            if !patterns.contains(&p) {
                patterns.push(p);
            }
        }
        let range = if blocks > 0 { format!(" (i in 0..{blocks})") } else { String::new() };
        Err(SaeError::UnknownHook { name: hook.into(), model: self.name().into(), valid: format!("{}{range}", patterns.join(", ")) })
    }
}

/// `blocks.3.attn.hook_q` → (`blocks.{i}.attn.hook_q`, `Some(3)`).
fn generic_hook(name: &str) -> (String, Option<usize>) {
    match name.strip_prefix("blocks.").and_then(|r| r.split_once('.')) {
        Some((i, rest)) if i.parse::<usize>().is_ok() => (format!("blocks.{{i}}.{rest}"), i.parse().ok()),
        _ => (name.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::generic_hook;

    #[test]
    fn per_block_names_fold_into_one_pattern() {
        assert_eq!(generic_hook("blocks.12.hook_resid_post"), ("blocks.{i}.hook_resid_post".into(), Some(12)));
        assert_eq!(generic_hook("hook_embed"), ("hook_embed".into(), None));
        assert_eq!(generic_hook("blocks.x.y"), ("blocks.x.y".into(), None));
    }
}
