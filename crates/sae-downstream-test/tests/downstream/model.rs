//! A hooked model from outside the model crates ([`TinyPatchNet`], over images) goes through
//! the generic harvest, the trainer, the interventions and the catalog without a line of code
//! of its own beyond its `HookedModel` implementation.

use std::path::Path;

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::format::load_sae;
use sae_core::hooks::{Capture, NoHooks};
use sae_core::params::host_f32;
use sae_core::rng::SplitMix64;
use sae_core::{ActivationSource, HookedModel, RowMeta, RowMetaKind, Sae, SaeError};
use sae_data::store::ActivationStore;
use sae_downstream_test::model::{HOOK_EMBED, HOOK_RESID, TinyPatchNet};
use sae_hooked::harvest::{HarvestSettings, harvest};
use sae_hooked::intervene::{FeatureEdit, Intervention, Splice};
use sae_hooked::{HookedError, ModelCatalog, ModelEntry};

/// `batch` images `[6, 4, 3]` (a 3 × 2 grid of patches) with pixels uniform in [0, 1).
fn images(batch: usize, rng: &mut SplitMix64, device: &Device) -> Tensor<4> {
    let values: Vec<f32> = (0..batch * 6 * 4 * 3).map(|_| rng.uniform(0.0, 1.0)).collect();
    Tensor::from_data(TensorData::new(values, [batch, 6, 4, 3]), device)
}

fn batches(n: usize, batch: usize, seed: u64, device: &Device) -> impl Iterator<Item = Result<Tensor<4>, HookedError>> {
    let mut rng = SplitMix64::new(seed);
    let device = device.clone();
    (0..n).map(move |_| Ok(images(batch, &mut rng, &device)))
}

fn settings(hook: &str, rows: u64) -> HarvestSettings {
    HarvestSettings { hook: hook.into(), rows, max_norm_multiple: None, shard_rows: 32, source: serde_json::json!({"model": "tiny-patch-net"}) }
}

fn values(t: Tensor<2>) -> Vec<f32> {
    host_f32(t.into_data()).unwrap()
}

#[test]
fn harvest_stores_every_patch_with_its_image_and_grid_position() {
    let device = Device::flex();
    let model = TinyPatchNet::new(8, 3, 7, &device);
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("store");
    // 5 batches of 3 images of 6 patches: 90 rows on offer, 80 wanted.
    let report = harvest(&model, batches(5, 3, 1, &device), &settings(HOOK_RESID, 80), |_| true, &out, |_, _| {}).unwrap();
    assert_eq!((report.rows, report.samples, report.dropped_filtered), (80, 15, 0));
    let store = ActivationStore::open(&out).unwrap();
    assert_eq!((store.len(), ActivationSource::d_in(&store), store.metadata().row_meta), (80, 8, Some(RowMetaKind::Patch)));
    let meta = store.read_meta(0, 80).unwrap().unwrap();
    for (r, m) in meta.iter().enumerate() {
        let (image, cell) = ((r / 6) as u32, r % 6);
        assert_eq!(*m, RowMeta::Patch { image, row: (cell / 2) as u32, col: (cell % 2) as u32 }, "row {r}");
    }
    // The stored rows are the activations a plain capture sees, bit for bit.
    let first = batches(1, 3, 1, &device).next().unwrap().unwrap();
    let mut capture = Capture::new([HOOK_RESID]);
    model.forward(&first, &mut capture).unwrap();
    let direct = values(capture.take(HOOK_RESID).unwrap().flat_rows());
    let mut stored = Vec::new();
    store.read_rows(0, 18, &mut stored).unwrap();
    assert_eq!(stored, direct);

    // A filter on the metadata (here: the left column of every image) is the model's to give.
    let left = dir.path().join("left");
    let report = harvest(&model, batches(2, 3, 1, &device), &settings(HOOK_EMBED, 1000), |m| matches!(m, RowMeta::Patch { col: 0, .. }), &left, |_, _| {}).unwrap();
    assert_eq!((report.rows, report.dropped_filtered), (18, 18));

    // Bad requests are typed errors and leave no store behind.
    let err = harvest(&model, batches(1, 3, 1, &device), &settings("blocks.9.hook_resid_post", 10), |_| true, &dir.path().join("x"), |_, _| {}).unwrap_err();
    assert!(matches!(err, HookedError::Core(SaeError::UnknownHook { .. })) && err.to_string().contains("blocks.{i}.hook_resid_post (i in 0..1)"), "{err}");
    let err = harvest(&model, batches(0, 3, 1, &device), &settings(HOOK_RESID, 10), |_| true, &dir.path().join("y"), |_, _| {}).unwrap_err();
    assert!(matches!(err, HookedError::Data(_)), "{err}");
    assert!(!dir.path().join("x").exists() && !dir.path().join("y").exists());
    let err = harvest(&model, batches(1, 3, 1, &device), &settings(HOOK_RESID, 10), |_| true, &out, |_, _| {}).unwrap_err();
    assert!(err.to_string().contains("already exists"), "an existing store is never overwritten: {err}");
    let odd = Tensor::<4>::zeros([1, 5, 4, 3], &device);
    let err = harvest(&model, [Ok::<_, HookedError>(odd)], &settings(HOOK_RESID, 10), |_| true, &dir.path().join("z"), |_, _| {}).unwrap_err();
    assert!(matches!(err, HookedError::Core(SaeError::ShapeMismatch { .. })), "{err}");
}

/// Fraction of variance unexplained by `sae` on the rows of `store`.
fn fvu(sae: &dyn Sae, store: &ActivationStore, device: &Device) -> f64 {
    let n = store.len() as usize;
    let d = ActivationSource::d_in(store);
    let mut rows = Vec::new();
    store.read_rows(0, n, &mut rows).unwrap();
    let x = Tensor::<2>::from_data(TensorData::new(rows.clone(), [n, d]), device);
    let recon = values(sae.forward(x).unwrap().output);
    let mut mean = vec![0f64; d];
    for r in rows.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += *v as f64 / n as f64;
        }
    }
    let err: f64 = rows.iter().zip(&recon).map(|(a, b)| (*a as f64 - *b as f64).powi(2)).sum();
    let var: f64 = rows.iter().enumerate().map(|(i, v)| (*v as f64 - mean[i % d]).powi(2)).sum();
    err / var
}

#[test]
fn an_sae_trained_on_a_harvest_of_the_model_intervenes_on_it() {
    let device = Device::flex();
    let registry = sae_arch::registry();
    let model = TinyPatchNet::new(8, 3, 7, &device);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("store");
    // 683 images of 6 patches; 4096 rows kept.
    harvest(&model, batches(11, 64, 2, &device), &settings(HOOK_RESID, 4096), |_| true, &data, |_, _| {}).unwrap();

    let spec: sae_train::SaeSpec = serde_json::from_value(serde_json::json!({"architecture": "topk", "d_sae": 32, "k": 4})).unwrap();
    let mut cfg = sae_train::TrainConfig::new(&data, dir.path().join("run"), vec![spec]);
    cfg.batch_size = 256;
    cfg.tokens = Some(25 * 4096);
    cfg.lr = 3e-3;
    let mut trainer = sae_train::Trainer::new(cfg, Path::new("<test>"), &registry, &device, sae_train::Start::Fresh).unwrap();
    let summary = trainer.run(|_| {}).unwrap();
    let sae = load_sae(&summary.outputs[0], &registry, &device).unwrap().sae;
    let store = ActivationStore::open(&data).unwrap();
    let untrained = registry.init(sae.config().clone(), &device, 0).unwrap();
    let (before, after) = (fvu(untrained.as_ref(), &store, &device), fvu(sae.as_ref(), &store, &device));
    eprintln!("FVU untrained {before:.4}, trained {after:.4}");
    // 8 dimensions, 4 of 32 latents active: a trained SAE explains most of the variance.
    assert!(after < 0.25 && after < before / 2.0, "FVU {before} untrained, {after} trained");

    let x = batches(1, 5, 3, &device).next().unwrap().unwrap();
    let run = |hooks: &mut dyn sae_core::hooks::Hooks| values(model.forward(&x, hooks).unwrap());
    let clean = run(&mut NoHooks);
    let scale = clean.iter().fold(0f32, |m, v| m.max(v.abs()));
    let close = |a: &[f32], b: &[f32], tol: f32| a.iter().zip(b).all(|(p, q)| (p - q).abs() <= tol);
    // Splicing with the error term and no edit leaves the output as it was, up to rounding of the
    // reconstruction (relative 1e-5 of the 8-wide activations through a 3-wide head).
    let with_error = run(&mut Intervention::at(HOOK_RESID).with_sae(sae.as_ref()).splice(Splice::WithError));
    assert!(close(&with_error, &clean, 1e-4 * scale.max(1.0)), "{with_error:?} vs {clean:?}");
    // Zero-ablating the last hook zeroes the bias-free head's logits exactly.
    assert!(run(&mut Intervention::at(HOOK_RESID).splice(Splice::Zero)).iter().all(|v| *v == 0.0));
    // The reconstruction alone is far closer to the clean output than zero is.
    let recon = run(&mut Intervention::at(HOOK_RESID).with_sae(sae.as_ref()).splice(Splice::Reconstruction));
    let dist = |a: &[f32]| a.iter().zip(&clean).map(|(p, q)| (p - q).powi(2)).sum::<f32>();
    assert!(dist(&recon) < 0.25 * dist(&vec![0.0; clean.len()]), "{} vs {}", dist(&recon), dist(&vec![0.0; clean.len()]));
    // Ablating the most used feature changes the output.
    let mut capture = Capture::new([HOOK_RESID]);
    model.forward(&x, &mut capture).unwrap();
    let codes = values(sae.encode(capture.take(HOOK_RESID).unwrap().flat_rows()).unwrap().to_dense());
    let mut mass = vec![0f32; 32];
    for (i, v) in codes.iter().enumerate() {
        mass[i % 32] += v;
    }
    let top = (0..32).max_by(|a, b| mass[*a].total_cmp(&mass[*b])).unwrap();
    let ablated = run(&mut Intervention::at(HOOK_RESID).with_sae(sae.as_ref()).edit(FeatureEdit::Ablate(top)));
    assert!(!close(&ablated, &with_error, 1e-3 * scale.max(1.0)), "ablating feature {top} changed nothing");
    // Steering adds the same vector to every patch, so the (linear, mean-pooled) head moves every
    // image's logits by the same amount.
    let steered = run(&mut Intervention::at(HOOK_RESID).with_sae(sae.as_ref()).steer(top, 3.0));
    let shift: Vec<f32> = steered.iter().zip(&clean).map(|(s, c)| s - c).collect();
    assert!(shift[..3].iter().any(|v| v.abs() > 1e-3), "{shift:?}");
    for image in shift.chunks_exact(3) {
        assert!(close(image, &shift[..3], 1e-4 * scale.max(1.0)), "{shift:?}");
    }
    // An SAE of another width is a typed error at the hook, for splicing and steering alike.
    let narrow = TinyPatchNet::new(6, 3, 7, &device);
    for hooks in [Intervention::at(HOOK_RESID).with_sae(sae.as_ref()).splice(Splice::Reconstruction), Intervention::at(HOOK_RESID).with_sae(sae.as_ref()).steer(top, 1.0)] {
        let mut hooks = hooks;
        let err = narrow.forward(&x, &mut hooks).unwrap_err();
        assert!(matches!(err, SaeError::ShapeMismatch { .. }), "{err}");
    }
}

/// The image models a downstream binary would offer.
type ImageModel = dyn HookedModel<Input = Tensor<4>, Output = Tensor<2>>;

#[test]
fn a_model_crate_registers_its_model_in_a_catalog_with_one_call() {
    fn register(catalog: &mut ModelCatalog<ImageModel>) {
        catalog.register(ModelEntry { name: "tiny-patch-net", summary: "2×2 patches, one residual block", assets: &[], load: |_, device| Ok(Box::new(TinyPatchNet::new(8, 3, 7, device))) });
    }
    let mut catalog: ModelCatalog<ImageModel> = ModelCatalog::new();
    register(&mut catalog);
    let device = Device::flex();
    let cache = sae_assets::AssetCache::new(std::env::temp_dir().join("sae-downstream-no-assets"));
    let model = catalog.load("tiny-patch-net", &cache, &device).unwrap();
    assert_eq!(model.hook_names(), vec![HOOK_EMBED.to_string(), HOOK_RESID.to_string()]);
    let logits = model.forward(&Tensor::<4>::ones([2, 4, 4, 3], &device), &mut NoHooks).unwrap();
    assert_eq!(logits.dims(), [2, 3]);
    let err = catalog.load("resnet", &cache, &device).err().unwrap();
    assert!(err.to_string().contains("unknown model `resnet`; known: tiny-patch-net"), "{err}");
}
