//! `find` and `versions` across many snapshots: how long a search takes once the repository's
//! packs are at hand (a second, warm run after a first), on a repository of 200 snapshots of a
//! 20,000-file share in which a few files change between snapshots.
//!
//! ```text
//! cargo bench --bench find
//! ```
//!
//! The repository is built once, in a temporary directory, with the library's own backup (about
//! a minute). Each timed run starts with nothing remembered about trees, so it measures the
//! search itself: reading the trees that differ between snapshots and matching names. Results
//! are in `docs/PERFORMANCE.md`.

use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};

use firesafe::format::crypto::{self, Recipient};
use firesafe::ops::backup::{self, BackupOptions};
use firesafe::ops::find::{self, FindOptions, VersionsOptions};
use firesafe::store::blobs::BlobReader;
use firesafe::store::index::Index;
use firesafe::store::repo::{InitOptions, Repository};
use firesafe::store::snapshot::Catalog;
use firesafe::store::target::{Location, Target, TargetOptions};

const SNAPSHOTS: usize = 200;
/// 20 folders of 20 folders of 50 files.
const TOP: usize = 20;
const SUB: usize = 20;
const FILES: usize = 50;
const TOTAL: usize = TOP * SUB * FILES;
/// Files rewritten between two snapshots.
const CHANGED: usize = 3;

fn file(root: &Path, n: usize) -> std::path::PathBuf {
    let (top, rest) = (n / (SUB * FILES), n % (SUB * FILES));
    root.join(format!("dept-{top:02}"))
        .join(format!("class-{:02}", rest / FILES))
        .join(format!("doc-{n:05}.txt"))
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

/// A repository holding `SNAPSHOTS` snapshots of a `TOTAL`-file share.
async fn build(dir: &Path) -> Repository {
    let share = dir.join("share");
    for n in 0..TOTAL {
        write(&file(&share, n), &format!("document {n}, first draft\n"));
    }
    let url = dir.join("repo").display().to_string();
    let target = Target::open(
        &url,
        &Location::parse(&url).expect("location"),
        &TargetOptions::default(),
        true,
    )
    .expect("target");
    let (_, public) = crypto::generate_identity_file();
    let who = Recipient::parse_x25519(&public).expect("recipient");
    let repo = Repository::init(target, &[(who, "bench".into())], &InitOptions::default())
        .await
        .expect("init");
    let started = Instant::now();
    for s in 0..SNAPSHOTS {
        for c in 0..CHANGED {
            let n = (s * 7919 + c * 104_729) % TOTAL;
            write(&file(&share, n), &format!("document {n}, edit {s}\n"));
        }
        // One of the files the benchmark looks for changes every 20 snapshots.
        if s % 20 == 0 {
            write(&file(&share, 42), &format!("document 42, edit {s}\n"));
        }
        let options = BackupOptions::new("school", vec![share.clone()]);
        backup::backup(&repo, &options).await.expect("backup");
    }
    eprintln!(
        "built {SNAPSHOTS} snapshots of {TOTAL} files in {:.0?}",
        started.elapsed()
    );
    repo
}

fn search(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let dir = tempfile::tempdir().expect("tempdir");
    let repo = runtime.block_on(build(dir.path()));
    let catalog = runtime.block_on(Catalog::load(&repo)).expect("catalog");
    let index = runtime.block_on(Index::load(&repo)).expect("index").index;
    let reader = BlobReader::new(&repo, &index, 1 << 30);

    let by_name = FindOptions {
        pattern: "doc-0004?.txt".into(),
        ..FindOptions::default()
    };
    let by_path = FindOptions {
        pattern: "share/dept-00/**/doc-0004?.txt".into(),
        ..FindOptions::default()
    };
    let one = VersionsOptions {
        path: "share/dept-00/class-00/doc-00042.txt".into(),
        source: None,
    };
    // The first (cold) run reads every pack; it is reported, not timed by criterion.
    let started = Instant::now();
    let first = runtime
        .block_on(find::find(&reader, &catalog.snapshots, &by_name))
        .expect("find");
    eprintln!(
        "first run: {} snapshots, {} trees read, {} versions in {:.0?}",
        first.snapshots,
        first.trees_read,
        first.versions.len(),
        started.elapsed()
    );

    let mut g = c.benchmark_group("find_200_snapshots_20k_files");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(10));
    g.bench_function("find_by_name", |b| {
        b.iter(|| {
            runtime
                .block_on(find::find(&reader, &catalog.snapshots, &by_name))
                .expect("find")
        })
    });
    g.bench_function("find_by_whole_path", |b| {
        b.iter(|| {
            runtime
                .block_on(find::find(&reader, &catalog.snapshots, &by_path))
                .expect("find")
        })
    });
    g.bench_function("versions_of_one_file", |b| {
        b.iter(|| {
            runtime
                .block_on(find::versions(&reader, &catalog.snapshots, &one))
                .expect("versions")
        })
    });
    g.finish();
}

criterion_group!(benches, search);
criterion_main!(benches);
