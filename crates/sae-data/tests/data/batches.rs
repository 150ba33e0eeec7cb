//! The shuffled batch stream: every epoch is a permutation, and a stream restarted at a
//! position continues exactly as the original.

use proptest::prelude::*;
use sae_data::batches::{BatchStream, ShuffleSettings};
use sae_data::store::{ActivationStore, StoreWriter};

fn store(dir: &std::path::Path, n: usize) -> ActivationStore {
    let mut w = StoreWriter::create(dir, 2, 7, serde_json::json!(null)).unwrap();
    w.push_rows(&(0..n).flat_map(|i| [i as f32, -(i as f32)]).collect::<Vec<_>>()).unwrap();
    w.finish().unwrap();
    ActivationStore::open(dir).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, .. ProptestConfig::default() })]

    #[test]
    fn each_epoch_visits_every_row_once(n in 1usize..60, chunk in 1usize..9, buffer in 1usize..40, seed in any::<u64>()) {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path(), n);
        let mut stream = BatchStream::new(&s, ShuffleSettings { chunk_rows: chunk, buffer_rows: buffer, seed }, 0).unwrap();
        for _epoch in 0..2 {
            let rows = stream.next_batch(n).unwrap();
            let mut ids: Vec<usize> = rows.chunks(2).map(|r| { assert_eq!(r[0], -r[1]); r[0] as usize }).collect();
            ids.sort_unstable();
            prop_assert_eq!(ids, (0..n).collect::<Vec<_>>());
        }
    }

    #[test]
    fn restarting_at_a_position_continues_identically(n in 1usize..50, batch in 1usize..13, cut in 0usize..10, seed in any::<u64>()) {
        let tmp = tempfile::tempdir().unwrap();
        let s = store(tmp.path(), n);
        let settings = ShuffleSettings { chunk_rows: 3, buffer_rows: 10, seed };
        let mut a = BatchStream::new(&s, settings, 0).unwrap();
        let straight: Vec<Vec<f32>> = (0..12).map(|_| a.next_batch(batch).unwrap()).collect();
        let mut b = BatchStream::new(&s, settings, 0).unwrap();
        for _ in 0..cut { b.next_batch(batch).unwrap(); }
        let mut resumed = BatchStream::new(&s, settings, b.position()).unwrap();
        for want in &straight[cut..] {
            prop_assert_eq!(&resumed.next_batch(batch).unwrap(), want);
        }
    }
}

#[test]
fn different_seeds_shuffle_differently() {
    let tmp = tempfile::tempdir().unwrap();
    let s = store(tmp.path(), 200);
    let first = |seed| BatchStream::new(&s, ShuffleSettings { chunk_rows: 4, buffer_rows: 64, seed }, 0).unwrap().next_batch(50).unwrap();
    assert_eq!(first(1), first(1));
    assert_ne!(first(1), first(2));
}
