//! SHA-256 of a download and unpacking of wheels (zip) and source distributions (tar.gz), keeping
//! only the entries under the asset's prefix, with the prefix stripped. Entries whose path would
//! leave the target directory (absolute, `..`) are refused.

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Component, Path, PathBuf};

use sha2::{Digest, Sha256};

use super::asset::{ArchiveKind, Asset};
use super::error::{AssetError, AssetResult, io};

/// Lower-case hex SHA-256 of the file at `path`, read in 1 MiB pieces.
pub fn sha256_file(path: &Path) -> AssetResult<String> {
    let mut file = BufReader::new(File::open(path).map_err(io("open", path))?);
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf).map_err(io("read", path))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

/// The path of an archive entry relative to the asset directory: `None` when it is not under
/// `keep`, is the prefix itself, or would leave the directory.
fn kept_path(entry: &Path, keep: &str) -> Option<PathBuf> {
    let rel = entry.strip_prefix(keep.trim_end_matches('/')).ok()?;
    if rel.as_os_str().is_empty() || !rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return None;
    }
    Some(rel.to_path_buf())
}

/// Refuses an entry path that is absolute or climbs out with `..`.
fn check_safe(asset: &Asset, archive: &Path, entry: &Path) -> AssetResult<()> {
    if entry.components().any(|c| matches!(c, Component::ParentDir | Component::RootDir | Component::Prefix(_))) {
        return Err(AssetError::Unpack { name: asset.name.into(), path: archive.into(), reason: format!("entry {} leaves the target directory", entry.display()) });
    }
    Ok(())
}

fn write_entry(reader: &mut impl Read, target: &Path) -> AssetResult<()> {
    if let Some(parent) = target.parent() {
        std::fs::create_dir_all(parent).map_err(io("create", parent))?;
    }
    let mut out = File::create(target).map_err(io("create", target))?;
    std::io::copy(reader, &mut out).map_err(io("unpack into", target))?;
    out.sync_all().map_err(io("sync", target))
}

/// Unpacks the kept entries of `archive` into `dir` (which must exist). Returns how many files
/// were written; an archive with none under the prefix is an error.
pub fn unpack(asset: &Asset, archive: &Path, dir: &Path) -> AssetResult<usize> {
    let bad = |reason: String| AssetError::Unpack { name: asset.name.into(), path: archive.into(), reason };
    let file = File::open(archive).map_err(io("open", archive))?;
    let mut written = 0;
    match asset.kind {
        ArchiveKind::Wheel => {
            let mut zip = zip::ZipArchive::new(BufReader::new(file)).map_err(|e| bad(e.to_string()))?;
            for i in 0..zip.len() {
                let mut entry = zip.by_index(i).map_err(|e| bad(e.to_string()))?;
                if entry.is_dir() {
                    continue;
                }
                let Some(name) = entry.enclosed_name() else {
                    return Err(bad(format!("entry {i} leaves the target directory")));
                };
                if let Some(rel) = kept_path(&name, asset.keep) {
                    write_entry(&mut entry, &dir.join(rel))?;
                    written += 1;
                }
            }
        }
        ArchiveKind::TarGz => {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
            for entry in tar.entries().map_err(|e| bad(e.to_string()))? {
                let mut entry = entry.map_err(|e| bad(e.to_string()))?;
                if !entry.header().entry_type().is_file() {
                    continue;
                }
                let name = entry.path().map_err(|e| bad(e.to_string()))?.into_owned();
                check_safe(asset, archive, &name)?;
                if let Some(rel) = kept_path(&name, asset.keep) {
                    write_entry(&mut entry, &dir.join(rel))?;
                    written += 1;
                }
            }
        }
    }
    if written == 0 {
        return Err(bad(format!("no file under `{}`", asset.keep)));
    }
    Ok(written)
}
