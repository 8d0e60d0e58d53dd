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

use std::collections::{HashMap, HashSet};
use std::fs::{File, Metadata};
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use futures::StreamExt;
use futures::stream::FuturesUnordered;

use crate::error::{Error, Result};
use crate::format::chunker::ChunkerParams;
use crate::format::compress::Compressor;
use crate::format::crypto::RepoKey;
use crate::format::pack::{BlobKind, PackHeader, PackWriter};
use crate::format::tree::{Name, Node, NodeKind, Tree, Xattr};
use crate::id::Id;
use crate::ops::progress::{Counters, Ticker};
use crate::store::blobs::BlobReader;
use crate::store::index::{self, Index, IndexPack};
use crate::store::lock::TargetLock;
use crate::store::repo::{Repository, hostname, pack_key};
use crate::store::snapshot::{self, Catalog, Snapshot, SnapshotStats, Warning};

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
    /// Pack uploads in flight at once.
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
            uploads: 2,
            queue: 2 * workers + 2,
            index_every: 64,
            force_read: false,
            progress: false,
            cancel: None,
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
}

/// A new blob on its way to a worker.
struct Blob {
    kind: BlobKind,
    id: Id,
    data: Vec<u8>,
}

/// Backs up `options.paths` as one snapshot of `options.source`.
pub async fn backup(repo: &Repository, options: &BackupOptions) -> Result<BackupReport> {
    let start = Utc::now();
    if options.source.trim().is_empty() {
        return Err(Error::Usage(
            "--source must name the share (for example curriculum)".into(),
        ));
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
    let loaded = Index::load(repo).await?;
    let damaged_index: Vec<String> = loaded.damaged.iter().map(|(k, _)| k.clone()).collect();
    // Only blobs whose pack is really there (at the size the index records) count as stored:
    // data in a lost or truncated pack is read and stored again, so a backup heals the damage
    // instead of referencing it.
    let in_place: HashSet<Id> = loaded
        .index
        .blobs()
        .filter(|(_, loc)| loaded.is_present(&loaded.index.packs[loc.pack as usize]))
        .map(|(id, _)| *id)
        .collect();
    let index = loaded.index;
    let catalog = Catalog::load(repo).await?;
    let parent = if options.force_read {
        None
    } else {
        catalog.latest_complete(&options.source).cloned()
    };
    let parent_trees = match &parent {
        Some(p) => load_trees(repo, &index, p.snapshot.tree)
            .await
            .unwrap_or_default(),
        None => HashMap::new(),
    };

    let counters = Arc::new(Counters::default());
    let ticker = options.progress.then(|| {
        let c = Arc::clone(&counters);
        Ticker::spinner(move || {
            format!(
                "{} files, {} read, {} uploaded",
                c.files.load(Ordering::Relaxed),
                bytesize::ByteSize(c.bytes.load(Ordering::Relaxed)),
                bytesize::ByteSize(c.uploaded.load(Ordering::Relaxed)),
            )
        })
    });

    let (work_tx, work_rx) = crossbeam_channel::bounded::<Blob>(options.queue.max(1));
    let (pack_tx, pack_rx) = tokio::sync::mpsc::channel::<Result<PackFile>>(1);
    let scratch = repo.target().scratch_dir()?;
    let stored = Arc::new(AtomicU64::new(0));

    let mut workers = Vec::new();
    for _ in 0..options.workers.max(1) {
        let rx = work_rx.clone();
        let tx = pack_tx.clone();
        let key = repo.shared_key();
        let pack_size = repo.config().pack_size as u64;
        let stored = Arc::clone(&stored);
        let scratch = scratch.clone();
        workers.push(std::thread::spawn(move || {
            pack_worker(rx, tx, &key, &scratch, pack_size, compression, &stored)
        }));
    }
    drop(work_rx);
    drop(pack_tx);

    // Reader threads read, chunk and hash files, several at once; the walker assembles trees.
    let chunking = Arc::new(Chunking {
        chunker: repo.config().chunker,
        key: repo.shared_key(),
        seen: Mutex::new(in_place),
        work: work_tx,
        counters: Arc::clone(&counters),
        blobs_added: AtomicU64::new(0),
        bytes_added: AtomicU64::new(0),
        bytes_read: AtomicU64::new(0),
    });
    let (jobs_tx, jobs_rx) = crossbeam_channel::bounded::<ReadJob>(256);
    let mut readers = Vec::new();
    for _ in 0..options.readers.max(1) {
        let rx = jobs_rx.clone();
        let chunking = Arc::clone(&chunking);
        let cancel = options.cancel.clone();
        readers.push(std::thread::spawn(move || {
            let mut buf = Vec::new();
            for job in rx {
                if cancel.as_ref().is_some_and(|c| c.load(Ordering::Relaxed)) {
                    let _ = job.reply.send(Err(ReadError::Stopped));
                    continue;
                }
                let result = chunking.read_file(&mut buf, &job.path, job.size_hint);
                let _ = job.reply.send(result);
            }
        }));
    }
    drop(jobs_rx);

    let walker = {
        let mut walk = Walk {
            cancel: options.cancel.clone(),
            chunking: Arc::clone(&chunking),
            jobs: jobs_tx,
            stats: SnapshotStats::default(),
            warnings: Vec::new(),
            users: HashMap::new(),
            groups: HashMap::new(),
            links: HashMap::new(),
        };
        let parent_root = parent.as_ref().map(|p| p.snapshot.tree);
        tokio::task::spawn_blocking(move || {
            let root = walk.root(&roots, parent_root, &parent_trees);
            // Closing the job queue lets the readers finish; they hold the last senders of
            // the blob queue, so the pack workers then finish too.
            drop(walk.jobs);
            for r in readers {
                r.join().expect("a reader thread does not panic");
            }
            let c = &walk.chunking;
            walk.stats.blobs_added = c.blobs_added.load(Ordering::Relaxed);
            walk.stats.bytes_added = c.bytes_added.load(Ordering::Relaxed);
            walk.stats.bytes_read = c.bytes_read.load(Ordering::Relaxed);
            root.map(|root| (root, walk.stats, walk.warnings))
        })
    };
    drop(chunking);

    let uploads = async move {
        let mut pack_rx = pack_rx;
        let mut pending: Vec<IndexPack> = Vec::new();
        let mut in_flight = FuturesUnordered::new();
        let mut packs_added = 0u64;
        let mut finish =
            |result: Result<IndexPack>, pending: &mut Vec<IndexPack>| -> Result<bool> {
                let p = result?;
                counters.uploaded.fetch_add(p.size, Ordering::Relaxed);
                packs_added += 1;
                pending.push(p);
                Ok(pending.len() >= options.index_every.max(1))
            };
        // Take new packs while fewer than `uploads` are in flight, and keep the uploads in
        // flight moving while waiting for the next pack.
        let mut open = true;
        while open {
            tokio::select! {
                pack = pack_rx.recv(), if in_flight.len() < options.uploads.max(1) => match pack {
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
        Ok::<u64, Error>(packs_added)
    };

    // The uploader's error comes first: when an upload fails, the walker only sees its queue close.
    let (walked, uploaded) = tokio::join!(walker, uploads);
    let packs_added = uploaded?;
    if options
        .cancel
        .as_ref()
        .is_some_and(|c| c.load(Ordering::Relaxed))
    {
        return Err(Error::Interrupted(format!(
            "backup of {} interrupted: {packs_added} pack(s) stored and indexed, no snapshot written; the next backup continues from there",
            options.source
        )));
    }
    let walked = walked.expect("the walker does not panic")?;
    for w in workers {
        w.join().expect("a pack worker does not panic");
    }
    drop(ticker);
    let (root, mut stats, warnings) = walked;
    stats.packs_added = packs_added;
    stats.bytes_stored = stored.load(Ordering::Relaxed);

    let snap = Snapshot {
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
    };
    lock.ensure_fresh()?;
    let id = snapshot::save(repo, &snap).await?;
    lock.release().await;
    Ok(BackupReport {
        id,
        snapshot: snap,
        damaged_index,
    })
}

/// A pack written to a file in the target's scratch directory, encrypted and complete.
struct PackFile {
    /// BLAKE3 of the file: the object's name.
    id: Id,
    path: PathBuf,
    size: u64,
    header: PackHeader,
}

/// Where a pack's encrypted bytes go while it is built: a buffered file, hashed on the way.
struct PackSink {
    file: std::io::BufWriter<File>,
    hasher: blake3::Hasher,
    size: u64,
}

impl std::io::Write for PackSink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.file.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.size += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

async fn upload(repo: &Repository, pack: PackFile) -> Result<IndexPack> {
    repo.target()
        .put_file(&pack_key(&pack.id), &pack.path, pack.size)
        .await?;
    Ok(IndexPack {
        id: pack.id,
        kind: pack.header.kind,
        size: pack.size,
        blobs: pack.header.blobs,
    })
}

/// Compresses and packs blobs until the channel closes; returns when its last packs are sent.
/// Each pack is streamed to a file in `scratch` as it is built, so no pack is held in memory.
fn pack_worker(
    rx: crossbeam_channel::Receiver<Blob>,
    tx: tokio::sync::mpsc::Sender<Result<PackFile>>,
    key: &RepoKey,
    scratch: &Path,
    pack_size: u64,
    level: i32,
    stored: &AtomicU64,
) {
    let result = (|| -> Result<()> {
        let mut compressor = Compressor::new(level).expect("zstd level checked before");
        let mut data: Option<(PathBuf, PackWriter<PackSink>)> = None;
        let mut trees: Option<(PathBuf, PackWriter<PackSink>)> = None;
        let open = |kind: BlobKind| -> Result<(PathBuf, PackWriter<PackSink>)> {
            let path = scratch.join(format!("pack-{:016x}.tmp", rand::random::<u64>()));
            let file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| Error::local(&path, "cannot create a pack file", e))?;
            let sink = PackSink {
                file: std::io::BufWriter::with_capacity(1 << 20, file),
                hasher: blake3::Hasher::new(),
                size: 0,
            };
            let writer = PackWriter::to(key, kind, sink)
                .map_err(|e| Error::local(&path, "cannot write a pack file", e))?;
            Ok((path, writer))
        };
        let close = |(path, writer): (PathBuf, PackWriter<PackSink>)| -> Result<PackFile> {
            let (mut sink, header) = writer
                .finish_into()
                .map_err(|e| Error::local(&path, "cannot write a pack file", e))?;
            std::io::Write::flush(&mut sink)
                .map_err(|e| Error::local(&path, "cannot write a pack file", e))?;
            Ok(PackFile {
                id: Id(*sink.hasher.finalize().as_bytes()),
                path,
                size: sink.size,
                header,
            })
        };
        for blob in rx {
            let slot = match blob.kind {
                BlobKind::Data => &mut data,
                BlobKind::Tree => &mut trees,
            };
            if slot.is_none() {
                *slot = Some(open(blob.kind)?);
            }
            let (path, writer) = slot.as_mut().expect("just opened");
            let raw = blob.data.len();
            let written = match compressor.compress(&blob.data) {
                Some(z) => {
                    stored.fetch_add(z.len() as u64, Ordering::Relaxed);
                    writer.add(blob.id, &z, raw, true)
                }
                None => {
                    stored.fetch_add(raw as u64, Ordering::Relaxed);
                    writer.add(blob.id, &blob.data, raw, false)
                }
            };
            written.map_err(|e| Error::local(path.as_path(), "cannot write a pack file", e))?;
            if writer.len() >= pack_size {
                let full = close(slot.take().expect("writer present"))?;
                if tx.blocking_send(Ok(full)).is_err() {
                    return Ok(()); // the uploader stopped; its error is reported
                }
            }
        }
        for w in [data, trees].into_iter().flatten() {
            if !w.1.is_empty() && tx.blocking_send(Ok(close(w)?)).is_err() {
                return Ok(());
            }
        }
        Ok(())
    })();
    if let Err(e) = result {
        let _ = tx.blocking_send(Err(e));
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

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".into(),
        std::io::ErrorKind::PermissionDenied => "permission denied".into(),
        _ => e.to_string(),
    }
}

/// Loads every tree under `root` (the parent snapshot's), for change detection.
async fn load_trees(repo: &Repository, index: &Index, root: Id) -> Result<HashMap<Id, Tree>> {
    let reader = BlobReader::new(repo, index, 64 << 20);
    let mut trees = HashMap::new();
    let mut todo = vec![root];
    while let Some(id) = todo.pop() {
        if trees.contains_key(&id) {
            continue;
        }
        let tree = reader.tree(&id).await?;
        todo.extend(tree.entries.iter().filter_map(|n| n.subtree));
        trees.insert(id, tree);
    }
    Ok(trees)
}

/// What the reader threads share: the chunker, the key, the set of blobs already stored or
/// queued, and the queue to the pack workers.
struct Chunking {
    chunker: ChunkerParams,
    key: Arc<RepoKey>,
    /// Blobs in the index or already queued in this run.
    seen: Mutex<HashSet<Id>>,
    work: crossbeam_channel::Sender<Blob>,
    counters: Arc<Counters>,
    blobs_added: AtomicU64,
    bytes_added: AtomicU64,
    bytes_read: AtomicU64,
}

/// A file for a reader thread, and where to send its content ids and size.
struct ReadJob {
    path: PathBuf,
    size_hint: u64,
    reply: crossbeam_channel::Sender<Result<(Vec<Id>, u64), ReadError>>,
}

type Reply = crossbeam_channel::Receiver<Result<(Vec<Id>, u64), ReadError>>;

impl Chunking {
    /// Reads, chunks and queues a file; returns its blob ids and the bytes read.
    fn read_file(
        &self,
        buf: &mut Vec<u8>,
        path: &Path,
        size_hint: u64,
    ) -> Result<(Vec<Id>, u64), ReadError> {
        let mut file = File::open(path).map_err(ReadError::Io)?;
        let mut content = Vec::new();
        let total = if size_hint <= self.chunker.max_size as u64 {
            // Small enough to read whole: one read call, no streaming buffer.
            buf.clear();
            file.read_to_end(buf).map_err(ReadError::Io)?;
            for (off, len) in self.chunker.cut(buf) {
                self.add_chunk(buf[off..off + len].to_vec(), &mut content)?;
            }
            self.counters
                .bytes
                .fetch_add(buf.len() as u64, Ordering::Relaxed);
            if buf.capacity() > 2 * self.chunker.max_size as usize {
                *buf = Vec::new();
            }
            buf.len() as u64
        } else {
            let mut total = 0u64;
            let mut failed = None;
            let r = self.chunker.stream(&mut file, |chunk| {
                total += chunk.len() as u64;
                self.counters
                    .bytes
                    .fetch_add(chunk.len() as u64, Ordering::Relaxed);
                if let Err(e) = self.add_chunk(chunk, &mut content) {
                    failed = Some(e);
                    return Err(std::io::Error::other("pipeline stopped"));
                }
                Ok(())
            });
            if let Some(e) = failed {
                return Err(e);
            }
            r.map_err(ReadError::Io)?;
            total
        };
        self.bytes_read.fetch_add(total, Ordering::Relaxed);
        Ok((content, total))
    }

    fn add_chunk(&self, data: Vec<u8>, content: &mut Vec<Id>) -> Result<(), ReadError> {
        let id = self.key.blob_id(&data);
        content.push(id);
        self.queue(BlobKind::Data, id, data)
            .map_err(|_| ReadError::Stopped)
    }

    /// Sends a blob to the pack workers unless it is stored or queued already.
    fn queue(&self, kind: BlobKind, id: Id, data: Vec<u8>) -> Result<(), Stopped> {
        if self.seen.lock().expect("seen lock").insert(id) {
            self.blobs_added.fetch_add(1, Ordering::Relaxed);
            self.bytes_added
                .fetch_add(data.len() as u64, Ordering::Relaxed);
            self.work
                .send(Blob { kind, id, data })
                .map_err(|_| Stopped)?;
        }
        Ok(())
    }

    fn is_stored(&self, id: &Id) -> bool {
        self.seen.lock().expect("seen lock").contains(id)
    }
}

/// The walker's state: it lists directories, compares entries with the parent snapshot, hands
/// files to the reader threads, and builds the trees in order.
struct Walk {
    cancel: Option<Arc<AtomicBool>>,
    chunking: Arc<Chunking>,
    jobs: crossbeam_channel::Sender<ReadJob>,
    stats: SnapshotStats,
    warnings: Vec<Warning>,
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
    /// Content of multiply-linked files already read in this run, by (device, inode).
    /// The modification time is kept too, so that an inode freed and reused during the walk is
    /// not mistaken for another link to the same file.
    links: HashMap<(u64, u64), (Vec<Id>, u64, (i64, u32))>,
}

/// The pipeline behind the walker stopped (an upload failed); the uploader reports why.
#[derive(Debug)]
struct Stopped;

/// Whether the parent snapshot's node describes this file unchanged (same size, modification
/// and change times, inode), so its content can be recorded without reading it.
fn unchanged(prev: Option<&Node>, meta: &Metadata) -> bool {
    prev.is_some_and(|p| {
        p.kind == NodeKind::File
            && p.size == meta.len()
            && p.mtime == meta.mtime()
            && p.mtime_nsec == meta.mtime_nsec() as u32
            && p.ctime == meta.ctime()
            && p.ctime_nsec == meta.ctime_nsec() as u32
            && p.inode == meta.ino()
    })
}

impl Walk {
    fn root(
        &mut self,
        roots: &[(Name, PathBuf)],
        parent_root: Option<Id>,
        parents: &HashMap<Id, Tree>,
    ) -> Result<Id> {
        let parent_tree = parent_root.and_then(|id| parents.get(&id));
        let mut tree = Tree::default();
        for (name, path) in roots {
            let meta = match std::fs::symlink_metadata(path) {
                Ok(m) => m,
                Err(e) => {
                    self.warn(path, format!("cannot be read: {}", io_reason(&e)));
                    continue;
                }
            };
            let prev = parent_tree.and_then(|t| t.find(&name.0));
            let pending = self
                .submit_if_needed(path, &meta, prev, &mut HashSet::new())
                .map_err(stopped)?;
            if let Some(node) = self
                .node(path, name.clone(), &meta, prev, parents, pending)
                .map_err(stopped)?
            {
                tree.entries.push(node);
            }
        }
        self.store_tree(tree).map_err(stopped)
    }

    fn cancelled(&self) -> bool {
        self.cancel
            .as_ref()
            .is_some_and(|c| c.load(Ordering::Relaxed))
    }

    fn warn(&mut self, path: &Path, message: String) {
        self.warnings.push(Warning {
            path: path.display().to_string(),
            message,
        });
    }

    /// Hands a file to the reader threads unless its content is known already (unchanged since
    /// the parent, or another link to a file read in this run).
    fn submit_if_needed(
        &mut self,
        path: &Path,
        meta: &Metadata,
        prev: Option<&Node>,
        links_submitted: &mut HashSet<(u64, u64)>,
    ) -> Result<Option<Reply>, Stopped> {
        if !meta.is_file() {
            return Ok(None);
        }
        if unchanged(prev, meta)
            && prev.is_some_and(|p| p.content.iter().all(|id| self.chunking.is_stored(id)))
        {
            return Ok(None);
        }
        let link = (meta.dev(), meta.ino());
        let known = self.links.get(&link).is_some_and(|(_, size, mtime)| {
            *size == meta.len() && *mtime == (meta.mtime(), meta.mtime_nsec() as u32)
        });
        if meta.nlink() > 1 && (known || !links_submitted.insert(link)) {
            return Ok(None);
        }
        self.submit(path, meta).map(Some)
    }

    /// Queues a file for the reader threads; its ids arrive on the returned channel.
    fn submit(&self, path: &Path, meta: &Metadata) -> Result<Reply, Stopped> {
        let (reply, rx) = crossbeam_channel::bounded(1);
        self.jobs
            .send(ReadJob {
                path: path.to_path_buf(),
                size_hint: meta.len(),
                reply,
            })
            .map_err(|_| Stopped)?;
        Ok(rx)
    }

    /// Records one entry; `None` when it vanished or could not be read (a warning is kept).
    fn node(
        &mut self,
        path: &Path,
        name: Name,
        meta: &Metadata,
        prev: Option<&Node>,
        parents: &HashMap<Id, Tree>,
        pending: Option<Reply>,
    ) -> Result<Option<Node>, Stopped> {
        let ft = meta.file_type();
        let kind = if ft.is_dir() {
            NodeKind::Dir
        } else if ft.is_file() {
            NodeKind::File
        } else if ft.is_symlink() {
            NodeKind::Symlink
        } else if ft.is_fifo() {
            NodeKind::Fifo
        } else if ft.is_socket() {
            NodeKind::Socket
        } else if ft.is_char_device() {
            NodeKind::Chardev
        } else {
            NodeKind::Blockdev
        };
        let mut node = Node {
            name,
            kind,
            mode: meta.mode() & 0o7777,
            uid: meta.uid(),
            gid: meta.gid(),
            user: self.user(meta.uid()),
            group: self.group(meta.gid()),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec() as u32,
            ctime: meta.ctime(),
            ctime_nsec: meta.ctime_nsec() as u32,
            inode: meta.ino(),
            device: meta.dev(),
            links: meta.nlink(),
            size: 0,
            target: None,
            rdev: None,
            xattrs: read_xattrs(path),
            content: Vec::new(),
            subtree: None,
        };
        match kind {
            NodeKind::Dir => {
                self.stats.dirs += 1;
                let prev_tree = prev
                    .filter(|p| p.kind == NodeKind::Dir)
                    .and_then(|p| p.subtree)
                    .and_then(|id| parents.get(&id));
                node.subtree = Some(self.dir(path, prev_tree, parents)?);
            }
            NodeKind::File => {
                if !self.file(path, meta, prev, &mut node, pending)? {
                    return Ok(None);
                }
                self.stats.files += 1;
                self.stats.bytes += node.size;
                self.chunking.counters.files.fetch_add(1, Ordering::Relaxed);
            }
            NodeKind::Symlink => match std::fs::read_link(path) {
                Ok(t) => {
                    node.target = Some(Name::from_os(t.as_os_str()));
                    self.stats.others += 1;
                }
                Err(e) => {
                    self.warn(path, format!("symlink cannot be read: {}", io_reason(&e)));
                    return Ok(None);
                }
            },
            NodeKind::Chardev | NodeKind::Blockdev => {
                node.rdev = Some(meta.rdev());
                self.stats.others += 1;
            }
            NodeKind::Fifo | NodeKind::Socket => self.stats.others += 1,
        }
        Ok(Some(node))
    }

    fn dir(
        &mut self,
        path: &Path,
        prev: Option<&Tree>,
        parents: &HashMap<Id, Tree>,
    ) -> Result<Id, Stopped> {
        let mut tree = Tree::default();
        let entries = match std::fs::read_dir(path) {
            Ok(rd) => rd,
            Err(e) => {
                self.warn(
                    path,
                    format!("directory cannot be listed: {}", io_reason(&e)),
                );
                return self.store_tree(tree);
            }
        };
        let mut names: Vec<std::ffi::OsString> = Vec::new();
        for entry in entries {
            match entry {
                Ok(e) => names.push(e.file_name()),
                Err(e) => {
                    self.warn(
                        path,
                        format!("directory listing failed part-way: {}", io_reason(&e)),
                    );
                    break;
                }
            }
        }
        names.sort();
        // First hand every file that must be read to the readers, so that several are read at
        // once; then build the entries in order, waiting for each file's ids as needed.
        let mut items = Vec::with_capacity(names.len());
        let mut links_submitted = HashSet::new();
        for os_name in names {
            if self.cancelled() {
                return Err(Stopped);
            }
            let child = path.join(&os_name);
            let meta = match std::fs::symlink_metadata(&child) {
                Ok(m) => m,
                Err(e) => {
                    self.warn(&child, format!("cannot be read: {}", io_reason(&e)));
                    continue;
                }
            };
            let name = Name::from_os(&os_name);
            let prev_node = prev.and_then(|t| t.find(&name.0));
            let pending = self.submit_if_needed(&child, &meta, prev_node, &mut links_submitted)?;
            items.push((child, name, meta, prev_node, pending));
        }
        for (child, name, meta, prev_node, pending) in items {
            if let Some(node) = self.node(&child, name, &meta, prev_node, parents, pending)? {
                tree.entries.push(node);
            }
        }
        self.store_tree(tree)
    }

    /// Fills in a file's content. Returns false (with a warning) if it could not be read.
    fn file(
        &mut self,
        path: &Path,
        meta: &Metadata,
        prev: Option<&Node>,
        node: &mut Node,
        pending: Option<Reply>,
    ) -> Result<bool, Stopped> {
        let link = (node.device, node.inode);
        let result = match pending {
            Some(reply) => reply.recv().map_err(|_| Stopped)?,
            None => {
                // Not handed to a reader: another link to a file read in this run, or unchanged
                // since the parent snapshot.
                if node.links > 1
                    && let Some((content, size, _)) =
                        self.links.get(&link).filter(|(_, size, mtime)| {
                            *size == meta.len() && *mtime == (node.mtime, node.mtime_nsec)
                        })
                {
                    node.content = content.clone();
                    node.size = *size;
                    self.stats.files_unchanged += 1;
                    return Ok(true);
                }
                if let Some(p) = prev
                    && unchanged(prev, meta)
                    && p.content.iter().all(|id| self.chunking.is_stored(id))
                {
                    node.content = p.content.clone();
                    node.size = p.size;
                    self.stats.files_unchanged += 1;
                    return Ok(true);
                }
                self.submit(path, meta)?.recv().map_err(|_| Stopped)?
            }
        };
        match result {
            Ok((content, size)) => {
                node.content = content;
                node.size = size;
                if prev.is_some() {
                    self.stats.files_changed += 1;
                } else {
                    self.stats.files_new += 1;
                }
                if node.links > 1 {
                    self.links.insert(
                        link,
                        (node.content.clone(), size, (node.mtime, node.mtime_nsec)),
                    );
                }
                Ok(true)
            }
            Err(ReadError::Stopped) => Err(Stopped),
            Err(ReadError::Io(e)) => {
                self.warn(path, format!("file cannot be read: {}", io_reason(&e)));
                Ok(false)
            }
        }
    }

    fn store_tree(&mut self, mut tree: Tree) -> Result<Id, Stopped> {
        let bytes = tree.encode();
        let id = self.chunking.key.blob_id(&bytes);
        self.chunking.queue(BlobKind::Tree, id, bytes)?;
        Ok(id)
    }

    fn user(&mut self, uid: u32) -> Option<String> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
    }

    fn group(&mut self, gid: u32) -> Option<String> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .clone()
    }
}

enum ReadError {
    Io(std::io::Error),
    Stopped,
}

impl From<Stopped> for ReadError {
    fn from(_: Stopped) -> Self {
        ReadError::Stopped
    }
}

fn stopped(_: Stopped) -> Error {
    Error::Usage("the backup stopped because storing data failed".into())
}

fn read_xattrs(path: &Path) -> Vec<Xattr> {
    let Ok(names) = xattr::list(path) else {
        return Vec::new();
    };
    let mut out: Vec<Xattr> = names
        .filter_map(|n| {
            let value = xattr::get(path, &n).ok().flatten()?;
            Some(Xattr {
                name: Name::from_os(&n),
                value: hex::encode(value),
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}
