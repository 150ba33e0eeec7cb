//! Matryoshka BatchTopK SAE (Bussmann et al. 2025; Nabeshima 2024; SAELens
//! `matryoshka_batchtopk`): a BatchTopK SAE whose latents are ordered into nested prefixes
//! `w₁ < w₂ < … < d_sae`; each prefix must reconstruct the input on its own:
//! `L = Σ_levels ‖x − (b_dec + f[:, :wᵢ] W_dec[:wᵢ])‖²` (the outermost level is the usual MSE).
//! The AuxK term is the usual one, or, with `use_matryoshka_aux_loss`, one per level where dead
//! latents of that level reconstruct that level's residual. Saved as JumpReLU like BatchTopK.

use std::path::Path;

use sae_kernels as kernels;
use burn::tensor::{Device, Tensor};
use serde::Deserialize;
use crate::affine::{self};
use sae_core::config::ensure;
use sae_core::{
    KernelPolicy, CodeValues, Schema, TypedArchitecture, LossTerm, ParamSet, Result, Sae, SaeConfig, SaeError, SparseCodes, TrainBatch, TrainContext, TrainOutput, loss_terms, sae_state_accessors,
};

use crate::batch_topk::{BatchTopK, BatchTopKHyper};

/// Matryoshka-specific hyperparameters (the rest are BatchTopK's).
#[derive(Debug, Clone, Deserialize)]
pub struct MatryoshkaHyper {
    /// Strictly increasing prefix widths; `d_sae` is appended when missing.
    #[serde(default)]
    pub matryoshka_widths: Vec<usize>,
    /// One AuxK term per level.
    #[serde(default)]
    pub use_matryoshka_aux_loss: bool,
}

/// Every hyperparameter of a Matryoshka SAE: BatchTopK's and the levels'.
#[derive(Debug, Clone, Deserialize)]
pub struct MatryoshkaAllHyper {
    /// The BatchTopK selection, losses and initialisation.
    #[serde(flatten)]
    pub batch: BatchTopKHyper,
    /// The nested levels.
    #[serde(flatten)]
    pub levels: MatryoshkaHyper,
}

/// A Matryoshka BatchTopK SAE in its training form.
#[derive(Debug, Clone)]
pub struct Matryoshka {
    inner: BatchTopK,
    widths: Vec<usize>,
    level_aux: bool,
    cfg: SaeConfig,
    params: ParamSet,
    policy: KernelPolicy,
}

impl Matryoshka {
    /// Builds from a config, its parsed hyperparameters and parameters.
    pub fn new(cfg: SaeConfig, hyper: MatryoshkaAllHyper, params: ParamSet) -> Self {
        let widths = full_widths(&hyper.levels.matryoshka_widths, cfg.d_sae);
        let inner = BatchTopK::new(cfg.clone(), hyper.batch, params.clone());
        Self { inner, widths, level_aux: hyper.levels.use_matryoshka_aux_loss, cfg, params, policy: KernelPolicy::default() }
    }

    /// The prefix widths, ending with `d_sae`.
    pub fn widths(&self) -> &[usize] {
        &self.widths
    }

    fn synced(&self) -> BatchTopK {
        let mut inner = self.inner.clone();
        inner.params = self.params.clone();
        inner.policy = self.policy;
        inner
    }

    /// Reconstructions of every prefix (ending with the full one), each undoing normalisation.
    /// Top-k codes decode level by level with the sparse decode: each level's slots keep the
    /// latents of its own segment `prev..w` (the others become empty slots).
    fn prefix_decodes(&self, inner: &BatchTopK, codes: &SparseCodes) -> Result<Vec<Tensor<2>>> {
        let n = codes.n_rows();
        let w_dec = inner.decoder()?;
        let d_out = w_dec.dims()[1];
        let mut decoded: Tensor<2> = self.params.vector("b_dec")?.unsqueeze_dim::<2>(0).expand([n, d_out]);
        let mut prev = 0;
        let mut outs = Vec::with_capacity(self.widths.len());
        for &w in &self.widths {
            let part = match &codes.values {
                CodeValues::TopK { values, indices } => {
                    let outside = indices.clone().lower_elem(prev as i64).bool_or(indices.clone().greater_equal_elem(w as i64));
                    kernels::sparse_decode(self.policy, values.clone(), indices.clone().mask_fill(outside, -1), w_dec.clone())?
                }
                CodeValues::Dense(acts) => acts.clone().slice([0..n, prev..w]).matmul(w_dec.clone().slice([prev..w, 0..d_out])),
            };
            decoded = decoded + part;
            outs.push(affine::finish_output(decoded.clone(), &codes.row_norm));
            prev = w;
        }
        Ok(outs)
    }
}

fn full_widths(widths: &[usize], d_sae: usize) -> Vec<usize> {
    let mut w = widths.to_vec();
    if w.last() != Some(&d_sae) {
        w.push(d_sae);
    }
    w
}

impl Sae for Matryoshka {
    sae_state_accessors!(policy);

    fn encode(&self, x: Tensor<2>) -> Result<SparseCodes> {
        self.synced().encode(x)
    }

    fn decode(&self, codes: &SparseCodes) -> Result<Tensor<2>> {
        self.synced().decode(codes)
    }

    fn train_forward(&self, batch: &TrainBatch, ctx: &TrainContext) -> Result<TrainOutput> {
        let inner = self.synced();
        sae_core::sae::check_width(&batch.x, self.cfg.d_in, "input")?;
        let aux = if self.level_aux { None } else { inner.aux_select(ctx) };
        let (codes, aux_sel) = inner.encode_selected(batch.x.clone(), Some(ctx), aux)?;
        let prefixes = self.prefix_decodes(&inner, &codes)?;
        let output = prefixes.last().cloned().unwrap_or_else(|| batch.x.zeros_like());
        let target = batch.target(&self.cfg)?;
        let mut terms = if self.level_aux {
            let mut t = vec![LossTerm::new(loss_terms::MSE, affine::mse_loss(output.clone(), target.clone()))];
            if let Some(mask) = &ctx.dead_mask {
                // Per-level AuxK selects within each level's dead latents: it runs on the dense
                // pre-activations (a second GEMM, with a dense gradient).
                let (pre, _) = inner.hidden_pre(batch.x.clone())?;
                t.push(LossTerm::new(loss_terms::AUX, self.level_auxk(&inner, &pre, mask, &prefixes, &target)?));
            }
            t
        } else {
            inner.base_terms(aux_sel, &output, batch, ctx)?
        };
        for (w, recon) in self.widths.iter().zip(&prefixes).take(self.widths.len() - 1) {
            terms.push(LossTerm::new(loss_terms::inner_mse(*w), affine::mse_loss(recon.clone(), target.clone())));
        }
        Ok(TrainOutput::from_terms(terms, codes, output))
    }

    fn after_step(&mut self, out: &TrainOutput) -> Result<()> {
        let mut inner = self.synced();
        inner.update_threshold(out)?;
        self.params = inner.params.clone();
        self.inner = inner;
        Ok(())
    }

    fn inference_export(&self) -> Result<(SaeConfig, ParamSet)> {
        self.synced().export_jumprelu()
    }
}

impl Matryoshka {
    fn level_auxk(
        &self,
        inner: &BatchTopK,
        pre: &Tensor<2>,
        mask: &burn::tensor::Tensor<1, burn::tensor::Bool>,
        prefixes: &[Tensor<2>],
        target: &Tensor<2>,
    ) -> Result<Tensor<1>> {
        let device = pre.device();
        let [n, _] = pre.dims();
        let w_dec = inner.decoder()?;
        let d_out = w_dec.dims()[1];
        let dead = sae_core::params::host_i64(mask.clone().int().into_data())?;
        let k_aux_full = (target.dims()[1] / 2).max(1);
        let mut total = Tensor::<1>::zeros([1], &device);
        let mut prev = 0;
        for (&w, partial_out) in self.widths.iter().zip(prefixes) {
            let n_dead = dead[prev..w].iter().filter(|d| **d != 0).count();
            if n_dead > 0 {
                let level_mask = mask.clone().slice([prev..w]);
                let scale = (n_dead as f32 / k_aux_full as f32).min(1.0);
                let k_aux = k_aux_full.min(n_dead);
                let residual = (target.clone() - partial_out.clone()).detach();
                let level_pre = pre.clone().slice([0..n, prev..w]).mask_fill(level_mask.bool_not().unsqueeze_dim(0), f32::NEG_INFINITY);
                let (vals, idx) = level_pre.topk_with_indices(k_aux, 1);
                let recon = kernels::sparse_decode(self.policy, vals, idx, w_dec.clone().slice([prev..w, 0..d_out]))?;
                total = total + (recon - residual).powi_scalar(2).sum_dim(1).mean().mul_scalar(scale);
            }
            prev = w;
        }
        Ok(total.mul_scalar(inner.hyper.aux_loss_coefficient))
    }
}

/// The `matryoshka_batchtopk` architecture (alias `matryoshka`).
#[derive(Debug, Clone, Copy, Default)]
pub struct MatryoshkaArch;

impl TypedArchitecture for MatryoshkaArch {
    type Hyper = MatryoshkaAllHyper;
    fn name(&self) -> &'static str {
        "matryoshka_batchtopk"
    }
    fn aliases(&self) -> &'static [&'static str] {
        &["matryoshka"]
    }
    fn describe(&self) -> &'static str {
        "Matryoshka BatchTopK: nested latent prefixes that each reconstruct the input; saved as JumpReLU"
    }
    fn hyper(&self, cfg: &SaeConfig, origin: &Path) -> Result<MatryoshkaAllHyper> {
        Ok(MatryoshkaAllHyper { batch: BatchTopK::parse(cfg, origin)?, levels: cfg.hyper(origin)? })
    }
    fn check(&self, cfg: &SaeConfig, hyper: &MatryoshkaAllHyper, origin: &Path) -> Result<Schema> {
        let h = &hyper.levels;
        let widths = full_widths(&h.matryoshka_widths, cfg.d_sae);
        ensure(widths.iter().all(|w| *w > 0), origin, "matryoshka_widths", || "widths must be positive".into())?;
        ensure(widths.windows(2).all(|p| p[0] < p[1]), origin, "matryoshka_widths", || {
            format!("must be strictly increasing and ≤ d_sae ({}), got {:?}", cfg.d_sae, h.matryoshka_widths)
        })?;
        if widths.len() < 2 {
            return Err(SaeError::config(origin, "matryoshka_widths", "needs at least one width below d_sae (otherwise use batchtopk)"));
        }
        BatchTopK::check(cfg, &hyper.batch, origin)
    }
    fn build_with(&self, cfg: SaeConfig, hyper: MatryoshkaAllHyper, params: ParamSet) -> Result<Box<dyn Sae>> {
        Ok(Box::new(Matryoshka::new(cfg, hyper, params)))
    }
    fn init_params(&self, cfg: &SaeConfig, hyper: &MatryoshkaAllHyper, device: &Device, seed: u64) -> Result<ParamSet> {
        BatchTopK::init_params(cfg, &hyper.batch, device, seed)
    }
    fn hyper_keys(&self) -> Option<Vec<&'static str>> {
        let mut keys = sae_core::config::field_names::<BatchTopKHyper>()?.to_vec();
        keys.extend_from_slice(sae_core::config::field_names::<MatryoshkaHyper>()?);
        Some(keys)
    }
    fn notes_with(&self, _cfg: &SaeConfig, _hyper: &MatryoshkaAllHyper) -> Vec<String> {
        vec!["training form: encoding depends on the batch (convert to saelens to get the JumpReLU inference form)".into()]
    }
}
