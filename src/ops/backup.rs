//! Backup: read a source once and store what is new.
//!
//! ```text
//! walker thread:  walk -> compare with parent -> read -> FastCDC -> keyed BLAKE3 -> dedup
//!                    | new blobs (bounded channel: memory is bounded by its capacity)
//! worker threads: zstd (when it pays) -> append to a data or tree pack -> age encrypt
//!                    | sealed packs (bounded channel)
//! uploader:       put packs (a few at a time) -> every N packs, an index object
//! then:           last index object -> snapshot
//! ```
//!
//! Order is what makes a kill at any instant safe: a pack is listed in an index object only after
//! it is stored, and the snapshot is written only after the index objects that list every blob it
//! references. An interrupted backup leaves at most packs that nothing references yet; the next
//! backup reuses every blob an index object lists.

mod packs;
mod parents;
mod read;
mod signals;
mod walk;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use chrono::Utc;
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::error::{Error, Result};
use crate::format::pack::BlobKind;
use crate::format::tree::Name;
use crate::id::Id;
use crate::ops::progress::{Counters, Ticker};
use crate::plan::ransomware::{self, Detection};
use crate::store::blobs::{self, BlobReader};
use crate::store::damage;
use crate::store::index::{self, Index, IndexPack};
use crate::store::lock::TargetLock;
use crate::store::repo::{Repository, hostname, pack_key};
use crate::store::snapshot::{self, Catalog, Listed, Snapshot, SnapshotStats, Warning};
use crate::store::spill::IdSet;
use packs::{Blob, PackFile, pack_worker, upload};
use parents::ParentTrees;
use read::{Chunking, ReadJob};
use walk::{Walk, io_reason};

/// What to back up and how.
#[derive(Clone, Debug)]
pub struct BackupOptions {
    /// The share label recorded in the snapshot (`curriculum`).
    pub source: String,
    pub paths: Vec<PathBuf>,
    pub tags: Vec<String>,
    /// zstd level; `None` uses the repository's default.
    pub compression: Option<i32>,
    /// Threads that compress and encrypt.
    pub workers: usize,
    /// Threads that read, chunk and hash files (several files at once).
    pub readers: usize,
    /// Pack uploads in flight at once; 0 for the target's [`Target::transfers`].
    ///
    /// [`Target::transfers`]: crate::store::target::Target::transfers
    pub uploads: usize,
    /// New blobs waiting for a worker. With chunks of at most 8 MiB, this bounds the memory the
    /// reader can run ahead by.
    pub queue: usize,
    /// Packs per index object.
    pub index_every: usize,
    /// Read every file even if the parent snapshot says it is unchanged.
    pub force_read: bool,
    /// Show a progress line on the terminal.
    pub progress: bool,
    /// Set (by a signal handler) to stop: no new files are started, the packs already queued
    /// are stored and indexed, and no snapshot is written.
    pub cancel: Option<Arc<AtomicBool>>,
    /// Ransomware detection: compare what changed with the parent snapshot and the source's
    /// history, and mark the snapshot suspect when the signals reach the threshold. `None`
    /// turns it off (no look is noted for the files read either).
    pub ransomware: Option<Detection>,
}

impl BackupOptions {
    pub fn new(source: impl Into<String>, paths: Vec<PathBuf>) -> BackupOptions {
        let workers = std::thread::available_parallelism()
            .map_or(2, |n| n.get())
            .clamp(1, 8);
        BackupOptions {
            source: source.into(),
            paths,
            tags: Vec::new(),
            compression: None,
            workers,
            readers: workers,
            uploads: 0,
            queue: 2 * workers + 2,
            index_every: 64,
            force_read: false,
            progress: false,
            cancel: None,
            ransomware: Some(Detection::default()),
        }
    }
}

/// A finished backup.
#[derive(Debug)]
pub struct BackupReport {
    pub id: Id,
    pub snapshot: Snapshot,
    /// Index objects that could not be read when the backup began (their data was stored again).
    pub damaged_index: Vec<String>,
    /// Packs this backup found damaged when it read the parent snapshot's trees: (pack key,
    /// what is wrong). Each is marked damaged on the target and its data was stored again.
    pub damaged_packs: Vec<(String, String)>,
}

/// Backs up `options.paths` as one snapshot of `options.source`.
///
/// The pipeline of the module's diagram: the pack workers and the reader threads are spawned,
/// the walker runs on a blocking thread, and the uploader runs here; the snapshot is written
/// once all of them are done.
pub async fn backup(repo: &Repository, options: &BackupOptions) -> Result<BackupReport> {
    let start = Utc::now();
    if options.source.trim().is_empty() {
        return Err(Error::Usage(
            "--source must name the share (for example curriculum)".into(),
        ));
    }
    if !crate::format::snapshot::is_plain_name(&options.source) {
        return Err(Error::Usage(format!(
            "--source {:?} is not a plain name; {}",
            options.source,
            crate::format::snapshot::PLAIN_NAME_RULE
        )));
    }
    let roots = resolve_roots(&options.paths)?;
    let compression = options.compression.unwrap_or(repo.config().compression);
    if !(0..=22).contains(&compression) {
        return Err(Error::Usage(
            "the compression level must be 0 (off) to 22".into(),
        ));
    }

    // Held until the snapshot is written, so that no prune deletes what this backup reuses.
    let lock = TargetLock::shared(repo.target(), "backup").await?;
    let counters = Arc::new(Counters::default());
    let mut damaged_packs: Vec<(String, String)> = Vec::new();
    let mut unsure: Option<HashSet<Id>> = None;
    // What walks before the last read and stored: the work of this backup too.
    let mut earlier = SnapshotStats::default();
    let mut pass = 1;
    let (known, walked) = loop {
        let known = Known::load(repo, options, unsure.as_ref()).await?;
        let ticker = (options.progress && pass == 1)
            .then(|| progress(&counters, &options.source, known.parent.as_ref()));
        let walked = walk_and_store(repo, options, &roots, compression, &known, &counters).await?;
        drop(ticker);
        // A parent tree that could not be read: its pack is marked damaged, and the share is
        // walked again with that known from the start, so that nothing of this snapshot is
        // built on the damaged pack (data and trees below it are stored again).
        let mut bad: Vec<(Id, String)> = walked
            .served
            .bad
            .iter()
            .filter(|(pack, _)| known.in_place.loaded.present.contains_key(*pack))
            .map(|(p, w)| (*p, w.clone()))
            .collect();
        bad.sort();
        if bad.is_empty() || pass == MAX_PASSES {
            break (known, walked);
        }
        for (pack, why) in bad {
            let why = match damage::mark(repo.target(), &pack).await {
                Ok(()) => why,
                Err(e) => format!("{why}; marking it damaged failed: {e}"),
            };
            damaged_packs.push((pack_key(&pack), why));
        }
        unsure
            .get_or_insert_with(HashSet::new)
            .extend(walked.served.intact.iter().copied());
        let s = &walked.walked.1;
        earlier.blobs_added += s.blobs_added;
        earlier.bytes_added += s.bytes_added;
        earlier.bytes_read += s.bytes_read;
        earlier.packs_added += walked.packs_added;
        earlier.bytes_stored += walked.stored;
        pass += 1;
    };
    damaged_packs.sort();
    let Pass {
        walked: (root, mut stats, warnings, observed),
        packs_added,
        stored,
        ..
    } = walked;
    stats.packs_added = packs_added + earlier.packs_added;
    stats.bytes_stored = stored + earlier.bytes_stored;
    stats.blobs_added += earlier.blobs_added;
    stats.bytes_added += earlier.bytes_added;
    stats.bytes_read += earlier.bytes_read;
    let suspect = match (&options.ransomware, observed) {
        (Some(d), Some(o)) => ransomware::score(&o, &known.history, d),
        _ => None,
    };

    let mut snap = snapshot_of(options, start, known.parent, root, stats, warnings);
    snap.suspect = suspect;
    lock.ensure_fresh()?;
    let id = snapshot::save(repo, &snap).await?;
    lock.release().await;
    Ok(BackupReport {
        id,
        snapshot: snap,
        damaged_index: known.damaged_index,
        damaged_packs,
    })
}

/// The most walks one backup makes: each after the first knows the packs the one before found
/// damaged.
const MAX_PASSES: usize = 3;

/// One walk of the share, with what it stored.
struct Pass {
    walked: walk::Walked,
    packs_added: u64,
    stored: u64,
    /// What the parent tree server met.
    served: parents::Served,
}

/// The pipeline of the module's diagram, once: the pack workers and the reader threads are
/// spawned, the walker runs on a blocking thread, the uploader and the parent tree server run
/// here.
async fn walk_and_store(
    repo: &Repository,
    options: &BackupOptions,
    roots: &[(Name, PathBuf)],
    compression: i32,
    known: &Known,
    counters: &Arc<Counters>,
) -> Result<Pass> {
    let (work_tx, work_rx) = crossbeam_channel::bounded::<Blob>(options.queue.max(1));
    let (pack_tx, pack_rx) = tokio::sync::mpsc::channel::<Result<PackFile>>(1);
    let stored = Arc::new(AtomicU64::new(0));
    let workers = spawn_pack_workers(repo, options, compression, work_rx, pack_tx, &stored)?;

    // Reader threads read, chunk and hash files, several at once; the walker assembles trees.
    let chunking = Arc::new(Chunking {
        chunker: repo.config().chunker,
        key: repo.shared_key(),
        in_place: Arc::clone(&known.in_place),
        seen: Mutex::new(IdSet::default()),
        work: work_tx,
        counters: Arc::clone(counters),
        blobs_added: AtomicU64::new(0),
        bytes_added: AtomicU64::new(0),
        bytes_read: AtomicU64::new(0),
        looks: options.ransomware.is_some(),
    });
    let (jobs_tx, jobs_rx) = crossbeam_channel::bounded::<ReadJob>(256);
    let readers = spawn_readers(options, &chunking, jobs_rx);
    let (parent_trees, requests) = match &known.parent {
        Some(_) => {
            let (client, requests) = ParentTrees::channel();
            (client, Some(requests))
        }
        None => (ParentTrees::none(), None),
    };
    let walker = {
        let gather = options.ransomware.as_ref().map(|d| {
            let parent_files = known.parent.as_ref().map(|p| p.snapshot.stats.files);
            signals::Gather::new(d, roots, parent_files)
        });
        let walk = Walk::new(
            options.cancel.clone(),
            Arc::clone(&chunking),
            jobs_tx,
            gather,
            options.force_read,
        );
        let parent_root = known.parent.as_ref().map(|p| p.snapshot.tree);
        let roots = roots.to_vec();
        tokio::task::spawn_blocking(move || {
            let walker = std::thread::Builder::new()
                .name("firesafe-walk".into())
                .stack_size(walk::WALK_STACK)
                .spawn(move || walk.run(&roots, parent_root, &parent_trees, readers))
                .map_err(|e| Error::Interrupted(format!("cannot start the walker thread: {e}")))?;
            walker
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
        })
    };
    drop(chunking);
    // One pack more than there are pack workers (see [`blobs::tree_cache`]).
    let cache = blobs::tree_cache(repo, options.workers.max(1) + 1);
    let reader = BlobReader::new(repo, &known.in_place.loaded.index, cache);
    let server = async {
        match requests {
            Some(r) => parents::serve(&reader, r).await,
            None => parents::Served::default(),
        }
    };

    // The uploader's error comes first: when an upload fails, the walker only sees its queue close.
    let (walked, uploaded, served) = tokio::join!(
        walker,
        upload_packs(repo, pack_rx, options, counters),
        server
    );
    let packs_added = uploaded?;
    if let Some(e) = served.failed {
        return Err(e);
    }
    if options
        .cancel
        .as_ref()
        .is_some_and(|c| c.load(Ordering::Relaxed))
    {
        return Err(Error::Interrupted(format!(
            "backup of {} interrupted: {} stored and indexed, no snapshot written; the next backup continues from there",
            options.source,
            crate::plan::words::count_s(packs_added, "pack"),
        )));
    }
    let walked = walked.expect("the walker does not panic")?;
    for w in workers {
        w.join().expect("a pack worker does not panic");
    }
    Ok(Pass {
        walked,
        packs_added,
        stored: stored.load(Ordering::Relaxed),
        served,
    })
}

/// What the repository holds already, as a backup starts.
struct Known {
    /// The index, with the packs on the target.
    in_place: Arc<InPlace>,
    /// Index objects that could not be read.
    damaged_index: Vec<String>,
    /// The snapshot to compare with (the source's newest complete one).
    parent: Option<Listed>,
    /// The stats of the source's recent snapshots, newest first: complete, made against a
    /// parent, and not suspect (the volume signals compare with these).
    history: Vec<SnapshotStats>,
}

impl Known {
    /// `unsure`: set after a walk found a parent tree damaged, the trees that walk read intact.
    /// Below a tree that could not be read the parent's trees are unknown, and may be in
    /// damaged packs too: a tree then counts as stored only if it was read intact.
    async fn load(
        repo: &Repository,
        options: &BackupOptions,
        unsure: Option<&HashSet<Id>>,
    ) -> Result<Known> {
        let loaded = Index::load(repo).await?;
        let damaged_index: Vec<String> = loaded.damaged.iter().map(|(k, _)| k.clone()).collect();
        let catalog = Catalog::load(repo).await?;
        let parent = catalog.latest_complete(&options.source).cloned();
        let history = history(&catalog, options);
        Ok(Known {
            in_place: Arc::new(InPlace {
                loaded,
                unsure: unsure.cloned(),
            }),
            damaged_index,
            parent,
            history,
        })
    }
}

/// The index as a backup starts, and which of its blobs count as stored. Only blobs whose pack
/// is really there (at the size the index records, not marked damaged) count: data in a lost,
/// truncated or damaged pack is read and stored again, so a backup heals the damage instead of
/// referencing it.
struct InPlace {
    loaded: index::LoadedIndex,
    /// See [`Known::load`].
    unsure: Option<HashSet<Id>>,
}

impl InPlace {
    fn contains(&self, id: &Id) -> bool {
        self.loaded.index.get(id).is_some_and(|(pack, _)| {
            self.loaded.is_present(pack)
                && self
                    .unsure
                    .as_ref()
                    .is_none_or(|read| pack.kind != BlobKind::Tree || read.contains(id))
        })
    }
}

/// The stats the volume signals compare with: see [`Known::history`].
fn history(catalog: &Catalog, options: &BackupOptions) -> Vec<SnapshotStats> {
    let Some(d) = &options.ransomware else {
        return Vec::new();
    };
    catalog
        .snapshots
        .iter()
        .rev()
        .map(|l| &l.snapshot)
        .filter(|s| s.source == options.source && !s.partial && s.parent.is_some())
        .filter(|s| s.suspect.is_none())
        .take(d.history)
        .map(|s| s.stats.clone())
        .collect()
}

/// The progress line: the share, files so far (of the parent snapshot's count, with the time
/// left, when there is a parent), bytes read and uploaded.
fn progress(counters: &Arc<Counters>, source: &str, parent: Option<&Listed>) -> Ticker {
    let c = Arc::clone(counters);
    let source = source.to_string();
    let message = move || {
        format!(
            "{source}: {} read, {} uploaded",
            bytesize::ByteSize(c.bytes.load(Ordering::Relaxed)),
            bytesize::ByteSize(c.uploaded.load(Ordering::Relaxed)),
        )
    };
    let files = Arc::clone(counters);
    match parent.map(|p| p.snapshot.stats.files).filter(|n| *n > 0) {
        Some(total) => Ticker::count_bar(
            total,
            move || files.files.load(Ordering::Relaxed),
            move || format!("files, {}", message()),
        ),
        None => Ticker::spinner(move || {
            format!(
                "{} files, {}",
                files.files.load(Ordering::Relaxed),
                message()
            )
        }),
    }
}

/// Starts `options.workers` pack workers, fed by `blobs` and sending finished packs to `packs`.
fn spawn_pack_workers(
    repo: &Repository,
    options: &BackupOptions,
    compression: i32,
    blobs: crossbeam_channel::Receiver<Blob>,
    packs: tokio::sync::mpsc::Sender<Result<PackFile>>,
    stored: &Arc<AtomicU64>,
) -> Result<Vec<JoinHandle<()>>> {
    let scratch = repo.target().scratch_dir()?;
    let mut workers = Vec::new();
    for _ in 0..options.workers.max(1) {
        let rx = blobs.clone();
        let tx = packs.clone();
        let key = repo.shared_key();
        let pack_size = repo.config().pack_size as u64;
        let stored = Arc::clone(stored);
        let scratch = scratch.clone();
        workers.push(std::thread::spawn(move || {
            pack_worker(rx, tx, &key, &scratch, pack_size, compression, &stored)
        }));
    }
    Ok(workers)
}

/// Starts `options.readers` reader threads, taking files from `jobs`.
fn spawn_readers(
    options: &BackupOptions,
    chunking: &Arc<Chunking>,
    jobs: crossbeam_channel::Receiver<ReadJob>,
) -> Vec<JoinHandle<()>> {
    let mut readers = Vec::new();
    for _ in 0..options.readers.max(1) {
        let rx = jobs.clone();
        let chunking = Arc::clone(chunking);
        let cancel = options.cancel.clone();
        readers.push(std::thread::spawn(move || {
            chunking.serve(rx, cancel.as_deref())
        }));
    }
    readers
}

/// The uploader: stores packs as the workers finish them, a few at once, and writes an index
/// object for every `index_every` packs stored or [`index::OBJECT_BLOBS`] blobs, whichever comes
/// first (and one for the rest at the end). Returns how many packs it stored.
async fn upload_packs(
    repo: &Repository,
    mut pack_rx: tokio::sync::mpsc::Receiver<Result<PackFile>>,
    options: &BackupOptions,
    counters: &Counters,
) -> Result<u64> {
    let mut pending: Vec<IndexPack> = Vec::new();
    let mut in_flight = FuturesUnordered::new();
    let mut packs_added = 0u64;
    let mut finish = |result: Result<IndexPack>, pending: &mut Vec<IndexPack>| -> Result<bool> {
        let p = result?;
        counters.uploaded.fetch_add(p.size, Ordering::Relaxed);
        packs_added += 1;
        pending.push(p);
        let blobs: usize = pending.iter().map(|p| p.blobs.len()).sum();
        Ok(pending.len() >= options.index_every.max(1) || blobs >= index::OBJECT_BLOBS)
    };
    // Take new packs while fewer than `uploads` are in flight, and keep the uploads in flight
    // moving while waiting for the next pack.
    let at_once = match options.uploads {
        0 => repo.target().transfers(),
        n => n,
    };
    let mut open = true;
    while open {
        tokio::select! {
            pack = pack_rx.recv(), if in_flight.len() < at_once => match pack {
                Some(pack) => in_flight.push(upload(repo, pack?)),
                None => open = false,
            },
            Some(done) = in_flight.next(), if !in_flight.is_empty() => {
                if finish(done, &mut pending)? {
                    index::save(repo, std::mem::take(&mut pending)).await?;
                }
            }
        }
    }
    while let Some(done) = in_flight.next().await {
        if finish(done, &mut pending)? {
            index::save(repo, std::mem::take(&mut pending)).await?;
        }
    }
    if !pending.is_empty() {
        index::save(repo, pending).await?;
    }
    Ok(packs_added)
}

/// The snapshot of a finished backup.
fn snapshot_of(
    options: &BackupOptions,
    start: chrono::DateTime<Utc>,
    parent: Option<Listed>,
    root: Id,
    stats: SnapshotStats,
    warnings: Vec<Warning>,
) -> Snapshot {
    Snapshot {
        source: options.source.clone(),
        host: hostname(),
        paths: options
            .paths
            .iter()
            .map(|p| absolute(p).display().to_string())
            .collect(),
        tags: options.tags.clone(),
        start,
        end: Utc::now(),
        program_version: crate::VERSION.to_string(),
        parent: parent.map(|p| p.id),
        tree: root,
        partial: !warnings.is_empty(),
        warnings,
        stats,
        suspect: None,
    }
}

/// Checks the paths and names the root entries after their last components.
fn resolve_roots(paths: &[PathBuf]) -> Result<Vec<(Name, PathBuf)>> {
    if paths.is_empty() {
        return Err(Error::Usage("give at least one path to back up".into()));
    }
    let mut roots: Vec<(Name, PathBuf)> = Vec::new();
    for p in paths {
        if let Err(e) = std::fs::symlink_metadata(p) {
            return Err(Error::NotFound(format!(
                "source path {} cannot be read ({}); check the path (is the share mounted?)",
                p.display(),
                io_reason(&e)
            )));
        }
        let abs = absolute(p);
        let name = match abs.file_name() {
            Some(n) => Name::from_os(n),
            None => Name(b"root".to_vec()),
        };
        if let Some((_, other)) = roots.iter().find(|(n, _)| *n == name) {
            return Err(Error::Usage(format!(
                "{} and {} would both appear as \"{}\" in the snapshot; back them up as separate sources",
                other.display(),
                abs.display(),
                name.display()
            )));
        }
        roots.push((name, abs));
    }
    Ok(roots)
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}
