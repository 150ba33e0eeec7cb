//! # sae-metrics
//!
//! How good an SAE is: [reconstruction and sparsity](reconstruction) metrics accumulated over
//! batches, [ground-truth recovery](recovery) (Hungarian matching of decoder rows to known
//! features by |cosine|), and both in one call on an activation source ([`evaluate`]);
//! [stability across seeds](stability) (Hungarian matching of two SAEs' latents) and the
//! [synthetic suite](synthetic) (SynthSAEBench's classification metrics, absorption on a known
//! hierarchy); [feature absorption](absorption) on a real model (SAEBench's first-letter task).
//! Formulas and sources are in `docs/metrics.md`; figures of them are
//! `sae-plot`.
//!
//! ```
//! use sae_metrics::recovery::feature_recovery;
//!
//! // Decoder rows that are the true features, permuted and sign-flipped: perfect recovery.
//! let truth = [1.0, 0.0, 0.0, 1.0];
//! let decoder = [0.0, -2.0, 3.0, 0.0, 1.0, 1.0];
//! let r = feature_recovery(&truth, &decoder, 2, 0.9).unwrap();
//! assert!((r.mcc - 1.0).abs() < 1e-12);
//! assert_eq!(r.matched_latent, vec![1, 0]);
//! ```

#![warn(missing_docs)]

pub mod absorption;
pub mod evaluate;
pub mod hungarian;
pub mod reconstruction;
pub mod recovery;
pub mod stability;
pub mod synthetic;
