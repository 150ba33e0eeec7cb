//! One-vs-rest logistic probes trained as SAEBench trains them (`evals/absorption/probing.py`,
//! `train_multi_probe`): one linear layer with an output per class, the mean binary
//! cross-entropy over every (row, class) with each class's positives weighted by
//! `negatives / positives`, Adam with L2 weight decay on every parameter, shuffled mini-batches,
//! and the learning rate decayed exponentially per epoch from `lr` to `end_lr`. An optional L1
//! penalty `l1 · mean_c Σ_j |W_cj|` on the weights makes the sparse probe SAEBench uses to pick
//! the latents of its k-sparse probes (`train_sparse_multi_probe`).

use sae_core::rng::SplitMix64;
use sae_core::{Result, SaeError};
use serde::Serialize;

use super::rows::FeatureRows;

/// How a probe is trained.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProbeTraining {
    /// Rows per step.
    pub batch_size: usize,
    /// Passes over the rows.
    pub epochs: usize,
    /// Learning rate of the first epoch.
    pub lr: f32,
    /// Learning rate the exponential decay reaches after the last epoch.
    pub end_lr: f32,
    /// Adam's L2 weight decay (added to the gradient, as `torch.optim.Adam` does).
    pub weight_decay: f32,
    /// L1 penalty on the weights (0 for a plain probe).
    pub l1: f32,
    /// Seed of the shuffling.
    pub seed: u64,
}

impl ProbeTraining {
    /// The ground-truth letter probe of SAEBench's absorption eval (`train_and_save_probes`:
    /// batch 64, 50 epochs, lr 1e-2 → 1e-5, weight decay 1e-4).
    pub fn letter_probe(seed: u64) -> Self {
        Self { batch_size: 64, epochs: 50, lr: 1e-2, end_lr: 1e-5, weight_decay: 1e-4, l1: 0.0, seed }
    }

    /// The L1 probe on SAE latents that ranks latents for the k-sparse probes
    /// (`train_sparse_multi_probe`: batch 4096, 50 epochs, lr 1e-2 → 1e-5, L2 1e-6, L1 0.01).
    pub fn sparse_latent_probe(seed: u64) -> Self {
        Self { batch_size: 4096, epochs: 50, lr: 1e-2, end_lr: 1e-5, weight_decay: 1e-6, l1: 0.01, seed }
    }
}

/// A trained linear probe: `logits = W x + b`, one row of `W` per class.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LinearProbe {
    /// `[classes, d]`, row-major.
    pub weights: Vec<f32>,
    /// `[classes]`.
    pub bias: Vec<f32>,
    /// Input width.
    pub d: usize,
}

impl LinearProbe {
    /// Classes.
    pub fn classes(&self) -> usize {
        self.bias.len()
    }

    /// The weight row of class `c`.
    pub fn class_weights(&self, c: usize) -> &[f32] {
        &self.weights[c * self.d..(c + 1) * self.d]
    }

    /// The logits of every row, `[n, classes]`.
    pub fn logits(&self, rows: &dyn FeatureRows) -> Vec<f32> {
        let c = self.classes();
        let mut out = Vec::with_capacity(rows.len() * c);
        for i in 0..rows.len() {
            let row = rows.row(i);
            out.extend((0..c).map(|k| row.dot(self.class_weights(k)) + self.bias[k]));
        }
        out
    }
}

/// Trains a one-vs-rest probe with `classes` outputs on `rows` whose class is `labels[i]`.
pub fn train_probe(rows: &dyn FeatureRows, labels: &[usize], classes: usize, t: &ProbeTraining, mut progress: impl FnMut(usize, usize)) -> Result<LinearProbe> {
    let (n, d) = (rows.len(), rows.dim());
    if labels.len() != n || n == 0 || classes == 0 {
        return Err(SaeError::Unsupported(format!("a probe needs rows and one label each: {n} rows, {} labels, {classes} classes", labels.len())));
    }
    if let Some(bad) = labels.iter().find(|&&l| l >= classes) {
        return Err(SaeError::Unsupported(format!("label {bad} is not one of the {classes} classes")));
    }
    if t.batch_size == 0 || t.epochs == 0 || !(t.lr > 0.0 && t.end_lr > 0.0) {
        return Err(SaeError::Unsupported(format!("probe training needs a positive batch size, epochs and learning rates: {t:?}")));
    }
    let mut positives = vec![0usize; classes];
    labels.iter().for_each(|&l| positives[l] += 1);
    // SAEBench divides by the positives; a class without any would make every loss NaN, so its
    // positives (there are none to weight) get weight 1.
    let pos_weight: Vec<f32> = positives.iter().map(|&p| if p == 0 { 1.0 } else { (n - p) as f32 / p as f32 }).collect();
    let params = classes * d + classes;
    let mut w = vec![0f32; params];
    init_like_torch_linear(&mut w, classes, d, t.seed);
    let (mut m, mut v) = (vec![0f32; params], vec![0f32; params]);
    let (beta1, beta2, eps) = (0.9f32, 0.999f32, 1e-8f32);
    let gamma = ((t.end_lr / t.lr).ln() / t.epochs as f32).exp();
    let mut rng = SplitMix64::new(t.seed ^ 0x5EED_0F_5A_4B);
    let mut order: Vec<usize> = (0..n).collect();
    let mut grad = vec![0f32; params];
    let mut dz = vec![0f32; classes];
    let mut step = 0i32;
    for epoch in 0..t.epochs {
        let lr = t.lr * gamma.powi(epoch as i32);
        shuffle(&mut order, &mut rng);
        for batch in order.chunks(t.batch_size) {
            grad.iter_mut().for_each(|g| *g = 0.0);
            let scale = 1.0 / (batch.len() * classes) as f32;
            for &i in batch {
                let row = rows.row(i);
                for c in 0..classes {
                    let z = row.dot(&w[c * d..(c + 1) * d]) + w[classes * d + c];
                    let s = sigmoid(z);
                    let y = (labels[i] == c) as u8 as f32;
                    // d/dz of −[p·y·log σ(z) + (1 − y)·log(1 − σ(z))].
                    dz[c] = (pos_weight[c] * y * (s - 1.0) + (1.0 - y) * s) * scale;
                }
                for (c, &g) in dz.iter().enumerate() {
                    row.add_scaled_to(g, &mut grad[c * d..(c + 1) * d]);
                    grad[classes * d + c] += g;
                }
            }
            if t.l1 > 0.0 {
                let l1 = t.l1 / classes as f32;
                for (g, &p) in grad[..classes * d].iter_mut().zip(&w[..classes * d]) {
                    *g += l1 * sign(p);
                }
            }
            step += 1;
            let (bc1, bc2) = (1.0 - beta1.powi(step), 1.0 - beta2.powi(step));
            for k in 0..params {
                let g = grad[k] + t.weight_decay * w[k];
                m[k] = beta1 * m[k] + (1.0 - beta1) * g;
                v[k] = beta2 * v[k] + (1.0 - beta2) * g * g;
                w[k] -= lr / bc1 * m[k] / ((v[k] / bc2).sqrt() + eps);
            }
        }
        progress(epoch + 1, t.epochs);
    }
    if w.iter().any(|x| !x.is_finite()) {
        return Err(SaeError::Unsupported("the probe's training diverged (NaN or infinite weights)".into()));
    }
    let bias = w.split_off(classes * d);
    Ok(LinearProbe { weights: w, bias, d })
}

/// `nn.Linear`'s default initialisation, U(−1/√d, 1/√d) for weights and bias, from the seed.
fn init_like_torch_linear(w: &mut [f32], classes: usize, d: usize, seed: u64) {
    let bound = 1.0 / (d as f32).sqrt();
    let mut rng = SplitMix64::new(seed);
    w[..classes * d + classes].iter_mut().for_each(|x| *x = rng.uniform(-bound, bound));
}

fn shuffle(order: &mut [usize], rng: &mut SplitMix64) {
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
}

fn sign(x: f32) -> f32 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

pub(crate) fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 { 1.0 / (1.0 + (-z).exp()) } else { let e = z.exp(); e / (1.0 + e) }
}
