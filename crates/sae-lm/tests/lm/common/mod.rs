//! Helpers shared by the model tests.
#![allow(dead_code)]

pub mod error_model;

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

/// Asserts that `ours` equals `reference` row by row (rows of `width`) within `bound`, normwise
/// relative per row ([`sae_core::tolerance::compare_rows`]); prints the measured error, the
/// bound and the machine, so that a failure report says where it happened.
pub fn assert_rows_within(label: &str, ours: &[f32], reference: &[f32], width: usize, bound: f64) {
    let cmp = sae_core::tolerance::compare_rows(ours, reference, width).unwrap_or_else(|| panic!("{label}: {} vs {} values in rows of {width}", ours.len(), reference.len()));
    let headroom = if cmp.worst_relative > 0.0 { format!("{:.0}x headroom", bound / cmp.worst_relative) } else { "equal".to_string() };
    eprintln!(
        "{label}: worst row {} relative error {:.2e}, bound {bound:.2e} ({headroom}); max abs diff {:.2e} (max |x| {:.1})",
        cmp.worst_row, cmp.worst_relative, cmp.max_abs, cmp.max_reference
    );
    assert!(cmp.worst_relative <= bound, "{label}: row {} differs by {:.3e} relative, above the error model's {bound:.3e}; on {}", cmp.worst_row, cmp.worst_relative, machine());
}

/// The machine and kernel paths of this test process, for failure messages.
pub fn machine() -> String {
    sae_kernels::host::describe()
}
