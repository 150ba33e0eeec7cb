//! # sae-arch
//!
//! One file per SAE architecture, each implementing [`sae_core::Sae`] and
//! [`sae_core::Architecture`]: ReLU + L1 in both decoder-norm schools ([`standard`]), TopK with
//! AuxK and Multi-TopK ([`topk`]), [`batch_topk`], [`jumprelu`] with its straight-through
//! estimator, [`gated`], [`matryoshka`] BatchTopK, [`matching_pursuit`], and the
//! [`transcoder`] variants. [`registry`] returns a [`Registry`] with all of them. [`affine`]
//! holds the building blocks they share (input normalisation, decoding, losses, AuxK,
//! initialisation), for downstream architectures too. Hot paths run on `sae-kernels` under each
//! SAE's [`KernelPolicy`](sae_core::KernelPolicy). Formulas and sources: `docs/architectures.md`.
//!
//! ```
//! use burn::tensor::{Device, Tensor};
//! use sae_core::{SaeConfig, TrainBatch, TrainContext};
//!
//! let device = Device::flex();
//! let registry = sae_arch::registry();
//! let cfg = SaeConfig::new("topk", 8, 32).with("k", 4);
//! let sae = registry.init(cfg, &device, 42).unwrap();
//! let x = Tensor::<2>::ones([3, 8], &device);
//! let fwd = sae.forward(x.clone()).unwrap();
//! assert_eq!(fwd.output.dims(), [3, 8]);
//! let out = sae.train_forward(&TrainBatch::autoencode(x), &TrainContext::plain()).unwrap();
//! assert_eq!(out.terms[0].name, "mse_loss");
//! ```

#![warn(missing_docs)]

pub mod affine;
pub mod batch_topk;
pub mod diagnostics;
pub mod gated;
pub mod jumprelu;
pub mod matching_pursuit;
pub mod matryoshka;
pub mod standard;
pub mod topk;
pub mod transcoder;

use sae_core::Registry;

/// A registry holding every built-in architecture.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.register(standard::StandardArch)
        .register(topk::TopKArch)
        .register(batch_topk::BatchTopKArch)
        .register(jumprelu::JumpReluArch)
        .register(gated::GatedArch)
        .register(matryoshka::MatryoshkaArch)
        .register(matching_pursuit::MatchingPursuitArch)
        .register(transcoder::TranscoderArch { skip: false })
        .register(transcoder::TranscoderArch { skip: true })
        .register(transcoder::JumpReluTranscoderArch { skip: false })
        .register(transcoder::JumpReluTranscoderArch { skip: true });
    r
}
