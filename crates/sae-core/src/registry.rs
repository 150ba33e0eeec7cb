//! Architecture registry: maps the `architecture` tag of a config to the code that builds it.

use std::path::Path;
use std::sync::Arc;

use burn::tensor::Device;

use crate::config::SaeConfig;
use crate::error::{Result, SaeError};
use crate::params::ParamSet;
use crate::policy::KernelPolicy;
use crate::sae::{Architecture, BuildOrigin, Sae};

/// The architecture names the file formats produce and expect: a sparsify coder loads as
/// [`TOPK`](names::TOPK), a Gemma Scope directory as [`JUMPRELU`](names::JUMPRELU), an old
/// SAELens config without an `architecture` as [`STANDARD`](names::STANDARD) or `TOPK`. The
/// architectures registered under these names (`sae-arch`'s) must accept the hyperparameters the
/// formats write; a registry without them reports [`SaeError::UnknownArchitecture`] on load.
pub mod names {
    /// The TopK SAE (SAELens `topk`, sparsify's coders).
    pub const TOPK: &str = "topk";
    /// The JumpReLU SAE (SAELens `jumprelu`, Gemma Scope).
    pub const JUMPRELU: &str = "jumprelu";
    /// The ReLU + L1 SAE (SAELens `standard`).
    pub const STANDARD: &str = "standard";
}

/// A set of architectures, looked up by name or alias, and the [`KernelPolicy`] that every SAE
/// it builds runs with. Not global: build one (for the built-in architectures,
/// `sae_arch::registry()`) and pass it to whatever loads SAEs.
#[derive(Clone, Default)]
pub struct Registry {
    archs: Vec<Arc<dyn Architecture>>,
    policy: KernelPolicy,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.names()).finish()
    }
}

impl Registry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an architecture; a later registration with the same name replaces the earlier one.
    pub fn register(&mut self, arch: impl Architecture + 'static) -> &mut Self {
        self.archs.retain(|a| a.name() != arch.name());
        self.archs.push(Arc::new(arch));
        self
    }

    /// The same registry whose SAEs run with `policy`.
    pub fn with_kernel_policy(mut self, policy: KernelPolicy) -> Self {
        self.policy = policy;
        self
    }

    /// The policy the SAEs it builds run with.
    pub fn kernel_policy(&self) -> KernelPolicy {
        self.policy
    }

    /// Registered names, in registration order.
    pub fn names(&self) -> Vec<&'static str> {
        self.archs.iter().map(|a| a.name()).collect()
    }

    /// Looks an architecture up by name or alias.
    pub fn get(&self, name: &str) -> Option<&dyn Architecture> {
        self.archs
            .iter()
            .find(|a| a.name() == name || a.aliases().contains(&name))
            .map(|a| a.as_ref())
    }

    /// Like [`Registry::get`], with an error listing the known names.
    pub fn require(&self, name: &str, origin: Option<&Path>) -> Result<&dyn Architecture> {
        self.get(name).ok_or_else(|| SaeError::UnknownArchitecture {
            name: name.to_string(),
            path: origin.map(Path::to_path_buf),
            known: self.names().join(", "),
        })
    }

    /// Builds an SAE from a config and parameters, checking names and shapes first.
    /// The config's `architecture` is canonicalised (aliases become the registered name).
    /// `origin` names where both came from in errors.
    pub fn build(&self, cfg: SaeConfig, params: ParamSet, origin: &Path) -> Result<Box<dyn Sae>> {
        self.build_from_files(cfg, params, origin, origin)
    }

    /// Like [`Registry::build`], for a config and weights read from two files: config errors
    /// name `cfg_path`, missing or mis-shaped tensors name `weights_path`.
    pub fn build_from_files(&self, mut cfg: SaeConfig, params: ParamSet, cfg_path: &Path, weights_path: &Path) -> Result<Box<dyn Sae>> {
        let arch = self.require(&cfg.architecture, Some(cfg_path))?;
        cfg.architecture = arch.name().to_string();
        let mut sae = arch.build(cfg, params, BuildOrigin { config: cfg_path, weights: weights_path })?;
        sae.set_kernel_policy(self.policy);
        Ok(sae)
    }

    /// A freshly initialised SAE, deterministic in `seed`.
    pub fn init(&self, mut cfg: SaeConfig, device: &Device, seed: u64) -> Result<Box<dyn Sae>> {
        let arch = self.require(&cfg.architecture, None)?;
        cfg.architecture = arch.name().to_string();
        let mut sae = arch.init(cfg, device, seed)?;
        sae.set_kernel_policy(self.policy);
        Ok(sae)
    }
}
