//! all-MiniLM-L6-v2: a 6-layer BERT encoder (post-LN, erf-GELU), read from the sentence-
//! transformers safetensors file of the `minilm` asset.
//!
//! Hook points (TransformerLens's BERT naming): `hook_embed` (word + position + token-type
//! embeddings), `embed.ln.hook_scale`, `embed.ln.hook_normalized`, and per block `i`:
//! `blocks.{i}.hook_resid_pre`, `attn.hook_q`/`hook_k`/`hook_v`/`hook_z` `[batch, pos, head,
//! d_head]`, `attn.hook_pattern` `[batch, head, query, key]`, `hook_attn_out`, `hook_resid_mid`
//! (`resid_pre + attn_out`, before the post-attention LayerNorm), `ln1.hook_scale`,
//! `ln1.hook_normalized`, `mlp.hook_pre`, `mlp.hook_post`, `hook_mlp_out`, `hook_resid_post`
//! (`ln1 output + mlp_out`, before the output LayerNorm), `ln2.hook_scale`, `ln2.hook_normalized`
//! (the block's output, the next block's `hook_resid_pre`).

use std::path::Path;

use burn::tensor::activation::{gelu, softmax};
use burn::tensor::{Device, Int, Tensor, TensorData};
use sae_core::hooks::{Hooks, NoHooks};
use sae_core::HookedModel;
use sae_assets::AssetCache;
use serde::Deserialize;

use crate::error::{LmError, Result};
use crate::layers::{Linear, Norm, NormScale, hook3, hook4};
use crate::model::{LanguageModel, batch_shape};
use crate::tokenizer::TextTokenizer;
use crate::weights::Weights;

/// The fields of the BERT `config.json` this implementation reads (others are ignored: the
/// file is the model's own, not ours).
#[derive(Debug, Clone, Deserialize)]
pub struct BertConfig {
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Residual width.
    pub hidden_size: usize,
    /// Blocks.
    pub num_hidden_layers: usize,
    /// Attention heads.
    pub num_attention_heads: usize,
    /// FFN width.
    pub intermediate_size: usize,
    /// Longest input.
    pub max_position_embeddings: usize,
    /// Token-type vocabulary.
    pub type_vocab_size: usize,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// FFN activation (only `gelu`, the erf form, is supported).
    pub hidden_act: String,
}

#[derive(Debug, Clone)]
struct Block {
    q: Linear,
    k: Linear,
    v: Linear,
    o: Linear,
    ln1: Norm,
    up: Linear,
    down: Linear,
    ln2: Norm,
}

/// all-MiniLM-L6-v2 on a burn device.
#[derive(Debug, Clone)]
pub struct MiniLm {
    cfg: BertConfig,
    word: Tensor<2>,
    position: Tensor<2>,
    token_type: Tensor<1>,
    embed_ln: Norm,
    blocks: Vec<Block>,
    tokenizer: TextTokenizer,
    cls: u32,
    sep: u32,
}

impl MiniLm {
    /// Loads the model from the asset cache ([`AssetCache::locate`]: a missing asset is an
    /// error naming the command that fetches it).
    pub fn from_cache(cache: &AssetCache, device: &Device) -> Result<Self> {
        Self::load(&cache.locate(&crate::assets::MINILM)?, device)
    }

    /// Loads `config.json`, `model.safetensors` and `tokenizer.json` from `dir`.
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        let file = |name: &str| {
            let p = dir.join(name);
            if p.is_file() { Ok(p) } else { Err(LmError::MissingFile { path: p, asset: "minilm" }) }
        };
        let cfg_path = file("config.json")?;
        let cfg: BertConfig = serde_json::from_slice(&std::fs::read(&cfg_path).map_err(|e| LmError::BadFile { path: cfg_path.clone(), reason: e.to_string() })?)
            .map_err(|e| LmError::BadFile { path: cfg_path.clone(), reason: e.to_string() })?;
        if cfg.hidden_act != "gelu" || !cfg.hidden_size.is_multiple_of(cfg.num_attention_heads) {
            return Err(LmError::BadFile { path: cfg_path, reason: format!("unsupported: hidden_act {}, {} heads of {}", cfg.hidden_act, cfg.num_attention_heads, cfg.hidden_size) });
        }
        let tok_path = file("tokenizer.json")?;
        let tokenizer = TextTokenizer::from_file(&tok_path)?;
        let special = |t: &str| tokenizer.id(t).ok_or_else(|| LmError::BadFile { path: tok_path.clone(), reason: format!("no `{t}` token") });
        let (cls, sep) = (special("[CLS]")?, special("[SEP]")?);
        let mut w = Weights::safetensors(&file("model.safetensors")?, "minilm (BERT)")?;
        let (d, f) = (cfg.hidden_size, cfg.intermediate_size);
        let norm = |w: &mut Weights, p: &str| -> Result<Norm> {
            Ok(Norm {
                gain: w.vector(&format!("{p}.weight"), d, device)?,
                bias: Some(w.vector(&format!("{p}.bias"), d, device)?),
                eps: cfg.layer_norm_eps,
                centre: true,
                scale: NormScale::Computed,
            })
        };
        let word = w.matrix("embeddings.word_embeddings.weight", cfg.vocab_size, d, device)?;
        let position = w.matrix("embeddings.position_embeddings.weight", cfg.max_position_embeddings, d, device)?;
        let token_type = w.matrix("embeddings.token_type_embeddings.weight", cfg.type_vocab_size, d, device)?.slice([0..1, 0..d]).reshape([d]);
        let embed_ln = norm(&mut w, "embeddings.LayerNorm")?;
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let p = format!("encoder.layer.{i}");
            blocks.push(Block {
                q: Linear::load(&mut w, &format!("{p}.attention.self.query"), d, d, true, device)?,
                k: Linear::load(&mut w, &format!("{p}.attention.self.key"), d, d, true, device)?,
                v: Linear::load(&mut w, &format!("{p}.attention.self.value"), d, d, true, device)?,
                o: Linear::load(&mut w, &format!("{p}.attention.output.dense"), d, d, true, device)?,
                ln1: norm(&mut w, &format!("{p}.attention.output.LayerNorm"))?,
                up: Linear::load(&mut w, &format!("{p}.intermediate.dense"), d, f, true, device)?,
                down: Linear::load(&mut w, &format!("{p}.output.dense"), f, d, true, device)?,
                ln2: norm(&mut w, &format!("{p}.output.LayerNorm"))?,
            });
        }
        Ok(Self { cfg, word, position, token_type, embed_ln, blocks, tokenizer, cls, sep })
    }

    /// The model's configuration.
    pub fn config(&self) -> &BertConfig {
        &self.cfg
    }

    /// The sentence embedding of sentence-transformers: the mean of the final hidden states over
    /// the tokens (special tokens included), L2-normalised. `[d_model]`.
    pub fn embed_sentence(&self, text: &str) -> Result<Vec<f32>> {
        let ids = self.tokenize(text)?;
        let hidden = self.forward_lm(&[ids], &mut NoHooks)?;
        let mean = hidden.mean_dim(1).reshape([self.cfg.hidden_size]);
        let norm = mean.clone().powi_scalar(2).sum().sqrt().clamp_min(1e-12);
        let v = (mean / norm).into_data();
        v.try_to_vec::<f32>().map_err(|e| LmError::Input(format!("reading the embedding: {e:?}")))
    }

    fn attention(&self, blk: &Block, x: Tensor<3>, hooks: &mut dyn Hooks, i: usize) -> Result<Tensor<3>> {
        let [b, s, d] = x.dims();
        let h = self.cfg.num_attention_heads;
        let dh = d / h;
        let heads = |t: Tensor<3>| t.reshape([b, s, h, dh]);
        let q = hook4(hooks, &format!("blocks.{i}.attn.hook_q"), heads(blk.q.forward(x.clone())))?;
        let k = hook4(hooks, &format!("blocks.{i}.attn.hook_k"), heads(blk.k.forward(x.clone())))?;
        let v = hook4(hooks, &format!("blocks.{i}.attn.hook_v"), heads(blk.v.forward(x)))?;
        let scores = q.swap_dims(1, 2).matmul(k.swap_dims(1, 2).swap_dims(2, 3)) / (dh as f64).sqrt();
        let pattern = hook4(hooks, &format!("blocks.{i}.attn.hook_pattern"), softmax(scores, 3))?;
        let z = pattern.matmul(v.swap_dims(1, 2)).swap_dims(1, 2);
        let z = hook4(hooks, &format!("blocks.{i}.attn.hook_z"), z)?;
        Ok(blk.o.forward(z.reshape([b, s, d])))
    }
}

impl LanguageModel for MiniLm {
    fn d_model(&self) -> usize {
        self.cfg.hidden_size
    }
    fn n_layers(&self) -> usize {
        self.cfg.num_hidden_layers
    }
    fn max_positions(&self) -> usize {
        self.cfg.max_position_embeddings
    }
    fn tokenizer(&self) -> &TextTokenizer {
        &self.tokenizer
    }

    fn frame_lengths(&self) -> (usize, usize) {
        (1, 1)
    }

    fn norms_mut(&mut self) -> Vec<(String, &mut Norm)> {
        let mut v = Vec::with_capacity(2 * self.blocks.len() + 1);
        v.push(("embed.ln".to_string(), &mut self.embed_ln));
        for (i, blk) in self.blocks.iter_mut().enumerate() {
            v.push((format!("blocks.{i}.ln1"), &mut blk.ln1));
            v.push((format!("blocks.{i}.ln2"), &mut blk.ln2));
        }
        v
    }

    fn frame(&self, body: &[u32]) -> Vec<u32> {
        let mut ids = Vec::with_capacity(body.len() + 2);
        ids.push(self.cls);
        ids.extend_from_slice(body);
        ids.push(self.sep);
        ids
    }



}

impl MiniLm {
    /// Runs only the first `blocks` transformer blocks (hooks included) and returns the residual
    /// stream after them, `[batch, pos, d_model]`: what harvesting a hook of block `blocks − 1`
    /// needs, without the rest of the model.
    pub fn forward_blocks(&self, ids: &[Vec<u32>], hooks: &mut dyn Hooks, blocks: usize) -> Result<Tensor<3>> {
        let (b, s) = batch_shape(ids, self.cfg.max_position_embeddings, self.cfg.vocab_size)?;
        let d = self.cfg.hidden_size;
        let device = self.word.device();
        let flat: Vec<i64> = ids.iter().flatten().map(|&t| t as i64).collect();
        let tok = Tensor::<1, Int>::from_data(TensorData::new(flat, [b * s]), &device);
        let pos = self.position.clone().slice([0..s, 0..d]).unsqueeze_dim::<3>(0);
        let embed = self.word.clone().select(0, tok).reshape([b, s, d]) + pos + self.token_type.clone().unsqueeze_dims::<3>(&[0, 1]);
        let embed = hook3(hooks, "hook_embed", embed)?;
        let mut x = self.embed_ln.forward(embed, hooks, "embed.ln")?;
        for (i, blk) in self.blocks.iter().enumerate().take(blocks) {
            let resid_pre = hook3(hooks, &format!("blocks.{i}.hook_resid_pre"), x)?;
            let attn_out = self.attention(blk, resid_pre.clone(), hooks, i)?;
            let attn_out = hook3(hooks, &format!("blocks.{i}.hook_attn_out"), attn_out)?;
            let resid_mid = hook3(hooks, &format!("blocks.{i}.hook_resid_mid"), resid_pre + attn_out)?;
            let normed = blk.ln1.forward(resid_mid, hooks, &format!("blocks.{i}.ln1"))?;
            let pre = hook3(hooks, &format!("blocks.{i}.mlp.hook_pre"), blk.up.forward(normed.clone()))?;
            let post = hook3(hooks, &format!("blocks.{i}.mlp.hook_post"), gelu(pre))?;
            let mlp_out = hook3(hooks, &format!("blocks.{i}.hook_mlp_out"), blk.down.forward(post))?;
            let resid_post = hook3(hooks, &format!("blocks.{i}.hook_resid_post"), normed + mlp_out)?;
            x = blk.ln2.forward(resid_post, hooks, &format!("blocks.{i}.ln2"))?;
        }
        Ok(x)
    }

    /// Final hidden states `[batch, pos, d_model]`.
    fn forward_lm(&self, ids: &[Vec<u32>], hooks: &mut dyn Hooks) -> Result<Tensor<3>> {
        self.forward_blocks(ids, hooks, self.blocks.len())
    }
}

impl HookedModel for MiniLm {
    type Input = [Vec<u32>];
    type Output = Tensor<3>;

    fn name(&self) -> &str {
        "minilm"
    }

    fn hook_width(&self, hook: &str) -> Option<usize> {
        if hook.ends_with("hook_pattern") {
            None
        } else if hook.ends_with("hook_scale") {
            Some(1)
        } else if hook.ends_with("mlp.hook_pre") || hook.ends_with("mlp.hook_post") {
            Some(self.cfg.intermediate_size)
        } else {
            Some(self.cfg.hidden_size)
        }
    }

    fn hook_names(&self) -> Vec<String> {
        let mut v: Vec<String> = ["hook_embed", "embed.ln.hook_scale", "embed.ln.hook_normalized"].map(String::from).to_vec();
        for i in 0..self.cfg.num_hidden_layers {
            for p in [
                "hook_resid_pre",
                "attn.hook_q",
                "attn.hook_k",
                "attn.hook_v",
                "attn.hook_pattern",
                "attn.hook_z",
                "hook_attn_out",
                "hook_resid_mid",
                "ln1.hook_scale",
                "ln1.hook_normalized",
                "mlp.hook_pre",
                "mlp.hook_post",
                "hook_mlp_out",
                "hook_resid_post",
                "ln2.hook_scale",
                "ln2.hook_normalized",
            ] {
                v.push(format!("blocks.{i}.{p}"));
            }
        }
        v
    }

    crate::model::text_forward_methods!();
}
