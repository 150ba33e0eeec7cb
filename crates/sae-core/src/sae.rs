//! The SAE contract: what every architecture implements.

use burn::tensor::{Bool, Device, Tensor};

use crate::codes::SparseCodes;
use crate::config::SaeConfig;
use crate::error::{Result, SaeError};
use crate::params::ParamSet;
use crate::policy::KernelPolicy;

/// Output of [`Sae::forward`].
#[derive(Debug, Clone)]
pub struct Forward {
    /// The sparse codes.
    pub codes: SparseCodes,
    /// The reconstruction (or, for transcoders, the prediction) `[n, d_out]`.
    pub output: Tensor<2>,
}

/// A batch for one training step.
#[derive(Debug, Clone)]
pub struct TrainBatch {
    /// Input activations `[n, d_in]`.
    pub x: Tensor<2>,
    /// Target `[n, d_out]` for transcoders; `None` means the target is `x`.
    pub y: Option<Tensor<2>>,
}

impl TrainBatch {
    /// A batch whose target is its input.
    pub fn autoencode(x: Tensor<2>) -> Self {
        Self { x, y: None }
    }

    /// The reconstruction target, checked against the config: `[n, d_out]` with the same `n` as
    /// the input. An autoencoding batch (no `y`) of a transcoder whose `d_out ≠ d_in` is an error.
    pub fn target(&self, cfg: &SaeConfig) -> Result<Tensor<2>> {
        let [n, _] = self.x.dims();
        let y = self.y.clone().unwrap_or_else(|| self.x.clone());
        let [rows, cols] = y.dims();
        if rows != n || cols != cfg.d_out() {
            return Err(SaeError::ShapeMismatch {
                path: "<batch>".into(),
                name: if self.y.is_some() { "target".into() } else { "target (the input, as no target was given)".into() },
                actual: vec![rows, cols],
                expected: vec![n, cfg.d_out()],
            });
        }
        Ok(y)
    }
}

/// Training-time context supplied by the trainer for one step.
#[derive(Debug, Clone, Default)]
pub struct TrainContext {
    /// Latents that have not fired for the configured window, `[d_sae]` (for AuxK, pre-act loss).
    pub dead_mask: Option<Tensor<1, Bool>>,
    /// Number of dead latents (so architectures need not read the mask back from the device).
    pub n_dead: usize,
    /// Multiplier in `[0, 1]` on sparsity coefficients (the coefficient warm-up).
    pub sparsity_scale: f32,
}

impl TrainContext {
    /// A context with no dead latents and full sparsity coefficients.
    pub fn plain() -> Self {
        Self { dead_mask: None, n_dead: 0, sparsity_scale: 1.0 }
    }
}

/// The names of the loss terms the built-in architectures report, following SAELens where it
/// has one: use these, not string literals, so that logs, plots and reports agree.
pub mod loss_terms {
    /// The reconstruction loss (per-row summed squared error, or sparsify's FVU).
    pub const MSE: &str = "mse_loss";
    /// The L1 (or Lp) sparsity penalty.
    pub const L1: &str = "l1_loss";
    /// JumpReLU's L0 sparsity penalty.
    pub const L0: &str = "l0_loss";
    /// AuxK (dead latents reconstructing the residual), or the Gated auxiliary loss.
    pub const AUX: &str = "auxiliary_reconstruction_loss";
    /// sparsify's Multi-TopK term (top 4k reconstruction, weight 1/8).
    pub const MULTI_TOPK: &str = "multi_topk_loss";
    /// JumpReLU's pre-activation loss on dead latents.
    pub const PRE_ACT: &str = "pre_act_loss";
    /// Matryoshka's reconstruction loss of the prefix of `width` latents.
    pub fn inner_mse(width: usize) -> String {
        format!("inner_mse_loss_{width}")
    }
}

/// One named term of the training loss.
#[derive(Debug, Clone)]
pub struct LossTerm {
    /// Name, following SAELens where it has one (`mse_loss`, `l1_loss`, `auxiliary_reconstruction_loss`, ...).
    pub name: String,
    /// Scalar value `[1]`, already weighted by its coefficient.
    pub value: Tensor<1>,
}

impl LossTerm {
    /// A term named `name` (one of [`loss_terms`] for the built-in ones).
    pub fn new(name: impl Into<String>, value: Tensor<1>) -> Self {
        Self { name: name.into(), value }
    }
}

/// Output of [`Sae::train_forward`].
#[derive(Debug, Clone)]
pub struct TrainOutput {
    /// Total loss `[1]`: the sum of the terms.
    pub loss: Tensor<1>,
    /// The terms, in a fixed order.
    pub terms: Vec<LossTerm>,
    /// The codes of the batch.
    pub codes: SparseCodes,
    /// The reconstruction `[n, d_out]`.
    pub output: Tensor<2>,
}

impl TrainOutput {
    /// Builds the output, summing `terms` into the total.
    pub fn from_terms(terms: Vec<LossTerm>, codes: SparseCodes, output: Tensor<2>) -> Self {
        let device = output.device();
        let loss = terms.iter().fold(Tensor::<1>::zeros([1], &device), |acc, t| acc + t.value.clone());
        Self { loss, terms, codes, output }
    }

    /// The host value of each term, in order (reads back from the device).
    pub fn term_values(&self) -> Vec<(String, f32)> {
        self.terms.iter().map(|t| (t.name.clone(), t.value.clone().into_scalar::<f32>())).collect()
    }
}

/// A sparse autoencoder (or transcoder) of any architecture.
///
/// Encoding takes raw activations: input normalisation and `b_dec` centring are the
/// architecture's business, as in SAELens. Parameters live in a [`ParamSet`] under their SAELens
/// names, which is what makes saving, loading and optimising architecture-independent.
pub trait Sae: Send + Sync + std::fmt::Debug {
    /// The configuration (architecture name, sizes, hyperparameters).
    fn config(&self) -> &SaeConfig;

    /// The parameters.
    fn params(&self) -> &ParamSet;

    /// Mutable access to the parameters (optimisers write here).
    fn params_mut(&mut self) -> &mut ParamSet;

    /// Encodes raw activations `x` `[n, d_in]` into sparse codes.
    fn encode(&self, x: Tensor<2>) -> Result<SparseCodes>;

    /// Decodes codes back to `[n, d_out]` (without any skip connection, which needs the input).
    fn decode(&self, codes: &SparseCodes) -> Result<Tensor<2>>;

    /// Encode then decode, including a skip connection `x · W_skipᵀ` when the SAE has one.
    fn forward(&self, x: Tensor<2>) -> Result<Forward> {
        let codes = self.encode(x.clone())?;
        let mut output = self.decode(&codes)?;
        if let Some(crate::params::ParamTensor::Matrix(w_skip)) = self.params().get("W_skip") {
            output = output + x.matmul(w_skip.clone().transpose());
        }
        Ok(Forward { codes, output })
    }

    /// The training forward pass: codes, reconstruction and the named loss terms.
    fn train_forward(&self, batch: &TrainBatch, ctx: &TrainContext) -> Result<TrainOutput>;

    /// Adjusts gradients before the optimiser step (e.g. removes the component of each decoder
    /// row's gradient parallel to the row). `grads` holds one gradient per parameter name.
    fn project_gradients(&self, _grads: &mut ParamSet) -> Result<()> {
        Ok(())
    }

    /// Runs after the optimiser step (decoder renormalisation, threshold updates).
    fn after_step(&mut self, _out: &TrainOutput) -> Result<()> {
        Ok(())
    }

    /// The config and parameters to save for inference. Training-only parameterisations are
    /// folded here (a BatchTopK SAE becomes a JumpReLU SAE; decoder-norm rescaling is folded).
    fn inference_export(&self) -> Result<(SaeConfig, ParamSet)> {
        Ok((self.config().clone(), self.params().clone().map(|_, t| t.detach())))
    }

    /// How its hot-path operations run ([`KernelPolicy`]). Architectures without fast paths
    /// keep this default.
    fn kernel_policy(&self) -> KernelPolicy {
        KernelPolicy::default()
    }

    /// Sets how its hot-path operations run; an architecture whose operations have no fast
    /// path has nothing to set. [`Registry::build`](crate::Registry::build) and
    /// [`Registry::init`](crate::Registry::init) call this with the registry's policy.
    fn set_kernel_policy(&mut self, _policy: KernelPolicy) {}

    /// The device the parameters live on.
    fn device(&self) -> Device {
        match self.params().iter().next() {
            Some((_, crate::params::ParamTensor::Matrix(t))) => t.device(),
            Some((_, crate::params::ParamTensor::Vector(t))) => t.device(),
            None => Device::default(),
        }
    }
}

/// The parameter schema of an architecture: every tensor's name and shape, in order.
pub type Schema = Vec<(String, Vec<usize>)>;

/// Where a config and its weights came from, for errors: config problems name `config`,
/// missing or mis-shaped tensors name `weights`.
#[derive(Debug, Clone, Copy)]
pub struct BuildOrigin<'a> {
    /// The config file (or `<config>`).
    pub config: &'a std::path::Path,
    /// The weights file.
    pub weights: &'a std::path::Path,
}

impl<'a> BuildOrigin<'a> {
    /// A config and weights from one place.
    pub fn one(path: &'a std::path::Path) -> Self {
        Self { config: path, weights: path }
    }
}

/// An architecture: a name in the [`Registry`](crate::Registry) and the code that checks a
/// config, builds an SAE from parameters, or initialises one. Implement
/// [`TypedArchitecture`] instead (it provides this trait) unless the hyperparameters are not
/// one typed struct.
pub trait Architecture: Send + Sync {
    /// The registered name (SAELens's `architecture` value where SAELens has one).
    fn name(&self) -> &'static str;

    /// Other names accepted for this architecture.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// One line describing the architecture, for `sae info` and error messages.
    fn describe(&self) -> &'static str;

    /// Checks the hyperparameters and returns the parameter schema (name, shape) in order.
    /// `origin` names the config file in errors.
    fn schema(&self, cfg: &SaeConfig, origin: &std::path::Path) -> Result<Schema>;

    /// Builds an SAE from a config and parameters: checks the hyperparameters, checks `params`
    /// against the schema (a missing or mis-shaped tensor is an error naming it), builds.
    fn build(&self, cfg: SaeConfig, params: ParamSet, origin: BuildOrigin<'_>) -> Result<Box<dyn Sae>>;

    /// A freshly initialised SAE for training, deterministic in `seed`, after checking the
    /// hyperparameters.
    fn init(&self, cfg: SaeConfig, device: &Device, seed: u64) -> Result<Box<dyn Sae>>;

    /// What a user should know about an SAE of this architecture with config `cfg`, one line
    /// each (shown by `sae info`): e.g. that it is a training form whose encoding depends on the
    /// batch. Default: nothing.
    fn notes(&self, _cfg: &SaeConfig) -> Vec<String> {
        Vec::new()
    }

    /// The hyperparameter keys this architecture reads, when it can say (a key outside them in
    /// a hand-written training config is a typo to report, not to copy into `cfg.json`).
    /// Default: unknown.
    fn hyper_keys(&self) -> Option<Vec<&'static str>> {
        None
    }
}

/// An architecture whose hyperparameters are one typed struct, parsed from the config's extra
/// keys once per build or initialisation and handed to the constructor (the config keeps every
/// key, known or not, so that it round-trips). Implementing it implements [`Architecture`].
pub trait TypedArchitecture: Send + Sync {
    /// The hyperparameters (fields with serde defaults where the reference library has one).
    type Hyper: serde::de::DeserializeOwned;

    /// The registered name.
    fn name(&self) -> &'static str;

    /// Other names accepted for this architecture.
    fn aliases(&self) -> &'static [&'static str] {
        &[]
    }

    /// One line describing the architecture.
    fn describe(&self) -> &'static str;

    /// Parses the hyperparameters of `cfg` (`origin` names the config in errors). Override to
    /// explain a missing required key better than serde does.
    fn hyper(&self, cfg: &SaeConfig, origin: &std::path::Path) -> Result<Self::Hyper> {
        cfg.hyper(origin)
    }

    /// Checks `hyper` against `cfg` (ranges, divisibility, required combinations) and returns
    /// the parameter schema.
    fn check(&self, cfg: &SaeConfig, hyper: &Self::Hyper, origin: &std::path::Path) -> Result<Schema>;

    /// Builds the SAE from checked hyperparameters and parameters that match the schema.
    fn build_with(&self, cfg: SaeConfig, hyper: Self::Hyper, params: ParamSet) -> Result<Box<dyn Sae>>;

    /// Freshly initialised parameters, deterministic in `seed`.
    fn init_params(&self, cfg: &SaeConfig, hyper: &Self::Hyper, device: &Device, seed: u64) -> Result<ParamSet>;

    /// What a user should know about an SAE with these hyperparameters. Default: nothing.
    fn notes_with(&self, _cfg: &SaeConfig, _hyper: &Self::Hyper) -> Vec<String> {
        Vec::new()
    }

    /// The keys of [`TypedArchitecture::Hyper`]: its serde field names where it is a plain
    /// struct. Override for a struct with flattened parts.
    fn hyper_keys(&self) -> Option<Vec<&'static str>> {
        crate::config::field_names::<Self::Hyper>().map(<[_]>::to_vec)
    }
}

impl<T: TypedArchitecture> Architecture for T {
    fn name(&self) -> &'static str {
        TypedArchitecture::name(self)
    }
    fn aliases(&self) -> &'static [&'static str] {
        TypedArchitecture::aliases(self)
    }
    fn describe(&self) -> &'static str {
        TypedArchitecture::describe(self)
    }
    fn schema(&self, cfg: &SaeConfig, origin: &std::path::Path) -> Result<Schema> {
        cfg.check_sizes(origin)?;
        let hyper = self.hyper(cfg, origin)?;
        self.check(cfg, &hyper, origin)
    }
    fn build(&self, cfg: SaeConfig, params: ParamSet, origin: BuildOrigin<'_>) -> Result<Box<dyn Sae>> {
        cfg.check_sizes(origin.config)?;
        let hyper = self.hyper(&cfg, origin.config)?;
        let schema = self.check(&cfg, &hyper, origin.config)?;
        params.check_schema(&schema, origin.weights, TypedArchitecture::name(self))?;
        self.build_with(cfg, hyper, params)
    }
    fn init(&self, cfg: SaeConfig, device: &Device, seed: u64) -> Result<Box<dyn Sae>> {
        let origin = std::path::Path::new("<config>");
        cfg.check_sizes(origin)?;
        let hyper = self.hyper(&cfg, origin)?;
        self.check(&cfg, &hyper, origin)?;
        let params = self.init_params(&cfg, &hyper, device, seed)?;
        self.build_with(cfg, hyper, params)
    }
    fn notes(&self, cfg: &SaeConfig) -> Vec<String> {
        match self.hyper(cfg, std::path::Path::new("<config>")) {
            Ok(hyper) => self.notes_with(cfg, &hyper),
            Err(_) => Vec::new(),
        }
    }
    fn hyper_keys(&self) -> Option<Vec<&'static str>> {
        TypedArchitecture::hyper_keys(self)
    }
}

/// Checks that `x` is `[n, width]`, naming `what` in the error.
pub fn check_width(x: &Tensor<2>, width: usize, what: &str) -> Result<()> {
    let [n, d] = x.dims();
    if d != width {
        return Err(SaeError::ShapeMismatch {
            path: "<input>".into(),
            name: what.to_string(),
            actual: vec![n, d],
            expected: vec![n, width],
        });
    }
    Ok(())
}

/// Implements [`Sae::config`], [`Sae::params`] and [`Sae::params_mut`] for a struct with fields
/// `cfg: SaeConfig` and `params: ParamSet`; with the argument `policy`, also
/// [`Sae::kernel_policy`] and [`Sae::set_kernel_policy`] for a field `policy: KernelPolicy`.
/// Use inside `impl Sae for ...`.
#[macro_export]
macro_rules! sae_state_accessors {
    () => {
        fn config(&self) -> &$crate::SaeConfig {
            &self.cfg
        }
        fn params(&self) -> &$crate::ParamSet {
            &self.params
        }
        fn params_mut(&mut self) -> &mut $crate::ParamSet {
            &mut self.params
        }
    };
    (policy) => {
        $crate::sae_state_accessors!();
        fn kernel_policy(&self) -> $crate::KernelPolicy {
            self.policy
        }
        fn set_kernel_policy(&mut self, policy: $crate::KernelPolicy) {
            self.policy = policy;
        }
    };
}
