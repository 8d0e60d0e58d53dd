//! Property tests for chunking: the chunks are the input, and boundaries are content-defined.

use firesafe::format::chunker::ChunkerParams;
use proptest::prelude::*;

fn small() -> ChunkerParams {
    ChunkerParams {
        min_size: 1024,
        avg_size: 4096,
        max_size: 16384,
        ..ChunkerParams::default()
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn concatenated_chunks_equal_the_input(seed in any::<u64>(), len in 0usize..200_000) {
        let data = crate::support::noise(seed, len);
        let cuts = small().cut(&data);
        let mut joined = Vec::with_capacity(len);
        let mut expected_offset = 0;
        for (off, l) in &cuts {
            prop_assert_eq!(*off, expected_offset);
            prop_assert!(*l <= 16384);
            joined.extend_from_slice(&data[*off..off + l]);
            expected_offset += l;
        }
        prop_assert_eq!(joined, data.clone());
        let mut streamed = Vec::new();
        small().stream(&data[..], |c| { streamed.extend_from_slice(&c); Ok(()) }).unwrap();
        prop_assert_eq!(streamed, data);
    }

    #[test]
    fn boundaries_are_stable_after_an_early_insertion(
        seed in any::<u64>(),
        at in 0usize..5_000,
        insert in proptest::collection::vec(any::<u8>(), 1..500),
    ) {
        let data = crate::support::noise(seed, 300_000);
        let mut edited = data[..at].to_vec();
        edited.extend_from_slice(&insert);
        edited.extend_from_slice(&data[at..]);
        let chunks = |d: &[u8]| -> Vec<Vec<u8>> {
            small().cut(d).into_iter().map(|(o, l)| d[o..o + l].to_vec()).collect()
        };
        let before = chunks(&data);
        let after = chunks(&edited);
        // Chunks before the insertion are untouched, and from shortly after it on, the file is
        // chunked identically: at most a handful of chunks around the insertion change.
        let prefix = before.iter().zip(after.iter()).take_while(|(a, b)| a == b).count();
        let suffix = before.iter().rev().zip(after.iter().rev()).take_while(|(a, b)| a == b).count();
        prop_assert!(prefix + suffix + 6 >= before.len(), "only {} + {} of {} chunks survived", prefix, suffix, before.len());
    }
}
