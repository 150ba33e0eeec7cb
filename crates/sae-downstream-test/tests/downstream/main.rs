//! What a downstream crate adds with one trait implementation: an architecture (saved, loaded,
//! encoded like a built-in one) and a hooked model (harvested, trained on and intervened on
//! through the generic code alone).

mod architecture;
mod model;
