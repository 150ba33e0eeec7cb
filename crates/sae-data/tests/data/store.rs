//! Activation stores: round trips, resumption after a crash, and typed errors on bad files.

use std::path::Path;

use sae_data::DataError;
use sae_data::store::{ActivationStore, METADATA_FILE, StoreWriter};

fn rows(n: usize, d: usize, offset: usize) -> Vec<f32> {
    (0..n * d).map(|i| (offset * d + i) as f32 * 0.5).collect()
}

fn write(dir: &Path, n: usize, d: usize, shard_rows: usize) -> ActivationStore {
    let mut w = StoreWriter::create(dir, d, shard_rows, serde_json::json!({"test": true})).unwrap();
    // Uneven pushes that straddle shard boundaries.
    let mut done = 0;
    for step in [3usize, 7, 1, 20].iter().cycle() {
        if done == n {
            break;
        }
        let take = (*step).min(n - done);
        w.push_rows(&rows(take, d, done)).unwrap();
        done += take;
    }
    w.finish().unwrap();
    ActivationStore::open(dir).unwrap()
}

#[test]
fn rows_round_trip_across_shards() {
    let tmp = tempfile::tempdir().unwrap();
    let store = write(tmp.path(), 53, 4, 10);
    assert_eq!((store.len(), store.d_in(), store.metadata().shards.len()), (53, 4, 6));
    assert!(store.metadata().complete);
    let mut out = Vec::new();
    store.append_rows(0, 53, &mut out).unwrap();
    assert_eq!(out, rows(53, 4, 0));
    out.clear();
    store.append_rows(8, 15, &mut out).unwrap();
    assert_eq!(out, rows(15, 4, 8));
    assert!(matches!(store.append_rows(50, 4, &mut out), Err(DataError::Invalid { .. })));
}

#[test]
fn a_killed_writer_resumes_from_its_last_shard() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let mut w = StoreWriter::create(&dir, 3, 8, serde_json::json!(null)).unwrap();
    w.push_rows(&rows(21, 3, 0)).unwrap();
    assert_eq!(w.committed_rows(), 16);
    drop(w); // killed: the 5 pending rows are lost, the 2 shards are not
    let store = ActivationStore::open(&dir).unwrap();
    assert_eq!(store.len(), 16);
    assert!(!store.metadata().complete);
    let mut w = StoreWriter::resume(&dir).unwrap();
    let from = w.committed_rows() as usize;
    w.push_rows(&rows(30 - from, 3, from)).unwrap();
    w.finish().unwrap();
    let resumed = ActivationStore::open(&dir).unwrap();
    let reference = write(&tmp.path().join("r"), 30, 3, 8);
    let (mut a, mut b) = (Vec::new(), Vec::new());
    resumed.append_rows(0, 30, &mut a).unwrap();
    reference.append_rows(0, 30, &mut b).unwrap();
    assert_eq!(a, b);
    assert!(matches!(StoreWriter::resume(&dir), Err(DataError::Metadata { field, .. }) if field == "complete"));
}

#[test]
fn truncated_shard_is_a_typed_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    write(tmp.path(), 20, 4, 10);
    let shard = tmp.path().join("shard-000001.safetensors");
    let bytes = std::fs::read(&shard).unwrap();
    std::fs::write(&shard, &bytes[..bytes.len() - 7]).unwrap();
    match ActivationStore::open(tmp.path()) {
        Err(DataError::Shard { path, reason }) => {
            assert_eq!(path, shard);
            assert!(reason.contains("truncated"), "{reason}");
        }
        other => panic!("expected a shard error, got {other:?}"),
    }
    std::fs::remove_file(&shard).unwrap();
    assert!(matches!(ActivationStore::open(tmp.path()), Err(DataError::Io { path, .. }) if path == shard));
}

#[test]
fn metadata_that_disagrees_with_the_data_is_a_typed_error() {
    let edit = |f: &dyn Fn(&mut serde_json::Value)| {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), 20, 4, 10);
        let path = tmp.path().join(METADATA_FILE);
        let mut v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        f(&mut v);
        std::fs::write(&path, v.to_string()).unwrap();
        ActivationStore::open(tmp.path()).map(|_| ())
    };
    match edit(&|v| v["count"] = 25.into()) {
        Err(DataError::Metadata { field, .. }) => assert_eq!(field, "count"),
        other => panic!("{other:?}"),
    }
    match edit(&|v| v["d_in"] = 5.into()) {
        Err(DataError::Shard { reason, .. }) => assert!(reason.contains("[10, 5]"), "{reason}"),
        other => panic!("{other:?}"),
    }
    match edit(&|v| v["shards"][0]["rows"] = 9.into()) {
        Err(DataError::Metadata { field, .. }) => assert_eq!(field, "count"),
        other => panic!("{other:?}"),
    }
    match edit(&|v| v["colour"] = "blue".into()) {
        Err(DataError::Metadata { field, reason, .. }) => assert!(field == "colour" && reason.contains("unknown"), "{field}: {reason}"),
        other => panic!("{other:?}"),
    }
    match edit(&|v| v["dtype"] = "int8".into()) {
        Err(DataError::Metadata { field, .. }) => assert_eq!(field, "dtype"),
        other => panic!("{other:?}"),
    }
    match edit(&|v| v["shards"][0]["file"] = "../../etc/passwd".into()) {
        Err(DataError::Metadata { field, .. }) => assert_eq!(field, "shards"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn tokens_round_trip_beside_the_rows_across_shards() {
    use sae_core::{RowMeta, RowMetaKind};
    let dir = tempfile::tempdir().unwrap();
    let (n, d) = (23, 3);
    let mut w = StoreWriter::create_with_meta(dir.path(), d, 5, serde_json::json!({"model": "test"}), Some(RowMetaKind::Token)).unwrap();
    let tokens: Vec<RowMeta> = (0..n as u32).map(|i| RowMeta::Token { id: 1000 + i, pos: i % 7, window: i / 7 }).collect();
    // Pushed in uneven pieces that straddle shard boundaries.
    let all = rows(n, d, 0);
    for (a, b) in [(0, 3), (3, 11), (11, 23)] {
        w.push_rows_with_meta(&all[a * d..b * d], &tokens[a..b]).unwrap();
    }
    assert!(w.push_rows(&rows(1, d, 0)).is_err(), "a token store refuses rows without tokens");
    assert!(w.push_rows_with_meta(&rows(2, d, 0), &tokens[..1]).is_err(), "one token per row");
    let patch = [RowMeta::Patch { image: 0, row: 0, col: 0 }];
    assert!(w.push_rows_with_meta(&rows(1, d, 0), &patch).is_err(), "one kind per store");
    w.finish().unwrap();
    let store = ActivationStore::open(dir.path()).unwrap();
    assert_eq!(store.metadata().row_meta, Some(RowMetaKind::Token));
    assert_eq!(store.row_meta(0, n).unwrap().unwrap(), tokens);
    assert_eq!(store.row_meta(4, 9).unwrap().unwrap(), tokens[4..13].to_vec());
    let mut out = Vec::new();
    store.append_rows(0, n, &mut out).unwrap();
    assert_eq!(out, all);
    assert!(store.row_meta(20, 5).is_err());
    // A store without metadata says so, and refuses it.
    let plain = tempfile::tempdir().unwrap();
    let s = write(plain.path(), 4, 2, 3);
    assert_eq!(s.row_meta(0, 2).unwrap(), None);
    let mut w = StoreWriter::create(&plain.path().join("x"), 2, 3, serde_json::json!({})).unwrap();
    assert!(w.push_rows_with_meta(&rows(1, 2, 0), &tokens[..1]).is_err());
}

#[test]
fn patch_and_diffusion_metadata_round_trip_and_the_first_stores_still_read() {
    use sae_core::{RowMeta, RowMetaKind};
    let d = 2;
    let cases: [(RowMetaKind, fn(u32) -> RowMeta); 2] = [
        (RowMetaKind::Patch, |i| RowMeta::Patch { image: i / 4, row: (i / 2) % 2, col: i % 2 }),
        (RowMetaKind::Diffusion, |i| RowMeta::Diffusion { sample: i / 8, step: i / 4, y: (i / 2) % 2, x: i % 2 }),
    ];
    for (kind, make) in cases {
        let dir = tempfile::tempdir().unwrap();
        let mut w = StoreWriter::create_with_meta(dir.path(), d, 3, serde_json::json!({}), Some(kind)).unwrap();
        let meta: Vec<RowMeta> = (0..10).map(make).collect();
        w.push_rows_with_meta(&rows(10, d, 0), &meta).unwrap();
        w.finish().unwrap();
        let store = ActivationStore::open(dir.path()).unwrap();
        assert_eq!(store.row_meta(0, 10).unwrap().unwrap(), meta, "{kind:?}");
        let text = std::fs::read_to_string(dir.path().join("metadata.json")).unwrap();
        assert!(text.contains(&format!("{kind:?}").to_lowercase()), "{text}");
    }
    // `"tokens": true` (how the first stores said it) reads as token metadata.
    let dir = tempfile::tempdir().unwrap();
    let mut w = StoreWriter::create_with_meta(dir.path(), d, 3, serde_json::json!({}), Some(RowMetaKind::Token)).unwrap();
    w.push_rows_with_meta(&rows(1, d, 0), &[RowMeta::Token { id: 1, pos: 2, window: 3 }]).unwrap();
    w.finish().unwrap();
    let path = dir.path().join("metadata.json");
    let text = std::fs::read_to_string(&path).unwrap().replace("\"row_meta\": \"token\"", "\"tokens\": true");
    assert!(text.contains("\"tokens\": true"), "{text}");
    std::fs::write(&path, text).unwrap();
    let store = ActivationStore::open(dir.path()).unwrap();
    assert_eq!(store.row_meta(0, 1).unwrap().unwrap(), vec![RowMeta::Token { id: 1, pos: 2, window: 3 }]);
}

#[test]
fn shards_listed_twice_or_out_of_order_and_incomplete_stores_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let store = write(tmp.path(), 25, 2, 10);
    assert!(store.require_complete().is_ok());
    let path = tmp.path().join("metadata.json");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    // Shard 0 listed in place of shard 1: the counts still add up.
    let shards = meta["shards"].as_array_mut().unwrap();
    shards[1]["file"] = shards[0]["file"].clone();
    shards[1]["rows"] = shards[0]["rows"].clone();
    std::fs::write(&path, serde_json::to_string(&meta).unwrap()).unwrap();
    let err = ActivationStore::open(tmp.path()).unwrap_err().to_string();
    assert!(err.contains("entry 1") && err.contains("shard-000001.safetensors"), "{err}");
    // Two shards swapped.
    let mut meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    meta["shards"].as_array_mut().unwrap().swap(0, 1);
    std::fs::write(&path, serde_json::to_string(&meta).unwrap()).unwrap();
    assert!(ActivationStore::open(tmp.path()).unwrap_err().to_string().contains("out of order"));
    // A store whose writer did not finish opens (to resume it), but says so to those who want it all.
    let mut meta: serde_json::Value = serde_json::from_str(&text).unwrap();
    meta["complete"] = false.into();
    std::fs::write(&path, serde_json::to_string(&meta).unwrap()).unwrap();
    let store = ActivationStore::open(tmp.path()).unwrap();
    let err = store.require_complete().unwrap_err().to_string();
    assert!(err.contains("incomplete") && err.contains("25 rows"), "{err}");
}

#[test]
fn a_shard_truncated_while_open_is_an_error_not_a_sigbus() {
    let tmp = tempfile::tempdir().unwrap();
    let store = write(tmp.path(), 30, 4, 10);
    let shard = tmp.path().join("shard-000001.safetensors");
    let len = std::fs::metadata(&shard).unwrap().len();
    std::fs::OpenOptions::new().write(true).open(&shard).unwrap().set_len(len / 3).unwrap();
    let mut out = Vec::new();
    store.append_rows(0, 10, &mut out).unwrap();
    let err = store.append_rows(10, 10, &mut out).unwrap_err().to_string();
    assert!(err.contains("shard-000001.safetensors") && err.contains("truncated"), "{err}");
}
