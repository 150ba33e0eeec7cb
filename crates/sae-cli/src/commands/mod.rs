//! One module per subcommand.

pub mod assets;
pub mod bench;
pub mod compare;
pub mod convert;
pub mod encode;
pub mod generate;
pub mod harvest;
pub mod info;
pub mod report;
pub mod run;
pub mod store;
pub mod absorption;
pub mod eval;
pub mod synth;
pub mod train;
