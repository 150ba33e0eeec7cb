//! `sae store`: inspect activation stores; `export` writes rows to a `.npy` file.

use std::path::PathBuf;

use anyhow::Result;
use clap::{Args, Subcommand};
use sae_core::format::npy::write_npy;
use sae_data::store::ActivationStore;

/// Arguments of `sae store`.
#[derive(Debug, Args)]
pub struct StoreArgs {
    #[command(subcommand)]
    action: StoreAction,
}

#[derive(Debug, Subcommand)]
enum StoreAction {
    /// Write the first rows of a store to a `.npy` file `[rows, d_in]` (f32).
    Export {
        /// The store directory.
        #[arg(long)]
        store: PathBuf,
        /// Rows to export (at most the store's; all of them when larger).
        #[arg(long)]
        rows: u64,
        /// Output `.npy` file.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs `sae store`.
pub fn run(args: StoreArgs) -> Result<()> {
    match args.action {
        StoreAction::Export { store, rows, out } => {
            let s = ActivationStore::open(&store)?;
            let n = rows.min(s.len()) as usize;
            let mut values = Vec::new();
            s.append_rows(0, n, &mut values)?;
            write_npy(&out, &[n, s.d_in()], &values)?;
            say!("wrote {} [{n}, {}] from {} ({} rows in the store)", out.display(), s.d_in(), store.display(), s.len());
        }
    }
    Ok(())
}
