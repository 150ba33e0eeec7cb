//! SmolLM2-135M-Instruct: a LLaMA decoder (pre-RMSNorm, grouped-query attention with rotary
//! position embeddings, SwiGLU MLP, tied input/output embeddings), read from the GGUF file of
//! the `smollm2` asset and dequantised to f32. The tokenizer is built from the GGUF metadata.
//!
//! Hook points (TransformerLens's LLaMA naming): `hook_embed`, and per block `i`:
//! `blocks.{i}.hook_resid_pre`, `ln1.hook_scale`, `ln1.hook_normalized`, `attn.hook_q`
//! `[batch, pos, 9, 64]`, `attn.hook_k` and `attn.hook_v` `[batch, pos, 3, 64]` (the key/value
//! heads, before they are shared by groups of query heads), `attn.hook_rot_q`,
//! `attn.hook_rot_k` (after the rotary embedding), `attn.hook_pattern` `[batch, 9, query,
//! key]`, `attn.hook_z` `[batch, pos, 9, 64]`, `hook_attn_out`, `hook_resid_mid`,
//! `ln2.hook_scale`, `ln2.hook_normalized`, `mlp.hook_pre` (gate projection, before SiLU),
//! `mlp.hook_pre_linear` (up projection), `mlp.hook_post` (`silu(gate) · up`),
//! `hook_mlp_out`, `hook_resid_post`; then `ln_final.hook_scale`, `ln_final.hook_normalized`.
//!
//! llama.cpp's converter permutes the rows of `attn_q`/`attn_k` so that the rotary embedding
//! turns interleaved pairs `(x[2j], x[2j+1])`; this implementation rotates those pairs, so
//! `hook_q`/`hook_k` are in the file's (interleaved) order.

use std::path::Path;

use burn::tensor::activation::{silu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use sae_core::hooks::Hooks;
use sae_core::HookedModel;
use sae_assets::AssetCache;

use crate::error::{LmError, Result};
use crate::gguf::GgufFile;
use crate::layers::{Linear, Norm, NormScale, hook3, hook4};
use crate::model::{KvCache, LanguageModel, batch_shape};
use crate::tokenizer::TextTokenizer;

/// The hyper-parameters read from the GGUF metadata (`llama.*`).
#[derive(Debug, Clone, PartialEq)]
pub struct LlamaConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Residual width.
    pub d_model: usize,
    /// Blocks.
    pub n_layers: usize,
    /// Query heads.
    pub n_heads: usize,
    /// Key/value heads (grouped-query attention: `n_heads / n_kv_heads` query heads share one).
    pub n_kv_heads: usize,
    /// Width of one head.
    pub d_head: usize,
    /// MLP width.
    pub d_mlp: usize,
    /// RMSNorm epsilon.
    pub eps: f64,
    /// RoPE frequency base.
    pub rope_base: f64,
    /// Longest context.
    pub context: usize,
    /// Beginning-of-sequence token.
    pub bos: u32,
    /// End-of-sequence token.
    pub eos: u32,
}

#[derive(Debug, Clone)]
struct Block {
    ln1: Norm,
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln2: Norm,
    gate: Linear,
    up: Linear,
    down: Linear,
}

/// SmolLM2 (any GGUF LLaMA with the tensor names of llama.cpp) on a burn device.
#[derive(Debug, Clone)]
pub struct SmolLm2 {
    cfg: LlamaConfig,
    embed: Tensor<2>,
    /// `[d_model, vocab]` output projection once the final norm's gain is folded into it;
    /// `None`: the tied embedding, transposed.
    head: Option<Tensor<2>>,
    blocks: Vec<Block>,
    ln_final: Norm,
    tokenizer: TextTokenizer,
}

fn linear(g: &GgufFile, name: &str, d_in: usize, d_out: usize, device: &Device) -> Result<Linear> {
    let w = g.tensor_f32(name, &[d_out, d_in])?;
    // Stored `[in, out]` contiguously: the matmul then reads its right operand row-major.
    let mut w_t = vec![0f32; w.len()];
    for (o, row) in w.chunks_exact(d_in).enumerate() {
        for (i, &v) in row.iter().enumerate() {
            w_t[i * d_out + o] = v;
        }
    }
    Ok(Linear { w_t: Tensor::<2>::from_data(TensorData::new(w_t, [d_in, d_out]), device), b: None })
}

impl SmolLm2 {
    /// Loads the model from the asset cache (a missing asset is an error naming the command
    /// that fetches it).
    pub fn from_cache(cache: &AssetCache, device: &Device) -> Result<Self> {
        let dir = cache.locate(&crate::assets::SMOLLM2)?;
        let file = dir.join("SmolLM2-135M-Instruct.Q4_1.gguf");
        if !file.is_file() {
            return Err(LmError::MissingFile { path: file, asset: "smollm2" });
        }
        Self::load(&file, device)
    }

    /// Loads a LLaMA GGUF file.
    pub fn load(path: &Path, device: &Device) -> Result<Self> {
        let g = GgufFile::open(path)?;
        let arch = g.meta("general.architecture")?.as_str().unwrap_or_default().to_string();
        if arch != "llama" {
            return Err(LmError::BadFile { path: path.into(), reason: format!("GGUF architecture `{arch}` is not `llama`") });
        }
        let n_heads = g.meta_usize("llama.attention.head_count")?;
        let d_model = g.meta_usize("llama.embedding_length")?;
        let cfg = LlamaConfig {
            vocab_size: g.meta_strings("tokenizer.ggml.tokens")?.len(),
            d_model,
            n_layers: g.meta_usize("llama.block_count")?,
            n_heads,
            n_kv_heads: g.meta_usize("llama.attention.head_count_kv")?,
            d_head: d_model / n_heads.max(1),
            d_mlp: g.meta_usize("llama.feed_forward_length")?,
            eps: g.meta_f64("llama.attention.layer_norm_rms_epsilon")?,
            rope_base: g.meta_f64("llama.rope.freq_base").unwrap_or(10_000.0),
            context: g.meta_usize("llama.context_length")?,
            bos: g.meta_usize("tokenizer.ggml.bos_token_id")? as u32,
            eos: g.meta_usize("tokenizer.ggml.eos_token_id")? as u32,
        };
        // A rotary base of 0, 1 or NaN, or an epsilon that is not a small positive number, would
        // load and produce garbage.
        if !(cfg.rope_base.is_finite() && cfg.rope_base > 1.0) {
            return Err(LmError::BadFile { path: path.into(), reason: format!("GGUF: llama.rope.freq_base {} must be a finite number above 1", cfg.rope_base) });
        }
        if !(cfg.eps.is_finite() && cfg.eps > 0.0 && cfg.eps < 1.0) {
            return Err(LmError::BadFile { path: path.into(), reason: format!("GGUF: llama.attention.layer_norm_rms_epsilon {} must be in (0, 1)", cfg.eps) });
        }
        let rope_dims = g.metadata.get("llama.rope.dimension_count").and_then(|v| v.as_u64()).unwrap_or(cfg.d_head as u64) as usize;
        if n_heads == 0 || cfg.n_kv_heads == 0 || !d_model.is_multiple_of(n_heads) || !n_heads.is_multiple_of(cfg.n_kv_heads) || rope_dims != cfg.d_head || !cfg.d_head.is_multiple_of(2) {
            return Err(LmError::BadFile { path: path.into(), reason: format!("unsupported attention layout: {n_heads} heads, {} key/value heads, width {d_model}, rotary dimensions {rope_dims}", cfg.n_kv_heads) });
        }
        let tokenizer = TextTokenizer::from_gguf(&g)?;
        let (d, kv, f) = (d_model, cfg.n_kv_heads * cfg.d_head, cfg.d_mlp);
        let norm = |name: &str| -> Result<Norm> {
            let gain = g.tensor_f32(name, &[d])?;
            Ok(Norm { gain: Tensor::from_data(TensorData::new(gain, [d]), device), bias: None, eps: cfg.eps, centre: false, scale: NormScale::Computed })
        };
        let embed = Tensor::<2>::from_data(TensorData::new(g.tensor_f32("token_embd.weight", &[cfg.vocab_size, d])?, [cfg.vocab_size, d]), device);
        let head = match g.tensors.contains_key("output.weight") {
            true => Some(linear(&g, "output.weight", d, cfg.vocab_size, device)?.w_t),
            false => None,
        };
        let mut blocks = Vec::with_capacity(cfg.n_layers);
        for i in 0..cfg.n_layers {
            let p = format!("blk.{i}");
            blocks.push(Block {
                ln1: norm(&format!("{p}.attn_norm.weight"))?,
                q: linear(&g, &format!("{p}.attn_q.weight"), d, d, device)?,
                k: linear(&g, &format!("{p}.attn_k.weight"), d, kv, device)?,
                v: linear(&g, &format!("{p}.attn_v.weight"), d, kv, device)?,
                o: linear(&g, &format!("{p}.attn_output.weight"), d, d, device)?,
                ln2: norm(&format!("{p}.ffn_norm.weight"))?,
                gate: linear(&g, &format!("{p}.ffn_gate.weight"), d, f, device)?,
                up: linear(&g, &format!("{p}.ffn_up.weight"), d, f, device)?,
                down: linear(&g, &format!("{p}.ffn_down.weight"), f, d, device)?,
            });
        }
        let ln_final = norm("output_norm.weight")?;
        Ok(Self { cfg, embed, head, blocks, ln_final, tokenizer })
    }

    /// The model's hyper-parameters.
    pub fn config(&self) -> &LlamaConfig {
        &self.cfg
    }

    /// Folds every RMSNorm gain into the linear layers that read the norm's output (`ln1` into
    /// q/k/v, `ln2` into gate/up, `ln_final` into the output projection) and sets the gains to
    /// one. The logits do not change (up to rounding); `hook_normalized` then reads the
    /// normalised stream before any gain, as TransformerLens's `fold_ln` does.
    pub fn fold_norm_gains(&mut self) {
        let fold = |lin: &mut Linear, gain: &Tensor<1>| lin.w_t = lin.w_t.clone() * gain.clone().unsqueeze_dim::<2>(1);
        for blk in &mut self.blocks {
            for lin in [&mut blk.q, &mut blk.k, &mut blk.v] {
                fold(lin, &blk.ln1.gain);
            }
            for lin in [&mut blk.gate, &mut blk.up] {
                fold(lin, &blk.ln2.gain);
            }
            blk.ln1.gain = blk.ln1.gain.ones_like();
            blk.ln2.gain = blk.ln2.gain.ones_like();
        }
        let head = self.head.take().unwrap_or_else(|| self.embed.clone().transpose());
        self.head = Some(head * self.ln_final.gain.clone().unsqueeze_dim::<2>(1));
        self.ln_final.gain = self.ln_final.gain.ones_like();
    }

    /// `cos` and `sin` `[1, pos, 1, d_head]` for rotating interleaved pairs: entry `2j` and `2j+1`
    /// hold the angle `p · base^(−2j/d_head)` for positions `p = offset …`; `sin` carries the sign
    /// of the first member.
    fn rotary(&self, offset: usize, s: usize, device: &Device) -> (Tensor<4>, Tensor<4>) {
        let dh = self.cfg.d_head;
        let mut cos = Vec::with_capacity(s * dh);
        let mut sin = Vec::with_capacity(s * dh);
        for p in offset..offset + s {
            for j in 0..dh / 2 {
                let angle = p as f64 * self.cfg.rope_base.powf(-2.0 * j as f64 / dh as f64);
                let (sn, cs) = angle.sin_cos();
                cos.extend([cs as f32, cs as f32]);
                sin.extend([-sn as f32, sn as f32]);
            }
        }
        let t = |v: Vec<f32>| Tensor::<4>::from_data(TensorData::new(v, [1, s, 1, dh]), device);
        (t(cos), t(sin))
    }

    /// Rotates the pairs `(x[2j], x[2j+1])` of `[batch, pos, heads, d_head]`.
    fn rotate(x: Tensor<4>, cos: &Tensor<4>, sin: &Tensor<4>) -> Tensor<4> {
        let [b, s, h, dh] = x.dims();
        let swapped = x.clone().reshape([b, s, h, dh / 2, 2]).flip([4]).reshape([b, s, h, dh]);
        x * cos.clone() + swapped * sin.clone()
    }

    #[allow(clippy::too_many_arguments)]
    fn attention(&self, blk: &Block, x: Tensor<3>, hooks: &mut dyn Hooks, i: usize, rope: &(Tensor<4>, Tensor<4>), mask: &Tensor<4>, cache: Option<&mut KvCache>) -> Result<Tensor<3>> {
        let [b, s, d] = x.dims();
        let (h, kvh, dh) = (self.cfg.n_heads, self.cfg.n_kv_heads, self.cfg.d_head);
        let group = h / kvh;
        let q = hook4(hooks, &format!("blocks.{i}.attn.hook_q"), blk.q.forward(x.clone()).reshape([b, s, h, dh]))?;
        let k = hook4(hooks, &format!("blocks.{i}.attn.hook_k"), blk.k.forward(x.clone()).reshape([b, s, kvh, dh]))?;
        let v = hook4(hooks, &format!("blocks.{i}.attn.hook_v"), blk.v.forward(x).reshape([b, s, kvh, dh]))?;
        let q = hook4(hooks, &format!("blocks.{i}.attn.hook_rot_q"), Self::rotate(q, &rope.0, &rope.1))?;
        let k = hook4(hooks, &format!("blocks.{i}.attn.hook_rot_k"), Self::rotate(k, &rope.0, &rope.1))?;
        let (mut k, mut v) = (k.swap_dims(1, 2), v.swap_dims(1, 2));
        if let Some(cache) = cache {
            if let Some((pk, pv)) = cache.layers.get(i) {
                k = Tensor::cat(vec![pk.clone(), k], 2);
                v = Tensor::cat(vec![pv.clone(), v], 2);
            }
            if cache.layers.len() > i {
                cache.layers[i] = (k.clone(), v.clone());
            } else {
                cache.layers.push((k.clone(), v.clone()));
            }
        }
        let t = k.dims()[2];
        // Query heads g·group … g·group + group − 1 share key/value head g: fold the group into
        // the query axis so one batched matmul per key/value head serves them all.
        let q = q.swap_dims(1, 2).reshape([b, kvh, group * s, dh]);
        let scores = q.matmul(k.swap_dims(2, 3)).reshape([b, h, s, t]) / (dh as f64).sqrt() + mask.clone();
        let pattern = hook4(hooks, &format!("blocks.{i}.attn.hook_pattern"), softmax(scores, 3))?;
        let z = pattern.reshape([b, kvh, group * s, t]).matmul(v).reshape([b, h, s, dh]).swap_dims(1, 2);
        let z = hook4(hooks, &format!("blocks.{i}.attn.hook_z"), z)?;
        Ok(blk.o.forward(z.reshape([b, s, d])))
    }

    fn run(&self, ids: &[Vec<u32>], hooks: &mut dyn Hooks, blocks: usize, mut cache: Option<&mut KvCache>) -> Result<Tensor<3>> {
        let offset = cache.as_ref().map_or(0, |c| c.len);
        let (b, s) = batch_shape(ids, self.cfg.context.saturating_sub(offset), self.cfg.vocab_size)?;
        let d = self.cfg.d_model;
        let device = self.embed.device();
        let flat: Vec<i64> = ids.iter().flatten().map(|&t| t as i64).collect();
        let tok = Tensor::<1, Int>::from_data(TensorData::new(flat, [b * s]), &device);
        let mut x = hook3(hooks, "hook_embed", self.embed.clone().select(0, tok).reshape([b, s, d]))?;
        let rope = self.rotary(offset, s, &device);
        // Query i (position offset + i) sees keys 0 ..= offset + i.
        let t = offset + s;
        let mask: Vec<f32> = (0..s * t).map(|n| if n % t > offset + n / t { f32::NEG_INFINITY } else { 0.0 }).collect();
        let mask = Tensor::<4>::from_data(TensorData::new(mask, [1, 1, s, t]), &device);
        for (i, blk) in self.blocks.iter().enumerate().take(blocks) {
            let resid_pre = hook3(hooks, &format!("blocks.{i}.hook_resid_pre"), x)?;
            let normed = blk.ln1.forward(resid_pre.clone(), hooks, &format!("blocks.{i}.ln1"))?;
            let attn_out = self.attention(blk, normed, hooks, i, &rope, &mask, cache.as_deref_mut())?;
            let attn_out = hook3(hooks, &format!("blocks.{i}.hook_attn_out"), attn_out)?;
            let resid_mid = hook3(hooks, &format!("blocks.{i}.hook_resid_mid"), resid_pre + attn_out)?;
            let normed = blk.ln2.forward(resid_mid.clone(), hooks, &format!("blocks.{i}.ln2"))?;
            let pre = hook3(hooks, &format!("blocks.{i}.mlp.hook_pre"), blk.gate.forward(normed.clone()))?;
            let pre_linear = hook3(hooks, &format!("blocks.{i}.mlp.hook_pre_linear"), blk.up.forward(normed))?;
            let post = hook3(hooks, &format!("blocks.{i}.mlp.hook_post"), silu(pre) * pre_linear)?;
            let mlp_out = hook3(hooks, &format!("blocks.{i}.hook_mlp_out"), blk.down.forward(post))?;
            x = hook3(hooks, &format!("blocks.{i}.hook_resid_post"), resid_mid + mlp_out)?;
        }
        if let Some(c) = cache {
            c.len += s;
        }
        Ok(x)
    }
}

impl LanguageModel for SmolLm2 {
    fn d_model(&self) -> usize {
        self.cfg.d_model
    }
    fn n_layers(&self) -> usize {
        self.cfg.n_layers
    }
    fn max_positions(&self) -> usize {
        self.cfg.context
    }
    fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }
    fn is_causal(&self) -> bool {
        true
    }

    fn norms_mut(&mut self) -> Vec<(String, &mut Norm)> {
        let mut v = Vec::with_capacity(2 * self.blocks.len() + 1);
        for (i, blk) in self.blocks.iter_mut().enumerate() {
            v.push((format!("blocks.{i}.ln1"), &mut blk.ln1));
            v.push((format!("blocks.{i}.ln2"), &mut blk.ln2));
        }
        v.push(("ln_final".into(), &mut self.ln_final));
        v
    }

    fn eos_token(&self) -> Option<u32> {
        Some(self.cfg.eos)
    }

    /// The GGUF metadata says `add_bos_token = false`: an input is its text tokens only.
    fn frame_lengths(&self) -> (usize, usize) {
        (0, 0)
    }

    fn frame(&self, body: &[u32]) -> Vec<u32> {
        body.to_vec()
    }




    fn next_logits_cached(&self, new: &[u32], cache: &mut KvCache, hooks: &mut dyn Hooks) -> Option<Result<Tensor<1>>> {
        let mut step = || -> Result<Tensor<1>> {
            let x = self.run(&[new.to_vec()], hooks, self.blocks.len(), Some(cache))?;
            let [_, s, d] = x.dims();
            let x = self.ln_final.forward(x.slice([0..1, s - 1..s, 0..d]), hooks, "ln_final")?;
            let head = self.head.clone().unwrap_or_else(|| self.embed.clone().transpose());
            let vocab = head.dims()[1];
            Ok(x.reshape([1, d]).matmul(head).reshape([vocab]))
        };
        Some(step())
    }
}

impl SmolLm2 {
    /// Runs only the first `blocks` transformer blocks (hooks included) and returns the residual
    /// stream after them, `[batch, pos, d_model]`: what harvesting a hook of block `blocks − 1`
    /// needs, without the rest of the model.
    pub fn forward_blocks(&self, ids: &[Vec<u32>], hooks: &mut dyn Hooks, blocks: usize) -> Result<Tensor<3>> {
        self.run(ids, hooks, blocks.min(self.blocks.len()), None)
    }

    /// Logits `[batch, pos, vocab]`.
    fn forward_lm(&self, ids: &[Vec<u32>], hooks: &mut dyn Hooks) -> Result<Tensor<3>> {
        let x = self.run(ids, hooks, self.blocks.len(), None)?;
        let x = self.ln_final.forward(x, hooks, "ln_final")?;
        let [b, s, d] = x.dims();
        let head = self.head.clone().unwrap_or_else(|| self.embed.clone().transpose());
        let vocab = head.dims()[1];
        Ok(x.reshape([b * s, d]).matmul(head).reshape([b, s, vocab]))
    }
}

impl HookedModel for SmolLm2 {
    type Input = [Vec<u32>];
    type Output = Tensor<3>;

    fn name(&self) -> &str {
        "smollm2"
    }

    fn hook_width(&self, hook: &str) -> Option<usize> {
        let c = &self.cfg;
        if hook.ends_with("hook_pattern") {
            None
        } else if hook.ends_with("hook_scale") {
            Some(1)
        } else if hook.ends_with("attn.hook_k") || hook.ends_with("attn.hook_v") || hook.ends_with("attn.hook_rot_k") {
            Some(c.n_kv_heads * c.d_head)
        } else if hook.contains(".mlp.hook_") {
            Some(c.d_mlp)
        } else {
            Some(c.d_model)
        }
    }

    fn hook_names(&self) -> Vec<String> {
        let mut v = vec!["hook_embed".to_string()];
        for i in 0..self.cfg.n_layers {
            for p in [
                "hook_resid_pre",
                "ln1.hook_scale",
                "ln1.hook_normalized",
                "attn.hook_q",
                "attn.hook_k",
                "attn.hook_v",
                "attn.hook_rot_q",
                "attn.hook_rot_k",
                "attn.hook_pattern",
                "attn.hook_z",
                "hook_attn_out",
                "hook_resid_mid",
                "ln2.hook_scale",
                "ln2.hook_normalized",
                "mlp.hook_pre",
                "mlp.hook_pre_linear",
                "mlp.hook_post",
                "hook_mlp_out",
                "hook_resid_post",
            ] {
                v.push(format!("blocks.{i}.{p}"));
            }
        }
        v.extend(["ln_final.hook_scale".to_string(), "ln_final.hook_normalized".to_string()]);
        v
    }

    crate::model::text_forward_methods!();
}
