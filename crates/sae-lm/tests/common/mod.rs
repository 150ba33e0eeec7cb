//! Helpers shared by the model tests.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use sae_core::hooks::HookTensor;

/// The committed reference fixtures of the language models.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fixtures/lm")
}

/// A hook activation on the host, as `[rows · width]`.
pub fn host(t: &HookTensor) -> Vec<f32> {
    t.flat_rows().into_data().try_to_vec::<f32>().unwrap()
}

/// Largest absolute difference of two equal-length slices.
pub fn max_abs(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).fold(0f32, |m, (x, y)| m.max((x - y).abs()))
}

/// Records every hook point a forward pass calls, with the activation's shape.
pub struct Seen(pub Vec<(String, Vec<usize>)>);

impl sae_core::hooks::Hooks for Seen {
    fn wants(&self, _: &str) -> bool {
        true
    }
    fn at(&mut self, name: &str, x: HookTensor) -> sae_core::Result<HookTensor> {
        self.0.push((name.to_string(), x.dims()));
        Ok(x)
    }
}
