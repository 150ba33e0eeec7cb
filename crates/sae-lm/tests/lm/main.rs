//! sae-lm's integration tests, one binary (linking burn once, not once per file): MiniLM and
//! SmolLM2 against transformers, harvesting, interventions. `common` holds the shared helpers and
//! the f32 error model their tolerances come from.

mod common;
mod harvest;
mod interventions;
mod minilm;
mod smollm2;
