//! Stability across seeds (identifiability): do two SAEs trained on the same activations learn
//! the same features?
//!
//! After Paulo & Belrose (2025), "Sparse Autoencoders Trained on the Same Data Learn Different
//! Features" (code: `SrGonao/sae_overlap`): the latents of two SAEs are matched one to one by
//! the Hungarian algorithm maximising the summed cosine of their unit decoder rows, and again of
//! their unit encoder directions. The alignment score of a matching is the mean cosine of its
//! pairs (signed, as the reference's `linear_sum_assignment(..., maximize=True)` on dot products
//! of unit vectors). A latent is *shared* when its decoder match has cosine above
//! [`SHARED_THRESHOLD`] on both the decoder and the encoder; the two matchings *agree* on a
//! latent when they give it the same partner. With SAEs of different widths, the latents of the
//! narrower one are matched into the wider one and every mean is over the narrower one's latents.

use burn::tensor::{Device, Tensor, TensorData};
use sae_core::params::host_f32;
use sae_core::{Result, Sae, SaeError};
use serde::Serialize;

use crate::hungarian::assign_min_cost_with_progress;

/// Cosine above which a matched pair counts as the same feature (the paper's 0.7).
pub const SHARED_THRESHOLD: f32 = 0.7;

/// Rows of the cosine matrix computed per matrix product: bounds the device memory of one
/// block while keeping the products large enough for the GEMM.
const BLOCK_ROWS: usize = 1024;

/// An SAE's latent directions on the host: decoder rows and encoder directions, `[n, d]` each.
#[derive(Debug, Clone, PartialEq)]
pub struct Directions {
    /// Decoder rows (`W_dec`), `[n, d]` row-major.
    pub decoder: Vec<f32>,
    /// Encoder directions (the columns of `W_enc`, as rows), `[n, d]`; the decoder rows for an
    /// architecture that encodes with its decoder (matching pursuit).
    pub encoder: Vec<f32>,
    /// Latents.
    pub n: usize,
    /// Width of each direction (the SAE's `d_in`).
    pub d: usize,
}

impl Directions {
    /// Reads the directions of `sae` (`W_dec`, and `W_enc` when it has one).
    pub fn of(sae: &dyn Sae) -> Result<Self> {
        let (n, d) = (sae.config().d_sae, sae.config().d_in);
        let decoder = host_f32(sae.params().matrix("W_dec")?.into_data())?;
        let encoder = if sae.params().contains("W_enc") {
            // W_enc is [d_in, d_sae]: its columns are the latents' encoder directions.
            host_f32(sae.params().matrix("W_enc")?.transpose().into_data())?
        } else {
            decoder.clone()
        };
        let directions = Self { decoder, encoder, n, d };
        directions.check("the SAE")?;
        Ok(directions)
    }

    fn check(&self, what: &str) -> Result<()> {
        let want = self.n.checked_mul(self.d).unwrap_or(usize::MAX);
        for (name, m) in [("decoder", &self.decoder), ("encoder", &self.encoder)] {
            if m.len() != want {
                return Err(SaeError::ShapeMismatch { path: what.into(), name: name.into(), actual: vec![m.len()], expected: vec![self.n, self.d] });
            }
            if m.iter().any(|v| !v.is_finite()) {
                return Err(SaeError::Unsupported(format!("{what}: the {name} holds NaN or infinite values")));
            }
        }
        Ok(())
    }
}

/// One matching (decoder or encoder) of the narrower SAE's latents into the wider one's.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Matching {
    /// Mean cosine of the matched pairs.
    pub alignment: f64,
    /// Partner of each latent of the narrower SAE.
    pub partner: Vec<usize>,
    /// Cosine of each matched pair.
    pub cosine: Vec<f32>,
}

/// The stability of a pair of SAEs; its JSON keys are `sae compare --json`'s.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Stability {
    /// Mean matched decoder cosine.
    pub decoder_alignment: f64,
    /// Mean matched encoder cosine.
    pub encoder_alignment: f64,
    /// Fraction of latents whose decoder match has decoder and encoder cosine above
    /// [`SHARED_THRESHOLD`].
    pub shared_fraction: f64,
    /// Fraction of latents given the same partner by both matchings.
    pub same_match_fraction: f64,
    /// Whether the first SAE was the wider one (the matchings then run from the second's latents).
    pub swapped: bool,
    /// The decoder matching.
    pub decoder: Matching,
    /// The encoder matching.
    pub encoder: Matching,
}

/// Matches the latents of `a` and `b` on decoder and on encoder directions (module docs), with
/// the cosine products on `device`; `progress(done, total)` counts the latents matched by both
/// matchings. Directions of different widths, non-finite values or a zero-width SAE are typed
/// errors.
pub fn stability(a: &Directions, b: &Directions, device: &Device, mut progress: impl FnMut(u64, u64)) -> Result<Stability> {
    a.check("first SAE")?;
    b.check("second SAE")?;
    if a.d != b.d {
        return Err(SaeError::ShapeMismatch { path: "second SAE".into(), name: "d_in".into(), actual: vec![b.d], expected: vec![a.d] });
    }
    if a.n == 0 || b.n == 0 || a.d == 0 {
        return Err(SaeError::Unsupported("stability needs SAEs with at least one latent of positive width".into()));
    }
    let (narrow, wide, swapped) = if a.n <= b.n { (a, b, false) } else { (b, a, true) };
    let total = 2 * narrow.n as u64;
    let decoder = match_rows(&narrow.decoder, &wide.decoder, narrow.n, wide.n, a.d, device, |i| progress(i as u64, total))?;
    let encoder = match_rows(&narrow.encoder, &wide.encoder, narrow.n, wide.n, a.d, device, |i| progress((narrow.n + i) as u64, total))?;
    let n = narrow.n as f64;
    // The encoder cosine of each decoder-matched pair: shared latents are the same feature on
    // both sides of the SAE.
    let encoder_cos_of = |i: usize, j: usize| cosine(&narrow.encoder[i * a.d..(i + 1) * a.d], &wide.encoder[j * a.d..(j + 1) * a.d]);
    let shared = decoder
        .partner
        .iter()
        .enumerate()
        .filter(|&(i, &j)| decoder.cosine[i] > SHARED_THRESHOLD && encoder_cos_of(i, j) > SHARED_THRESHOLD)
        .count();
    let same = decoder.partner.iter().zip(&encoder.partner).filter(|(p, q)| p == q).count();
    Ok(Stability {
        decoder_alignment: decoder.alignment,
        encoder_alignment: encoder.alignment,
        shared_fraction: shared as f64 / n,
        same_match_fraction: same as f64 / n,
        swapped,
        decoder,
        encoder,
    })
}

/// Cosine of two vectors (0 when either is zero), accumulated in f64.
fn cosine(x: &[f32], y: &[f32]) -> f32 {
    let (mut xy, mut xx, mut yy) = (0f64, 0f64, 0f64);
    for (a, b) in x.iter().zip(y) {
        let (a, b) = (*a as f64, *b as f64);
        xy += a * b;
        xx += a * a;
        yy += b * b;
    }
    if xx == 0.0 || yy == 0.0 { 0.0 } else { (xy / (xx.sqrt() * yy.sqrt())) as f32 }
}

/// Rows scaled to unit norm (zero rows stay zero: they match nothing better than anything else).
fn unit_rows(rows: &[f32], d: usize) -> Vec<f32> {
    rows.chunks_exact(d)
        .flat_map(|r| {
            let norm = r.iter().map(|v| (*v as f64).powi(2)).sum::<f64>().sqrt();
            let scale = if norm > 0.0 { (1.0 / norm) as f32 } else { 0.0 };
            r.iter().map(move |v| v * scale)
        })
        .collect()
}

/// The `[n, m]` cosine matrix of the rows of `x` `[n, d]` and `y` `[m, d]`, by blocks of
/// matrix products on `device`.
pub fn cosine_matrix(x: &[f32], y: &[f32], n: usize, m: usize, d: usize, device: &Device) -> Result<Vec<f32>> {
    let (ux, uy) = (unit_rows(x, d), unit_rows(y, d));
    let yt = Tensor::<2>::from_data(TensorData::new(uy, [m, d]), device).transpose();
    let mut out = Vec::with_capacity(n * m);
    for start in (0..n).step_by(BLOCK_ROWS) {
        let rows = BLOCK_ROWS.min(n - start);
        let block = Tensor::<2>::from_data(TensorData::new(ux[start * d..(start + rows) * d].to_vec(), [rows, d]), device);
        out.extend(host_f32(block.matmul(yt.clone()).into_data())?);
    }
    Ok(out)
}

/// Matches each of the `n` rows of `x` to a distinct row of `y` (`n ≤ m`) maximising the summed
/// cosine.
fn match_rows(x: &[f32], y: &[f32], n: usize, m: usize, d: usize, device: &Device, progress: impl FnMut(usize)) -> Result<Matching> {
    let cos = cosine_matrix(x, y, n, m, d, device)?;
    let cost: Vec<f64> = cos.iter().map(|c| -(*c as f64)).collect();
    let partner = assign_min_cost_with_progress(&cost, n, m, progress).ok_or_else(|| SaeError::Invariant("the assignment failed on a finite cosine matrix".into()))?;
    drop(cost);
    let cosine: Vec<f32> = partner.iter().enumerate().map(|(i, &j)| cos[i * m + j]).collect();
    let alignment = cosine.iter().map(|c| *c as f64).sum::<f64>() / n as f64;
    Ok(Matching { alignment, partner, cosine })
}
