//! A downstream architecture registered beside the built-in ones saves, loads and encodes.

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::format::{Format, StoreDtype, load_sae, save_sae};
use sae_core::params::host_f32;
use sae_core::{SaeConfig, SaeError};
use sae_downstream_test::SoftplusArch;

#[test]
fn downstream_architecture_saves_loads_and_encodes() {
    let device = Device::flex();
    let mut registry = sae_arch::registry();
    registry.register(SoftplusArch);
    let sae = registry.init(SaeConfig::new("softplus", 6, 24).with("beta", 3.0), &device, 11).unwrap();
    let x = Tensor::<2>::from_data(TensorData::new((0..18).map(|i| (i as f32 * 0.37).sin()).collect::<Vec<_>>(), [3, 6]), &device);
    let before = host_f32(sae.forward(x.clone()).unwrap().output.into_data()).unwrap();
    let codes = host_f32(sae.encode(x.clone()).unwrap().to_dense().into_data()).unwrap();
    assert!(codes.iter().all(|v| *v >= 0.0) && codes.iter().any(|v| *v > 0.0));

    let dir = tempfile::tempdir().unwrap();
    save_sae(sae.as_ref(), dir.path(), Format::SaeLens, StoreDtype::F32).unwrap();
    let cfg_text = std::fs::read_to_string(dir.path().join("cfg.json")).unwrap();
    assert!(cfg_text.contains("\"architecture\": \"softplus\"") && cfg_text.contains("\"beta\": 3.0"), "{cfg_text}");
    let loaded = load_sae(dir.path(), &registry, &device).unwrap();
    assert_eq!(loaded.sae.config().architecture, "softplus");
    assert_eq!(host_f32(loaded.sae.forward(x).unwrap().output.into_data()).unwrap(), before);

    // Without the registration the same directory is an unknown architecture, named in the error.
    match load_sae(dir.path(), &sae_arch::registry(), &device) {
        Err(SaeError::UnknownArchitecture { name, known, .. }) => {
            assert_eq!(name, "softplus");
            assert!(known.contains("topk"));
        }
        other => panic!("expected UnknownArchitecture, got {other:?}"),
    }
}
