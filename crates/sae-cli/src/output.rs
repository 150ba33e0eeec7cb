//! Standard output that cannot panic: `println!` panics when stdout is closed (`sae info | head`)
//! or full (`> /dev/full`); `say!` returns the failure as an error instead, which
//! `main` reports (or, for a closed pipe, ends the command quietly as other Unix tools do).

use std::io::Write;

/// Writing to standard output failed.
#[derive(Debug, thiserror::Error)]
#[error("writing to standard output: {0}")]
pub struct StdoutError(#[from] pub std::io::Error);

/// Writes `args` and a newline to stdout and flushes, so that a full disk is seen here and not
/// when the process exits.
pub fn line(args: std::fmt::Arguments<'_>) -> Result<(), StdoutError> {
    let mut out = std::io::stdout().lock();
    out.write_fmt(args)?;
    out.write_all(b"\n")?;
    out.flush()?;
    Ok(())
}

/// Whether `err` is a write to a stdout whose reader has gone (`| head`).
pub fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.chain().any(|e| e.downcast_ref::<StdoutError>().is_some_and(|s| s.0.kind() == std::io::ErrorKind::BrokenPipe))
}

/// `println!` that returns a [`StdoutError`] from the enclosing function instead of panicking.
macro_rules! say {
    ($($arg:tt)*) => {
        $crate::output::line(format_args!($($arg)*))?
    };
}
