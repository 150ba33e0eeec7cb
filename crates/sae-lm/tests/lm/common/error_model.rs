//! The f32 error model of `sae_core::tolerance` applied to the language models: how far two
//! conforming f32 computations of a hidden state or a logit may be apart, whatever order their
//! products add up in (AVX2 or AVX-512 kernels, another batch size, a cached step, PyTorch).

use std::path::Path;

use sae_core::hooks::{HookTensor, Hooks};
use sae_core::tolerance;

/// Products along the longest chain through one transformer block (LLaMA or BERT): the query
/// (or key) projection, the scores, pattern·V and the output projection, then the two
/// projections of the MLP.
pub const PRODUCTS_PER_BLOCK: usize = 6;

/// How far two f32 computations of a residual stream may be apart, normwise relative per
/// token, after `products` products of inner dimension at most `k` (`tolerance::network_depth`):
/// growth 1, since every block normalises the stream (pre-norm RMSNorm in SmolLM2, post-norm
/// LayerNorm in MiniLM), so an error carried in it enters the next products relative to the
/// stream's own size.
pub fn stream_bound(products: usize, k: usize) -> f64 {
    tolerance::network_depth(products, k, 1.0)
}

/// Euclidean norm of a row.
pub fn l2(row: &[f32]) -> f64 {
    row.iter().map(|&v| (v as f64) * (v as f64)).sum::<f64>().sqrt()
}

/// The largest row norm of a row-major `[rows, width]` matrix.
pub fn max_row_norm(w: &[f32], width: usize) -> f64 {
    w.chunks(width).map(l2).fold(0.0, f64::max)
}

/// The unembedding of SmolLM2 (its tied token embedding) read from the GGUF file: the largest
/// row norm, which scales how far an error in the final hidden state moves a logit.
pub fn smollm2_unembedding_norm(gguf: &Path, vocab: usize, d_model: usize) -> f64 {
    let g = sae_lm::gguf::GgufFile::open(gguf).unwrap();
    max_row_norm(&g.tensor_f32("token_embd.weight", &[vocab, d_model]).unwrap(), d_model)
}

/// Per token, how far two f32 computations of the logits may be apart: the final hidden state
/// `h` (rows of `d_model`, relative error `stream_bound` after `blocks` blocks) times the
/// unembedding (one more product of inner dimension `d_model`):
/// `|δz_v| ≤ ‖W_v‖·‖h‖·(ε_h + ε_head)`. A next-token NLL (logsumexp(z) − z_y) moves by at
/// most twice that.
pub fn logit_bounds(h: &[f32], d_model: usize, k_max: usize, blocks: usize, unembedding_norm: f64) -> Vec<f64> {
    let eps = stream_bound(PRODUCTS_PER_BLOCK * blocks, k_max) + tolerance::between_implementations(d_model);
    h.chunks(d_model).map(|r| unembedding_norm * l2(r) * eps).collect()
}

/// The index of the largest value (the first of equals).
pub fn argmax(row: &[f32]) -> usize {
    row.iter().enumerate().fold(0, |best, (v, &z)| if z > row[best] { v } else { best })
}

/// Per token, how far two computations' logits may be apart given their two final hidden
/// states, measured (rows of `d_model`): the difference carried through the unembedding,
/// `|δz_v| ≤ ‖W_v‖·‖h_a − h_b‖`, plus the head product's own rounding in two orders,
/// `ε_head·‖W_v‖·‖h‖` (inner dimension `d_model`). Much tighter than [`logit_bounds`], whose
/// `‖δh‖` comes from the depth bound, and as rigorous once the hidden states are at hand.
pub fn head_bounds(h_a: &[f32], h_b: &[f32], d_model: usize, unembedding_norm: f64) -> Vec<f64> {
    assert_eq!(h_a.len(), h_b.len(), "hidden states of different sizes");
    let eps = tolerance::between_implementations(d_model);
    h_a.chunks(d_model)
        .zip(h_b.chunks(d_model))
        .map(|(a, b)| {
            let diff = a.iter().zip(b).map(|(&x, &y)| ((x - y) as f64).powi(2)).sum::<f64>().sqrt();
            unembedding_norm * (diff + eps * l2(a).max(l2(b)))
        })
        .collect()
}

/// Runs two hooks at every point: `first`, then `second` on what `first` returned (an
/// intervention and a capture of what follows from it).
pub struct Both<'a>(pub &'a mut dyn Hooks, pub &'a mut dyn Hooks);

impl Hooks for Both<'_> {
    fn wants(&self, name: &str) -> bool {
        self.0.wants(name) || self.1.wants(name)
    }
    fn at(&mut self, name: &str, x: HookTensor) -> sae_core::Result<HookTensor> {
        let x = if self.0.wants(name) { self.0.at(name, x)? } else { x };
        if self.1.wants(name) { self.1.at(name, x) } else { Ok(x) }
    }
}

/// Asserts that an attention pattern `[heads, s, s]` (block 0, one sentence) matches
/// `reference` within the error model: `p = softmax(s)` with `s_ij = q_i·k_j/√d_head`, where q
/// and k have passed one projection (inner dimension `d_model`) each and s one more product,
/// so `|δs_ij| ≤ ε·‖q_i‖·‖k_j‖/√d_head` with `ε = network_depth(3, d_model)`, and softmax moves
/// `p_ij` by at most `2·max_j |δs_ij|` within a row. `q` is `[s, heads, d_head]`, `k`
/// `[s, kv_heads, d_head]` (query head h reads key head `h / (heads / kv_heads)`).
#[allow(clippy::too_many_arguments)]
pub fn assert_pattern_within(label: &str, ours: &[f32], reference: &[f32], q: &[f32], k: &[f32], heads: usize, kv_heads: usize, d_head: usize, d_model: usize) {
    let s = q.len() / (heads * d_head);
    assert_eq!((ours.len(), reference.len(), k.len()), (heads * s * s, heads * s * s, s * kv_heads * d_head), "{label}: shapes");
    let eps = tolerance::network_depth(3, d_model, 1.0);
    let (qn, kn): (Vec<f64>, Vec<f64>) = (q.chunks(d_head).map(l2).collect(), k.chunks(d_head).map(l2).collect());
    let group = heads / kv_heads;
    let mut worst = 0f64;
    for h in 0..heads {
        let k_max = (0..s).map(|t| kn[t * kv_heads + h / group]).fold(0.0, f64::max);
        for i in 0..s {
            let bound = 2.0 * eps * qn[i * heads + h] * k_max / (d_head as f64).sqrt();
            let row = (h * s + i) * s..(h * s + i + 1) * s;
            let err = ours[row.clone()].iter().zip(&reference[row]).fold(0f64, |a, (x, y)| a.max((x - y).abs() as f64));
            worst = worst.max(err / bound.max(f64::MIN_POSITIVE));
            assert!(err <= bound, "{label}: head {h}, query {i}: {err:.3e} > {bound:.3e}; on {}", super::machine());
        }
    }
    eprintln!("{label}: worst error {worst:.3} of its bound");
}
