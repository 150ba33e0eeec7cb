//! Files that lie (issue #17): each gives a typed error naming the file, never a panic.

use burn::tensor::Device;
use sae_core::format::load_sae;
use sae_core::format::safetensors_io::write_safetensors;
use sae_core::format::StoreDtype;

#[test]
fn a_scaling_factor_beside_a_decoder_without_columns_is_an_error_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = r#"{"architecture": "standard", "d_in": 4, "d_sae": 3, "dtype": "float32", "device": "cpu", "hook_name": "h"}"#;
    std::fs::write(dir.path().join("cfg.json"), cfg).unwrap();
    let tensors = vec![
        ("W_enc".to_string(), vec![4, 3], vec![0.0; 12]),
        ("b_enc".to_string(), vec![3], vec![0.0; 3]),
        ("W_dec".to_string(), vec![3, 0], vec![]),
        ("b_dec".to_string(), vec![4], vec![0.0; 4]),
        ("scaling_factor".to_string(), vec![3], vec![2.0; 3]),
    ];
    write_safetensors(&dir.path().join("sae_weights.safetensors"), &tensors, StoreDtype::F32, None).unwrap();
    let err = load_sae(dir.path(), &sae_arch::registry(), &Device::flex()).err().expect("a W_dec of shape [3, 0] must not load");
    let text = err.to_string();
    assert!(text.contains("W_dec") && text.contains("sae_weights.safetensors"), "{text}");
}

#[test]
fn a_matching_pursuit_without_a_bound_on_its_iterations_is_refused() {
    use sae_core::SaeConfig;
    let device = Device::flex();
    let registry = sae_arch::registry();
    let endless = SaeConfig::new("matching_pursuit", 4, 8).with("max_iterations", 1_000_000_000_000u64).with("residual_threshold", 0.0).with("stop_on_duplicate_support", false);
    let err = registry.init(endless, &device, 0).err().expect("a trillion iterations per batch must be refused");
    assert!(err.to_string().contains("max_iterations") && err.to_string().contains("at most 32"), "{err}");
    // Within the cap and with no other stopping rule, encoding returns (rows stop once nothing moves).
    let bounded = SaeConfig::new("matching_pursuit", 4, 8).with("max_iterations", 32).with("residual_threshold", 0.0).with("stop_on_duplicate_support", false);
    let sae = registry.init(bounded, &device, 0).unwrap();
    let x = burn::tensor::Tensor::<2>::ones([3, 4], &device);
    assert_eq!(sae.encode(x).unwrap().to_dense().dims(), [3, 8]);
}
