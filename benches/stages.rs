//! Throughput of each stage of the backup pipeline, in isolation, on one core.
//!
//! ```text
//! cargo bench --bench stages
//! ```
//!
//! Inputs are generated deterministically here: "random" is xorshift64* output (does not
//! compress, like photos, office documents and video), "text" is CSV rows built from a small
//! vocabulary (compresses about as well as the CSV exports and logs in a school share).
//! Results and how they relate to the end-to-end numbers are in `docs/PERFORMANCE.md`.

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};

use firesafe::format::chunker::ChunkerParams;
use firesafe::format::compress::{Compressor, decompress};
use firesafe::format::crypto::RepoKey;
use firesafe::format::pack::{BlobKind, PackWriter};

const MIB: usize = 1024 * 1024;
/// Size of the inputs for the per-stage benchmarks.
const INPUT: usize = 16 * MIB;
/// Size of one blob handed to compression, sealing and packing: the default average chunk.
const BLOB: usize = MIB;

/// xorshift64*: fast, deterministic, and its output does not compress.
fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut s = seed | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        out.extend_from_slice(&s.wrapping_mul(0x2545_F491_4F6C_DD1D).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// CSV rows (pupil, class, subject, mark, date, comment) from a small vocabulary, with numbers
/// taken from the PRNG so that the text is not a single repeated line.
fn text_bytes(len: usize, seed: u64) -> Vec<u8> {
    const NAMES: &[&str] = &[
        "Amelia", "Oliver", "Isla", "George", "Ava", "Noah", "Mia", "Arthur", "Ivy", "Muhammad",
        "Freya", "Leo", "Lily", "Harry", "Florence", "Oscar", "Sophia", "Archie", "Grace", "Henry",
    ];
    const SUBJECTS: &[&str] = &[
        "English",
        "Mathematics",
        "Science",
        "History",
        "Geography",
        "French",
        "Art",
        "Music",
        "Computing",
        "Physical Education",
        "Religious Education",
        "Design and Technology",
    ];
    const COMMENTS: &[&str] = &[
        "working at the expected standard",
        "working towards the expected standard",
        "working at greater depth",
        "homework not handed in",
        "excellent progress this term",
        "needs to show working in calculations",
    ];
    let rng = random_bytes(len / 4 + 64, seed);
    let mut out = Vec::with_capacity(len + 256);
    out.extend_from_slice(b"upn,forename,class,subject,mark,date,comment\n");
    let mut i = 0usize;
    while out.len() < len {
        let r = u64::from_le_bytes(rng[(i * 8) % (rng.len() - 8)..][..8].try_into().unwrap());
        let row = format!(
            "A{:012},{},{}{},{},{},2025-{:02}-{:02},{}\n",
            r % 1_000_000_000_000,
            NAMES[(r >> 8) as usize % NAMES.len()],
            7 + (r >> 16) % 5,
            ["A", "B", "C", "D"][(r >> 20) as usize % 4],
            SUBJECTS[(r >> 24) as usize % SUBJECTS.len()],
            (r >> 32) % 101,
            1 + (r >> 40) % 12,
            1 + (r >> 44) % 28,
            COMMENTS[(r >> 50) as usize % COMMENTS.len()],
        );
        out.extend_from_slice(row.as_bytes());
        i += 1;
    }
    out.truncate(len);
    out
}

fn configure(g: &mut BenchmarkGroup<'_, WallTime>, bytes: usize) {
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
        .throughput(Throughput::Bytes(bytes as u64));
}

fn inputs() -> (Vec<u8>, Vec<u8>) {
    (
        random_bytes(INPUT, 0x5eed_0001),
        text_bytes(INPUT, 0x5eed_0002),
    )
}

fn chunking(c: &mut Criterion) {
    let (random, text) = inputs();
    let params = ChunkerParams::default();
    let mut g = c.benchmark_group("chunk_fastcdc");
    configure(&mut g, INPUT);
    g.bench_function("random_16MiB", |b| {
        b.iter(|| params.cut(black_box(&random)))
    });
    g.bench_function("text_16MiB", |b| b.iter(|| params.cut(black_box(&text))));
    g.finish();
}

fn hashing(c: &mut Criterion) {
    let (random, _) = inputs();
    let key = RepoKey::generate();
    let mut g = c.benchmark_group("hash_blake3_keyed");
    configure(&mut g, INPUT);
    // As the walker calls it: one call per chunk of about 1 MiB.
    g.bench_function("1MiB_blobs", |b| {
        b.iter(|| {
            for blob in random.chunks(BLOB) {
                black_box(key.blob_id(black_box(blob)));
            }
        })
    });
    g.bench_function("16MiB_one_call", |b| {
        b.iter(|| key.blob_id(black_box(&random)))
    });
    g.finish();
}

fn compression(c: &mut Criterion) {
    let (random, text) = inputs();
    let mut g = c.benchmark_group("compress_zstd3");
    configure(&mut g, INPUT);
    let mut compressor = Compressor::new(3).unwrap();
    // Sanity: text shrinks, random is rejected by the sampling probe.
    let ratio = text
        .chunks(BLOB)
        .map(|b| compressor.compress(b).map_or(b.len(), |z| z.len()))
        .sum::<usize>() as f64
        / INPUT as f64;
    eprintln!(
        "compress_zstd3: text stores at {:.1}% of its size",
        ratio * 100.0
    );
    assert!(
        random
            .chunks(BLOB)
            .all(|b| compressor.compress(b).is_none())
    );

    g.bench_function("text_1MiB_blobs", |b| {
        b.iter(|| {
            for blob in text.chunks(BLOB) {
                black_box(compressor.compress(black_box(blob)));
            }
        })
    });
    g.bench_function("random_1MiB_blobs_skipped", |b| {
        b.iter(|| {
            for blob in random.chunks(BLOB) {
                black_box(compressor.compress(black_box(blob)));
            }
        })
    });
    g.finish();

    // Restore and check --read-data pay for decompression.
    let compressed: Vec<Vec<u8>> = text
        .chunks(BLOB)
        .map(|b| compressor.compress(b).unwrap())
        .collect();
    let mut g = c.benchmark_group("decompress_zstd");
    configure(&mut g, INPUT);
    g.bench_function("text_1MiB_blobs", |b| {
        b.iter(|| {
            for z in &compressed {
                black_box(decompress(black_box(z), BLOB).unwrap());
            }
        })
    });
    g.finish();
}

fn sealing(c: &mut Criterion) {
    let (random, _) = inputs();
    let key = RepoKey::generate();
    let mut g = c.benchmark_group("seal_age");
    configure(&mut g, INPUT);
    g.bench_function("seal_16MiB", |b| b.iter(|| key.seal(black_box(&random))));
    let sealed = key.seal(&random);
    g.bench_function("open_16MiB", |b| {
        b.iter(|| key.open(black_box(&sealed)).unwrap())
    });
    g.finish();
}

fn packing(c: &mut Criterion) {
    let (random, text) = inputs();
    let key = RepoKey::generate();
    let ids: Vec<_> = random.chunks(BLOB).map(|b| key.blob_id(b)).collect();
    let capacity = INPUT + INPUT / 8;
    let mut g = c.benchmark_group("pack_write");
    configure(&mut g, INPUT);
    // add (which encrypts as it goes) + finish (header, last age chunk, BLAKE3 of the object).
    g.bench_function("16x1MiB_add_finish", |b| {
        b.iter(|| {
            let mut w = PackWriter::new(&key, BlobKind::Data, capacity);
            for (blob, id) in random.chunks(BLOB).zip(&ids) {
                w.add(*id, blob, blob.len(), false)
                    .expect("writing to memory");
            }
            black_box(w.finish())
        })
    });
    // The whole worker stage for compressible data: compress then pack.
    let mut compressor = Compressor::new(3).unwrap();
    g.bench_function("16x1MiB_text_compress_add_finish", |b| {
        b.iter(|| {
            let mut w = PackWriter::new(&key, BlobKind::Data, capacity);
            for (blob, id) in text.chunks(BLOB).zip(&ids) {
                match compressor.compress(blob) {
                    Some(z) => w.add(*id, &z, blob.len(), true),
                    None => w.add(*id, blob, blob.len(), false),
                }
                .expect("writing to memory");
            }
            black_box(w.finish())
        })
    });
    g.finish();
}

criterion_group!(stages, chunking, hashing, compression, sealing, packing);
criterion_main!(stages);
