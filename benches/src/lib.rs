//! Shared set-up for the criterion benches: devices per enabled backend and random inputs.
//!
//! ```
//! let devices = sae_benches::devices();
//! assert!(devices.iter().any(|(name, _)| *name == "flex"));
//! ```

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::rng::SplitMix64;

/// `(name, device)` for every backend compiled in.
pub fn devices() -> Vec<(&'static str, Device)> {
    #[allow(unused_mut)]
    let mut v = vec![("flex", Device::flex())];
    #[cfg(feature = "ndarray")]
    #[allow(deprecated)]
    v.push(("ndarray", Device::ndarray()));
    #[cfg(feature = "wgpu")]
    v.push(("wgpu", Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)));
    v
}

/// A `[rows, cols]` tensor of standard normal values, deterministic in `seed`. Allocates
/// `rows × cols` floats.
pub fn normal(rows: usize, cols: usize, seed: u64, device: &Device) -> Tensor<2> {
    let mut rng = SplitMix64::new(seed);
    Tensor::from_data(TensorData::new((0..rows * cols).map(|_| rng.normal()).collect::<Vec<f32>>(), [rows, cols]), device)
}
