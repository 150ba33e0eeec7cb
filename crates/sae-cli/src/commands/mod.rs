//! One module per subcommand.

pub mod bench;
pub mod convert;
pub mod encode;
pub mod info;
pub mod eval;
pub mod synth;
pub mod train;
