//! `sae compare`: stability between SAEs (trained with other seeds, or other settings, on the
//! same activations): Hungarian matching of their latents on decoder and on encoder directions.

use std::path::PathBuf;

use anyhow::{Result, bail};
use clap::Args;
use sae_core::format::load_sae;
use sae_metrics::stability::{Directions, stability};

use crate::backend::Backend;
use crate::progress::bar;

/// Arguments of `sae compare`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// SAE directories (two or more, of one `d_in`); every pair is compared.
    #[arg(long = "sae", num_args = 1.., required = true)]
    saes: Vec<PathBuf>,
    /// Write the comparison as JSON here (per pair: the four scores, and per latent the partner
    /// and cosine of both matchings).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Draw each pair's matched-cosine histogram here, as `.png` and `.svg` (the extension
    /// given is replaced; with more than one pair, `-I-J` is added to the name).
    #[arg(long)]
    plot: Option<PathBuf>,
    /// Compute backend of the cosine products.
    #[arg(long, value_enum, default_value_t = Backend::default())]
    backend: Backend,
}

/// Runs `sae compare`.
pub fn run(a: CompareArgs) -> Result<()> {
    if a.saes.len() < 2 {
        bail!("--sae needs at least two SAE directories to compare");
    }
    let device = a.backend.device()?;
    let registry = crate::policy::registry();
    let mut directions = Vec::with_capacity(a.saes.len());
    for dir in &a.saes {
        let sae = load_sae(dir, &registry, &device)?.sae;
        directions.push(Directions::of(sae.as_ref()).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?);
    }
    let pairs: Vec<(usize, usize)> = (0..a.saes.len()).flat_map(|i| (i + 1..a.saes.len()).map(move |j| (i, j))).collect();
    let mut out = Vec::with_capacity(pairs.len());
    for (p, &(i, j)) in pairs.iter().enumerate() {
        let pb = bar(0, "latents matched");
        pb.set_message(format!("pair {} of {}", p + 1, pairs.len()));
        let s = stability(&directions[i], &directions[j], &device, |done, total| {
            pb.set_length(total);
            pb.set_position(done);
        })
        .map_err(|e| anyhow::anyhow!("{} vs {}: {e}", a.saes[i].display(), a.saes[j].display()))?;
        pb.finish_and_clear();
        if let Some(base) = &a.plot {
            let path = if pairs.len() == 1 { base.clone() } else { base.with_file_name(format!("{}-{i}-{j}", base.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default())) };
            let title = format!("{} vs {}", a.saes[i].display(), a.saes[j].display());
            let fig = sae_plot::matching::matched_cosine_histogram(&s.decoder.cosine, &s.encoder.cosine, sae_metrics::stability::SHARED_THRESHOLD, &title, &path)?;
            say!("matched cosines {} {}", fig.png.display(), fig.svg.display());
        }
        let mut entry = serde_json::to_value(&s)?;
        entry["a"] = a.saes[i].display().to_string().into();
        entry["b"] = a.saes[j].display().to_string().into();
        out.push((i, j, s, entry));
    }
    say!("{:>10} {:>10} {:>8} {:>11}  pair", "decoder", "encoder", "shared", "same match");
    for (i, j, s, _) in &out {
        say!(
            "{:>10.4} {:>10.4} {:>8.4} {:>11.4}  {} vs {}",
            s.decoder_alignment,
            s.encoder_alignment,
            s.shared_fraction,
            s.same_match_fraction,
            a.saes[*i].display(),
            a.saes[*j].display()
        );
    }
    if let Some(path) = &a.json {
        let json = serde_json::json!({ "pairs": out.into_iter().map(|(_, _, _, e)| e).collect::<Vec<_>>() });
        sae_core::format::atomic::write_atomic(path, serde_json::to_string_pretty(&json)?.as_bytes())?;
    }
    Ok(())
}
