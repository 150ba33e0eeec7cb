//! Exclusive locks on output directories: two runs writing one directory (two `train`s, a
//! `harvest` and a `synth`) would interleave their files, and one could exit 0 with the other's
//! data mixed in. The writer of a directory holds [`DirLock`] for as long as it writes.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};

use crate::error::{Result, SaeError};

/// The lock file inside a locked directory.
pub const LOCK_FILE: &str = ".sae-lock";

/// An exclusive advisory lock (`flock`) on `<dir>/.sae-lock`, released when dropped or when the
/// process ends in any way (SIGKILL included), so a killed run never leaves a stale lock.
#[derive(Debug)]
pub struct DirLock {
    _file: File,
    path: PathBuf,
}

impl DirLock {
    /// Creates `dir` if needed and locks it; another process (or another `DirLock` in this one)
    /// holding the lock is [`SaeError::Locked`].
    pub fn acquire(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir).map_err(|e| SaeError::io("creating", dir, e))?;
        let path = dir.join(LOCK_FILE);
        let file = OpenOptions::new().create(true).truncate(false).write(true).open(&path).map_err(|e| SaeError::io("opening", &path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file, path }),
            Err(TryLockError::WouldBlock) => Err(SaeError::Locked { path: dir.to_path_buf() }),
            Err(TryLockError::Error(e)) => Err(SaeError::io("locking", &path, e)),
        }
    }

    /// The lock file.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::DirLock;

    #[test]
    fn a_second_lock_on_one_directory_is_refused_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DirLock::acquire(dir.path()).unwrap();
        let err = DirLock::acquire(dir.path()).unwrap_err();
        assert!(matches!(err, crate::SaeError::Locked { .. }), "{err}");
        assert!(err.to_string().contains("another process"), "{err}");
        drop(first);
        assert!(DirLock::acquire(dir.path()).is_ok());
    }
}
