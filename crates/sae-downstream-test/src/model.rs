//! A hooked model defined outside the workspace's model crates: a tiny patch network over RGB
//! images, to prove that a new model source gets harvesting, training and interventions from
//! the generic code alone (one [`HookedModel`] implementation, nothing else touched).
//!
//! [`TinyPatchNet`] cuts an image `[h, w, 3]` into 2×2 patches, embeds each patch linearly
//! (`hook_embed`, `[batch, patches, d]`), adds a ReLU MLP residual (`blocks.0.hook_resid_post`)
//! and classifies the mean of the patches (`[batch, classes]`). Its weights are a fixed function
//! of a seed, so two instances with one seed are the same model.

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::hooks::{HookTensor, Hooks};
use sae_core::rng::SplitMix64;
use sae_core::{HookedModel, Result, RowMeta, SaeError};

/// Side of a square patch, in pixels.
pub const PATCH: usize = 2;
/// The hook after the patch embedding.
pub const HOOK_EMBED: &str = "hook_embed";
/// The hook after the one residual block.
pub const HOOK_RESID: &str = "blocks.0.hook_resid_post";

/// The tiny patch network.
#[derive(Debug, Clone)]
pub struct TinyPatchNet {
    /// Patch embedding `[PATCH·PATCH·3, d]`.
    embed: Tensor<2>,
    /// MLP in `[d, 2d]` and out `[2d, d]`.
    up: Tensor<2>,
    down: Tensor<2>,
    /// Classifier `[d, classes]`.
    head: Tensor<2>,
    d: usize,
}

/// `[rows, cols]` with entries uniform in ±`scale`, from `rng`.
fn matrix(rng: &mut SplitMix64, rows: usize, cols: usize, scale: f32, device: &Device) -> Tensor<2> {
    let values: Vec<f32> = (0..rows * cols).map(|_| rng.uniform(-scale, scale)).collect();
    Tensor::from_data(TensorData::new(values, [rows, cols]), device)
}

impl TinyPatchNet {
    /// Width of the activations at both hooks.
    pub fn d_model(&self) -> usize {
        self.d
    }

    /// A network of width `d` with `classes` outputs, its weights drawn from `seed`.
    pub fn new(d: usize, classes: usize, seed: u64, device: &Device) -> Self {
        let mut rng = SplitMix64::new(seed);
        let p = PATCH * PATCH * 3;
        Self {
            embed: matrix(&mut rng, p, d, 1.0, device),
            up: matrix(&mut rng, d, 2 * d, 0.5, device),
            down: matrix(&mut rng, 2 * d, d, 0.5, device),
            head: matrix(&mut rng, d, classes, 0.5, device),
            d,
        }
    }

    /// Images `[batch, h, w, 3]` as patches `[batch, (h/2)·(w/2), 12]`, row-major over the grid.
    fn patches(images: &Tensor<4>) -> Result<(Tensor<3>, usize, usize)> {
        let [b, h, w, c] = images.dims();
        if c != 3 || h % PATCH != 0 || w % PATCH != 0 || b == 0 || h == 0 || w == 0 {
            return Err(SaeError::ShapeMismatch { path: "<images>".into(), name: "images [batch, h, w, 3], h and w even".into(), actual: vec![b, h, w, c], expected: vec![b, h - h % PATCH, w - w % PATCH, 3] });
        }
        let (gh, gw) = (h / PATCH, w / PATCH);
        let p = images.clone().reshape([b, gh, PATCH, gw, PATCH * c]).swap_dims(2, 3).reshape([b, gh * gw, PATCH * PATCH * c]);
        Ok((p, gh, gw))
    }

    fn run(&self, images: &Tensor<4>, hooks: &mut dyn Hooks, stop_after_embed: bool) -> Result<Option<Tensor<3>>> {
        let (p, _, _) = Self::patches(images)?;
        let [b, n, k] = p.dims();
        let x = p.reshape([b * n, k]).matmul(self.embed.clone()).reshape([b, n, self.d]);
        let x = at(hooks, HOOK_EMBED, x)?;
        if stop_after_embed {
            return Ok(None);
        }
        let h = burn::tensor::activation::relu(x.clone().reshape([b * n, self.d]).matmul(self.up.clone()));
        let x = x + h.matmul(self.down.clone()).reshape([b, n, self.d]);
        Ok(Some(at(hooks, HOOK_RESID, x)?))
    }
}

/// Calls the hook `name` if it wants the activation.
fn at(hooks: &mut dyn Hooks, name: &str, x: Tensor<3>) -> Result<Tensor<3>> {
    if !hooks.wants(name) {
        return Ok(x);
    }
    let dims = x.dims();
    match hooks.at(name, HookTensor::D3(x))? {
        HookTensor::D3(t) if t.dims() == dims => Ok(t),
        other => Err(SaeError::ShapeMismatch { path: "<hook>".into(), name: name.into(), actual: other.dims(), expected: dims.to_vec() }),
    }
}

impl HookedModel for TinyPatchNet {
    type Input = Tensor<4>;
    type Output = Tensor<2>;

    fn name(&self) -> &str {
        "tiny-patch-net"
    }

    fn hook_names(&self) -> Vec<String> {
        vec![HOOK_EMBED.into(), HOOK_RESID.into()]
    }

    fn hook_width(&self, _hook: &str) -> Option<usize> {
        Some(self.d)
    }

    fn forward(&self, images: &Tensor<4>, hooks: &mut dyn Hooks) -> Result<Tensor<2>> {
        let x = self.run(images, hooks, false)?.ok_or_else(|| SaeError::Invariant("the full forward stopped early".into()))?;
        let [b, n, d] = x.dims();
        Ok(x.sum_dim(1).reshape([b, d]).div_scalar(n as f32).matmul(self.head.clone()))
    }

    fn forward_to(&self, images: &Tensor<4>, hooks: &mut dyn Hooks, hook: &str) -> Result<()> {
        self.run(images, hooks, hook == HOOK_EMBED).map(drop)
    }

    fn batch_len(&self, images: &Tensor<4>) -> usize {
        images.dims()[0]
    }

    fn row_meta(&self, images: &Tensor<4>, _hook: &str, first_sample: u64) -> Result<Vec<RowMeta>> {
        let (_, gh, gw) = Self::patches(images)?;
        let b = images.dims()[0];
        let mut out = Vec::with_capacity(b * gh * gw);
        for i in 0..b {
            let image = u32::try_from(first_sample + i as u64).map_err(|_| SaeError::Unsupported("more than 2^32 images".into()))?;
            for row in 0..gh as u32 {
                out.extend((0..gw as u32).map(|col| RowMeta::Patch { image, row, col }));
            }
        }
        Ok(out)
    }
}
