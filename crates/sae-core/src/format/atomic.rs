//! Atomic file writes: a temporary file beside the target, fsync, rename, fsync the directory.
//! A reader never sees a half-written file, and a crash leaves either the old or the new file.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{Result, SaeError};

/// Writes `bytes` to `path` atomically, creating the parent directory if needed.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    fs::create_dir_all(dir).map_err(|e| SaeError::io("creating directory", dir, e))?;
    let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "out".into());
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut f = File::create(&tmp).map_err(|e| SaeError::io("creating", &tmp, e))?;
        f.write_all(bytes).map_err(|e| SaeError::io("writing", &tmp, e))?;
        f.sync_all().map_err(|e| SaeError::io("syncing", &tmp, e))?;
        fs::rename(&tmp, path).map_err(|e| SaeError::io("renaming into place", path, e))?;
        if let Ok(d) = File::open(dir) {
            // Persist the rename; not every platform lets a directory be synced, so ignore errors.
            let _ = d.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Reads a whole file, with the path in the error.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    fs::read(path).map_err(|e| SaeError::io("reading", path, e))
}
