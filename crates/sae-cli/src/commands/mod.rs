//! One module per subcommand.

pub mod convert;
pub mod encode;
pub mod info;
pub mod eval;
pub mod synth;
pub mod train;
