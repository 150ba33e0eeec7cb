//! Interventions at a hook point with an SAE: splice in its reconstruction (with or without the
//! reconstruction error), ablate or scale features, add steering vectors (a feature's decoder
//! direction × a scale), or zero-ablate the activation. An [`Intervention`] is a
//! [`Hooks`] implementation, so it works with the forward pass of any
//! [`HookedModel`](sae_core::HookedModel) (and with a language model's generation loop).

use burn::tensor::{Tensor, TensorData};
use sae_core::hooks::{HookTensor, Hooks};
use sae_core::{Sae, SaeError, SparseCodes};

/// What replaces the activation at the hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Splice {
    /// Keep the activation (steering vectors are still added).
    Off,
    /// The SAE's reconstruction of the (edited) codes: `x̂`.
    Reconstruction,
    /// The reconstruction plus the SAE's error on this input: `x̂_edited + (x − x̂)`, so only
    /// the feature edits change the activation.
    WithError,
    /// Zeros (the zero-ablation baseline of the downstream-loss metric).
    Zero,
}

/// A change to one feature's activation before decoding.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum FeatureEdit {
    /// Set feature `.0` to zero.
    Ablate(usize),
    /// Multiply feature `.0` by `.1`.
    Scale(usize, f32),
}

/// An intervention at one hook point. Activations are flattened to `[batch · pos, d]` rows for
/// the SAE, so the hook must be 3-d with width `d_in` of the SAE (residual stream, MLP or
/// attention output).
#[derive(Debug)]
pub struct Intervention<'a> {
    hook: String,
    sae: Option<&'a dyn Sae>,
    splice: Splice,
    edits: Vec<FeatureEdit>,
    steering: Vec<(usize, f32)>,
    /// How many times the hook fired.
    pub calls: usize,
}

impl<'a> Intervention<'a> {
    /// An intervention at `hook` that does nothing until configured.
    pub fn at(hook: impl Into<String>) -> Self {
        Self { hook: hook.into(), sae: None, splice: Splice::Off, edits: Vec::new(), steering: Vec::new(), calls: 0 }
    }

    /// Uses `sae` for splicing, edits and steering directions.
    pub fn with_sae(mut self, sae: &'a dyn Sae) -> Self {
        self.sae = Some(sae);
        self
    }

    /// Sets what replaces the activation.
    pub fn splice(mut self, splice: Splice) -> Self {
        self.splice = splice;
        self
    }

    /// Adds a feature edit (applied when the activation is spliced; with [`Splice::Off`], edits
    /// imply [`Splice::WithError`]).
    pub fn edit(mut self, edit: FeatureEdit) -> Self {
        self.edits.push(edit);
        self
    }

    /// Adds `scale ×` the decoder direction of `feature` to every position.
    pub fn steer(mut self, feature: usize, scale: f32) -> Self {
        self.steering.push((feature, scale));
        self
    }

    fn need_sae(&self) -> sae_core::Result<&'a dyn Sae> {
        self.sae.ok_or_else(|| SaeError::Config { path: "<intervention>".into(), field: "sae".into(), reason: "feature edits, splicing and steering need an SAE".into() })
    }

    fn check_feature(sae: &dyn Sae, f: usize) -> sae_core::Result<()> {
        let d_sae = sae.config().d_sae;
        if f >= d_sae {
            return Err(SaeError::Config { path: "<intervention>".into(), field: "feature".into(), reason: format!("feature {f} is outside the SAE's {d_sae} latents") });
        }
        Ok(())
    }

    /// The decoder direction of `feature` in activation space, `decode(s·e_f) − decode(0)`
    /// (input normalisation and decoder bias accounted for), as `[d]`.
    pub fn direction(sae: &dyn Sae, feature: usize, scale: f32) -> sae_core::Result<Tensor<1>> {
        Self::check_feature(sae, feature)?;
        let d_sae = sae.config().d_sae;
        let device = sae.device();
        let mut codes = vec![0f32; 2 * d_sae];
        codes[d_sae + feature] = scale;
        let out = sae.decode(&SparseCodes::dense(Tensor::from_data(TensorData::new(codes, [2, d_sae]), &device)))?;
        let d = out.dims()[1];
        Ok((out.clone().slice([1..2, 0..d]) - out.slice([0..1, 0..d])).reshape([d]))
    }

    fn apply(&self, x: Tensor<2>) -> sae_core::Result<Tensor<2>> {
        let splice = if self.splice == Splice::Off && !self.edits.is_empty() { Splice::WithError } else { self.splice };
        let mut y = match splice {
            Splice::Off => x,
            Splice::Zero => x.zeros_like(),
            Splice::Reconstruction | Splice::WithError => {
                let sae = self.need_sae()?;
                sae_core::sae::check_width(&x, sae.config().d_in, "activation at the hook")?;
                let fwd = sae.forward(x.clone())?;
                let edited = if self.edits.is_empty() {
                    fwd.output.clone()
                } else {
                    let d_sae = sae.config().d_sae;
                    let mut mask = vec![1f32; d_sae];
                    for e in &self.edits {
                        let (f, m) = match *e {
                            FeatureEdit::Ablate(f) => (f, 0.0),
                            FeatureEdit::Scale(f, s) => (f, s),
                        };
                        Self::check_feature(sae, f)?;
                        mask[f] *= m;
                    }
                    let mask = Tensor::<1>::from_data(TensorData::new(mask, [d_sae]), &x.device()).unsqueeze_dim::<2>(0);
                    let codes = SparseCodes::dense(fwd.codes.to_dense() * mask);
                    let mut out = sae.decode(&codes)?;
                    if let Some(sae_core::params::ParamTensor::Matrix(w_skip)) = sae.params().get("W_skip") {
                        out = out + x.clone().matmul(w_skip.clone().transpose());
                    }
                    out
                };
                match splice {
                    Splice::WithError => edited + (x - fwd.output),
                    _ => edited,
                }
            }
        };
        for &(f, s) in &self.steering {
            let dir = Self::direction(self.need_sae()?, f, s)?;
            let width = y.dims()[1];
            if dir.dims()[0] != width {
                return Err(SaeError::ShapeMismatch {
                    path: "<intervention>".into(),
                    name: format!("steering direction of feature {f} (the SAE's output) for the activation at {}", self.hook),
                    actual: vec![dir.dims()[0]],
                    expected: vec![width],
                });
            }
            y = y + dir.unsqueeze_dim::<2>(0);
        }
        Ok(y)
    }
}

impl Hooks for Intervention<'_> {
    fn wants(&self, name: &str) -> bool {
        name == self.hook
    }

    fn at(&mut self, name: &str, x: HookTensor) -> sae_core::Result<HookTensor> {
        self.calls += 1;
        match x {
            HookTensor::D3(t) => {
                let [b, s, d] = t.dims();
                let y = self.apply(t.reshape([b * s, d]))?;
                let d_out = y.dims()[1];
                Ok(HookTensor::D3(y.reshape([b, s, d_out])))
            }
            HookTensor::D4(t) => Err(SaeError::ShapeMismatch { path: "<intervention>".into(), name: name.into(), actual: t.dims().to_vec(), expected: vec![0, 0, 0] }),
        }
    }
}
