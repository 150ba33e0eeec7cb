//! One training step per architecture (forward, backward, gradient projection, Adam, post-step
//! hook) at the shape: d_in 384, d_sae 6144, batch 4096, on every enabled backend.
//! Run: `cargo bench -p sae-benches --bench training [--features wgpu]`.

use criterion::{Criterion, criterion_group, criterion_main};
use sae_benches::{devices, normal};
use sae_core::{SaeConfig, TrainContext};
use sae_train::adam::Adam;
use sae_train::optimisation_step;

const D_IN: usize = 384;
const D_SAE: usize = 6144;
const BATCH: usize = 4096;

fn configs() -> Vec<(&'static str, SaeConfig)> {
    vec![
        ("topk", SaeConfig::new("topk", D_IN, D_SAE).with("k", 32)),
        ("batchtopk", SaeConfig::new("batchtopk", D_IN, D_SAE).with("k", 32.0)),
        ("jumprelu", SaeConfig::new("jumprelu", D_IN, D_SAE)),
        ("relu_l1", SaeConfig::new("standard", D_IN, D_SAE)),
        ("matryoshka", SaeConfig::new("matryoshka_batchtopk", D_IN, D_SAE).with("k", 32.0).with("matryoshka_widths", serde_json::json!([512, 2048, D_SAE]))),
        ("gated", SaeConfig::new("gated", D_IN, D_SAE)),
    ]
}

fn training_step(c: &mut Criterion) {
    let registry = sae_arch::registry();
    for (backend, device) in devices() {
        let x = normal(BATCH, D_IN, 1, &device);
        let mut group = c.benchmark_group(format!("{backend}/train_step"));
        group.sample_size(10);
        for (name, cfg) in configs() {
            let mut sae = registry.init(cfg, &device, 2).unwrap_or_else(|e| panic!("{name}: {e}"));
            let mut adam = Adam::new(0.9, 0.999, 1e-8);
            let ctx = TrainContext::plain();
            group.bench_function(name, |b| {
                b.iter(|| optimisation_step(sae.as_mut(), &mut adam, &x, &ctx, 1e-4, None).map(|r| r.out.loss.into_scalar::<f32>()))
            });
        }
        group.finish();
    }
}

criterion_group!(benches, training_step);
criterion_main!(benches);
