//! # sae-label
//!
//! What an SAE's features respond to: [`top_examples`] scans an activation store (with the token
//! of every row, as `sae harvest` writes it), keeps each chosen feature's strongest activations
//! and their surrounding tokens; [`report`] writes them with the evaluation metrics and the
//! training curves as one self-contained HTML page and a JSON file.
//!
//! ```
//! use sae_label::top_examples::pick_features;
//!
//! // Features spread over the density range of the live ones (dead and dense ones left out).
//! let density = [0.0, 0.001, 0.01, 0.1, 0.5, 0.9];
//! assert_eq!(pick_features(&density, 3, 0.8), vec![1, 3, 4]);
//! ```

#![warn(missing_docs)]

pub mod error;
pub mod html;
pub mod report;
pub mod top_examples;

pub use error::{LabelError, Result};
