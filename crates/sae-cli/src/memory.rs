//! What the machine has room for, asked before a command allocates what a flag or a file
//! asked for: a failed allocation aborts the process without a message, so a size that cannot
//! fit is refused up front.

use anyhow::{Result, bail};

/// Bytes of memory the kernel says are available (`MemAvailable` of `/proc/meminfo`); `None`
/// where that is not known (not Linux), in which case nothing is refused.
pub fn available_bytes() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Fails when `bytes` (what `what` needs) is more than the memory available.
pub fn ensure_fits(what: &str, bytes: u128) -> Result<()> {
    if let Some(avail) = available_bytes()
        && bytes > avail as u128
    {
        let gib = |b: u128| b as f64 / (1u64 << 30) as f64;
        bail!("{what} needs about {:.1} GiB, but only {:.1} GiB of memory is available", gib(bytes), gib(avail as u128));
    }
    Ok(())
}

/// Bytes of training state of an SAE with `d_in` inputs and `d_sae` latents: encoder and decoder
/// (`2 · d_in · d_sae` f32) with their gradients and two Adam moments each, the biases ignored.
pub fn training_bytes(d_in: usize, d_sae: usize) -> u128 {
    2 * d_in as u128 * d_sae as u128 * 4 * 4
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_trillion_latents_do_not_fit_and_a_few_do() {
        assert!(super::ensure_fits("sae[0]", super::training_bytes(384, 1_000_000_000_000)).is_err() || super::available_bytes().is_none());
        assert!(super::ensure_fits("sae[0]", super::training_bytes(8, 16)).is_ok());
    }
}
