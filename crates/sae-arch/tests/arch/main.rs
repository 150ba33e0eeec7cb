//! sae-arch's integration tests, one binary (linking burn once, not once per file): the backend
//! suite run on every enabled backend, properties of every architecture, and the SAELens /
//! sparsify reference fixtures, and files that lie.

mod backend_suite;
mod bad_files;
mod properties;
mod reference_fixtures;
