//! The `sae` binary's integration tests, one test binary (linking once, not once per file):
//! commands on reference fixtures, the language-model commands, training (seeds, resume after
//! SIGKILL, plots).

mod cli;
mod language_model;
mod training;
