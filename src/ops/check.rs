//! Check: is every snapshot restorable from this target?
//!
//! The structure check reads every index and snapshot object and every tree, and confirms that
//! every blob a snapshot references is indexed and that every indexed pack exists with the size
//! the index records. `--read-data` also downloads every pack, checks it against its name,
//! decrypts it, and decompresses and re-hashes every blob. A damaged or missing object is a
//! finding that names the object and the snapshots and files it affects.
//!
//! A pack found damaged at the size the index records is marked damaged on the target
//! (`store::damage`), so that the next backup stores its data again rather than build on it; a
//! marked pack stays a finding until it reads back intact or `repair` replaces it, or is only a
//! note once every blob in it is stored again elsewhere.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::pack;
use crate::format::tree::{MAX_DEPTH, Node, NodeKind};
use crate::id::Id;
use crate::ops::progress::Ticker;
use crate::store::blobs::{self, BlobReader};
use crate::store::damage;
use crate::store::index::Index;
use crate::store::repo::{DATA, Repository, pack_key};
use crate::store::snapshot::Catalog;
use crate::store::walk;

/// How deep to check.
#[derive(Clone, Debug, Default)]
pub struct CheckOptions {
    /// Download and verify every blob.
    pub read_data: bool,
    /// With `read_data`: download only these packs (a rotating verification's share).
    pub only_packs: Option<HashSet<Id>>,
    pub progress: bool,
}

/// Files of one snapshot affected by a finding.
#[derive(Clone, Debug, Serialize)]
pub struct Affected {
    pub snapshot: Id,
    pub source: String,
    pub time: DateTime<Utc>,
    /// Up to [`MAX_PATHS`] affected paths.
    pub paths: Vec<String>,
    /// How many affected paths there are in all.
    pub count: usize,
}

pub const MAX_PATHS: usize = 20;

/// One problem with one object.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// The object's key on the target (`data/ab/ab12...`, `index/...`), or `blob ID`.
    pub object: String,
    pub problem: String,
    pub affects: Vec<Affected>,
}

/// The outcome of a check.
#[derive(Debug, Default, Serialize)]
pub struct CheckReport {
    pub target: String,
    pub snapshots: usize,
    pub trees: usize,
    pub packs: usize,
    pub blobs: usize,
    /// Bytes downloaded and verified (with `--read-data`).
    pub bytes_read: u64,
    pub findings: Vec<Finding>,
    /// Observations that are not damage (packs no index lists yet, left by an interrupted backup).
    pub notes: Vec<String>,
}

impl CheckReport {
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }
}

/// Runs the check: the structure pass (index and snapshot objects, the packs' sizes), with
/// `read_data` the read-data pass (every pack downloaded and every blob re-hashed), then a walk
/// of every snapshot's trees that names the files each damaged object affects.
pub async fn check(repo: &Repository, options: &CheckOptions) -> Result<CheckReport> {
    let mut report = CheckReport {
        target: repo.target().name().to_string(),
        ..CheckReport::default()
    };
    let mut problems: BTreeMap<String, String> = BTreeMap::new();

    let loaded = Index::load(repo).await?;
    for (key, e) in &loaded.damaged {
        problems.insert(key.clone(), describe(e));
    }
    let (present, marked) = (loaded.present, loaded.marked);
    let index = loaded.index;
    let catalog = Catalog::load(repo).await?;
    for (key, e) in &catalog.damaged {
        problems.insert(key.clone(), describe(e));
    }
    report.snapshots = catalog.snapshots.len();
    report.blobs = index.blob_count();

    let mut bad = Bad {
        packs: check_packs(repo, &index, &mut problems, &mut report).await?,
        blobs: HashMap::new(),
    };
    if options.read_data {
        read_data(repo, &index, options, &mut bad, &mut problems, &mut report).await?;
    }
    let marks = Marks {
        present: &present,
        marked: &marked,
    };
    marks
        .earlier(repo, &index, options, &mut bad, &mut problems, &mut report)
        .await;
    let affected = walk_snapshots(repo, &index, &catalog, &bad, &mut problems, &mut report).await?;
    marks.mark_new(repo, &index, &problems, &mut report).await;
    leftovers(repo, &mut report).await?;
    index.healthy()?;
    report.findings = findings(problems, affected);
    Ok(report)
}

/// Notes what killed processes left on the target: lock objects of holders that are gone, and
/// scratch files older than a day; the next prune removes both.
async fn leftovers(repo: &Repository, report: &mut CheckReport) -> Result<()> {
    let stale = crate::store::lock::stale(repo.target(), None).await?;
    if !stale.is_empty() {
        report.notes.push(format!(
            "{} left by processes that are gone ({}); harmless, the next prune removes them",
            crate::plan::words::count_s(stale.len() as u64, "lock object"),
            stale
                .iter()
                .map(|(_, who)| who.as_str())
                .take(3)
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
    let scratch = repo.target().old_scratch(crate::store::lock::SCRATCH_AGE);
    if !scratch.is_empty() {
        report.notes.push(format!(
            "{} in tmp/ older than a day ({}), left by killed backups; the next prune removes them",
            crate::plan::words::count_s(scratch.len() as u64, "scratch file"),
            bytesize::ByteSize(scratch.iter().map(|(_, n)| n).sum::<u64>())
        ));
    }
    Ok(())
}

/// Damage marks (see [`damage`]): the packs marked by earlier checks, verifications and
/// backups, and the packs present on the target.
struct Marks<'a> {
    present: &'a HashMap<Id, u64>,
    marked: &'a HashSet<Id>,
}

impl Marks<'_> {
    /// Packs marked damaged earlier: one read back intact now loses its mark; one whose every
    /// blob is stored again in other packs is a note (nothing depends on it); any other stays
    /// a finding until `repair` replaces it.
    async fn earlier(
        &self,
        repo: &Repository,
        index: &Index,
        options: &CheckOptions,
        bad: &mut Bad,
        problems: &mut BTreeMap<String, String>,
        report: &mut CheckReport,
    ) {
        let read_now = |id: &Id| {
            options.read_data && options.only_packs.as_ref().is_none_or(|o| o.contains(id))
        };
        // The blobs each marked pack alone holds: the index places a blob in a marked pack
        // only when no other pack holds it.
        let mut needed: HashMap<Id, usize> = HashMap::new();
        for (_, loc) in index.blobs() {
            let pack = index.packs[loc.pack as usize].id;
            if self.marked.contains(&pack) {
                *needed.entry(pack).or_default() += 1;
            }
        }
        let mut ids: Vec<&Id> = self.marked.iter().collect();
        ids.sort();
        for id in ids {
            let key = pack_key(id);
            if !self.present.contains_key(id) || index.pack(id).is_none() {
                // The pack is gone (a prune deleted it, or it is missing, which the structure
                // pass names): the mark has nothing left to mark.
                if damage::unmark(repo.target(), id).await.is_ok() && index.pack(id).is_none() {
                    report.notes.push(format!(
                        "removed the damage mark of {key}, which no index lists"
                    ));
                }
                continue;
            }
            let damaged_now = problems.contains_key(&key) || bad.packs.contains(id);
            if read_now(id) && !damaged_now {
                match damage::unmark(repo.target(), id).await {
                    Ok(()) => report.notes.push(format!(
                        "{key} was marked damaged but reads back intact now; mark removed"
                    )),
                    Err(e) => report.notes.push(format!(
                        "{key} reads back intact, but its damage mark stays: {e}"
                    )),
                }
                continue;
            }
            if needed.get(id).copied().unwrap_or(0) == 0 {
                problems.remove(&key);
                bad.packs.remove(id);
                report.notes.push(format!(
                    "{key} is damaged, but every blob in it has been stored again in other packs: nothing depends on it, and the next prune deletes it"
                ));
                continue;
            }
            bad.packs.insert(*id);
            problems.entry(key).or_insert_with(|| {
                "the pack is marked damaged (an earlier check, verification or backup could not read it); backups store its data again, and `firesafe repair` replaces it from another copy".into()
            });
        }
    }

    /// Marks the packs found damaged now that are on the target at the size the index records
    /// (a pack missing or of the wrong size needs no mark: the index treats it as absent).
    async fn mark_new(
        &self,
        repo: &Repository,
        index: &Index,
        problems: &BTreeMap<String, String>,
        report: &mut CheckReport,
    ) {
        for key in problems.keys() {
            let Some(id) = key
                .rsplit('/')
                .next()
                .and_then(|n| n.parse::<Id>().ok())
                .filter(|id| *key == pack_key(id))
            else {
                continue;
            };
            let same_size = index
                .pack(&id)
                .is_some_and(|p| self.present.get(&id) == Some(&p.size));
            if !same_size || self.marked.contains(&id) {
                continue;
            }
            if let Err(e) = damage::mark(repo.target(), &id).await {
                report.notes.push(format!(
                    "{key} is damaged, but marking it failed ({e}): backups may still build on it until it is repaired"
                ));
            }
        }
    }
}

/// What the structure and read-data passes found damaged.
struct Bad {
    /// Packs missing, of the wrong size, or unusable as a whole.
    packs: HashSet<Id>,
    /// Damaged blobs in otherwise usable packs, with why.
    blobs: HashMap<Id, String>,
}

/// Lists the packs on the target and compares them with the index: every indexed pack must be
/// there at the size the index records. Returns the packs that are not.
async fn check_packs(
    repo: &Repository,
    index: &Index,
    problems: &mut BTreeMap<String, String>,
    report: &mut CheckReport,
) -> Result<HashSet<Id>> {
    let mut listed: HashMap<Id, u64> = HashMap::new();
    for l in repo.target().list(DATA).await? {
        match l.key.rsplit('/').next().and_then(|n| n.parse::<Id>().ok()) {
            Some(id) if l.key == pack_key(&id) => {
                listed.insert(id, l.size);
            }
            _ => report
                .notes
                .push(format!("{} is not a pack name; ignored", l.key)),
        }
    }
    report.packs = listed.len();
    let mut bad_packs: HashSet<Id> = HashSet::new();
    for p in &index.packs {
        match listed.get(&p.id) {
            None => {
                problems.insert(pack_key(&p.id), "the pack is missing".into());
                bad_packs.insert(p.id);
            }
            Some(&size) if size != p.size => {
                problems.insert(
                    pack_key(&p.id),
                    format!(
                        "the pack is {size} bytes; the index says {} (truncated or replaced)",
                        p.size
                    ),
                );
                bad_packs.insert(p.id);
            }
            Some(_) => {}
        }
    }
    let unindexed = listed.keys().filter(|id| index.pack(id).is_none()).count();
    if unindexed > 0 {
        let n = unindexed as u64;
        report.notes.push(format!(
            "{} {} listed by no index object (left by an interrupted backup; harmless, {} data is stored again when needed)",
            crate::plan::words::count_s(n, "pack"),
            crate::plan::words::noun(n, "is", "are"),
            crate::plan::words::noun(n, "its", "their"),
        ));
    }
    Ok(bad_packs)
}

/// The blobs the index places in each pack, as one pack verification expects them.
type Expected = Vec<(Id, crate::store::index::BlobLocation)>;

/// Downloads the packs (those of `options.only_packs`, or all) that the structure pass found
/// present, and verifies each; records blob-level damage in `bad`.
async fn read_data(
    repo: &Repository,
    index: &Index,
    options: &CheckOptions,
    bad: &mut Bad,
    problems: &mut BTreeMap<String, String>,
    report: &mut CheckReport,
) -> Result<()> {
    let wanted = |id: &Id| {
        !bad.packs.contains(id) && options.only_packs.as_ref().is_none_or(|o| o.contains(id))
    };
    let total: u64 = index
        .packs
        .iter()
        .filter(|p| wanted(&p.id))
        .map(|p| p.size)
        .sum();
    let done = Arc::new(AtomicU64::new(0));
    let ticker = options.progress.then(|| {
        let d = Arc::clone(&done);
        Ticker::bar(total, move || d.load(Ordering::Relaxed))
    });
    // The packs are read in batches of at most as many blobs as an index keeps in memory
    // (`spill::limit`), and each batch takes one pass over the index to gather what it expects
    // of its packs: what is held stays bounded however many blobs the repository has.
    let mut counts = vec![0usize; index.packs.len()];
    for (_, loc) in index.blobs() {
        counts[loc.pack as usize] += 1;
    }
    let most = crate::store::spill::limit();
    let mut batches: Vec<Vec<usize>> = Vec::new();
    let mut in_batch = 0;
    for (pos, pack) in index.packs.iter().enumerate() {
        if !wanted(&pack.id) {
            continue;
        }
        if batches.is_empty() || in_batch + counts[pos] > most {
            batches.push(Vec::new());
            in_batch = 0;
        }
        in_batch += counts[pos];
        batches.last_mut().expect("just pushed").push(pos);
    }
    for batch in batches {
        let slots: HashMap<u32, usize> = batch
            .iter()
            .enumerate()
            .map(|(slot, &pos)| (pos as u32, slot))
            .collect();
        let mut expected: Vec<Expected> = vec![Vec::new(); batch.len()];
        for (id, loc) in index.blobs() {
            if let Some(&slot) = slots.get(&loc.pack) {
                expected[slot].push((id, loc));
            }
        }
        let jobs: Vec<(Id, Expected)> = batch
            .iter()
            .map(|&pos| index.packs[pos].id)
            .zip(expected)
            .collect();
        // Download and verification overlap, a few packs at a time, on every core.
        let mut stream = futures::stream::iter(jobs)
            .map(|(pack_id, expected)| read_pack(repo, pack_id, expected, Arc::clone(&done)))
            .buffer_unordered(repo.target().transfers());
        while let Some(result) = stream.next().await {
            let (pack_id, len, outcome) = result?;
            report.bytes_read += len;
            record(pack_id, outcome, bad, problems);
        }
    }
    drop(ticker);
    Ok(())
}

/// Records what reading one pack found.
fn record(
    pack_id: Id,
    outcome: Result<Vec<(Id, String)>, String>,
    bad: &mut Bad,
    problems: &mut BTreeMap<String, String>,
) {
    match outcome {
        Ok(damaged) => {
            if let Some((_, why)) = damaged.first() {
                problems.insert(
                    pack_key(&pack_id),
                    format!(
                        "{} in the pack {} damaged (first: {why})",
                        crate::plan::words::count_s(damaged.len() as u64, "blob"),
                        crate::plan::words::noun(damaged.len() as u64, "is", "are"),
                    ),
                );
            }
            bad.blobs.extend(damaged);
        }
        Err(why) => {
            problems.insert(pack_key(&pack_id), why);
            bad.packs.insert(pack_id);
        }
    }
}

/// The outcome of reading one pack: its id, the bytes read, and its damaged blobs or why the
/// whole pack is unusable.
type PackOutcome = (Id, u64, Result<Vec<(Id, String)>, String>);

/// Downloads one pack and verifies it on a blocking thread.
async fn read_pack(
    repo: &Repository,
    pack_id: Id,
    expected: Expected,
    done: Arc<AtomicU64>,
) -> Result<PackOutcome> {
    let target = repo.target();
    let key = repo.shared_key();
    let name = target.name().to_string();
    let object = pack_key(&pack_id);
    let opened = target.read_with(&object, move |source, size| {
        let plain = blobs::open_pack_from(&key, &name, &pack_id, source, size);
        (
            size,
            plain.map(|plain| verify_pack(&key, &plain, &expected)),
        )
    });
    let Some((len, outcome)) = opened.await? else {
        return Ok((pack_id, 0, Err("the pack is missing".to_string())));
    };
    done.fetch_add(len, Ordering::Relaxed);
    let outcome = match outcome {
        Ok(verified) => verified,
        // A target that fails to read ends the check, as a failed download does.
        Err(e @ Error::Target { .. }) => return Err(e),
        Err(Error::Corrupt { detail, .. }) => Err(detail),
        Err(other) => Err(other.to_string()),
    };
    Ok((pack_id, len, outcome))
}

/// Files affected by one object in one snapshot: up to [`MAX_PATHS`] paths and the count.
type Hits = HashMap<String, (Vec<String>, usize)>;

fn hit(hits: &mut Hits, object: String, path: String) {
    let e = hits.entry(object).or_default();
    if e.0.len() < MAX_PATHS {
        e.0.push(path);
    }
    e.1 += 1;
}

/// Walks every snapshot: every referenced blob must be indexed and intact. Returns the
/// snapshots and files each damaged object affects.
async fn walk_snapshots(
    repo: &Repository,
    index: &Index,
    catalog: &Catalog,
    bad: &Bad,
    problems: &mut BTreeMap<String, String>,
    report: &mut CheckReport,
) -> Result<HashMap<String, Vec<Affected>>> {
    let mut walk = TreeWalk {
        reader: BlobReader::new(repo, index, 64 << 20),
        index,
        bad,
        clean_trees: HashSet::new(),
        trees_seen: HashSet::new(),
    };
    let mut affected: HashMap<String, Vec<Affected>> = HashMap::new();
    for snap in &catalog.snapshots {
        let hits = walk.snapshot(snap.snapshot.tree, problems).await?;
        for (object, (paths, count)) in hits {
            affected.entry(object).or_default().push(Affected {
                snapshot: snap.id,
                source: snap.snapshot.source.clone(),
                time: snap.snapshot.start,
                paths,
                count,
            });
        }
    }
    report.trees = walk.trees_seen.len();
    Ok(affected)
}

/// The walk of the snapshots' trees, shared by all snapshots so that a tree found intact is
/// not walked again.
struct TreeWalk<'a> {
    reader: BlobReader<'a>,
    index: &'a Index,
    bad: &'a Bad,
    /// Trees without subdirectories whose files are all intact.
    clean_trees: HashSet<Id>,
    trees_seen: HashSet<Id>,
}

impl TreeWalk<'_> {
    /// The damaged object holding a blob, if it is: its pack, or `blob ID` if no index lists it.
    fn blob_problem(&self, id: &Id) -> Option<String> {
        match self.index.get(id) {
            None => Some(format!("blob {}", id.to_hex())),
            Some((p, _)) if self.bad.packs.contains(&p.id) || self.bad.blobs.contains_key(id) => {
                Some(pack_key(&p.id))
            }
            Some(_) => None,
        }
    }

    /// Walks one snapshot's trees from `root`.
    async fn snapshot(
        &mut self,
        root: Id,
        problems: &mut BTreeMap<String, String>,
    ) -> Result<Hits> {
        let mut hits = Hits::new();
        // Each tree is walked once per snapshot, however often the snapshot holds it: a damaged
        // object beneath a shared folder is reported at the first path found.
        let mut walked: HashSet<Id> = HashSet::new();
        // Folders still to walk: path, tree id, and level below the root tree.
        let mut todo: Vec<(String, Id, usize)> = vec![(String::new(), root, 0)];
        while let Some((dir, tree_id, level)) = todo.pop() {
            if self.clean_trees.contains(&tree_id) || !walked.insert(tree_id) {
                continue;
            }
            self.trees_seen.insert(tree_id);
            let shown = if dir.is_empty() {
                "/".to_string()
            } else {
                dir.clone()
            };
            if level > MAX_DEPTH + 1 {
                let object = format!("tree {}", tree_id.to_hex());
                problems.entry(object.clone()).or_insert_with(|| {
                    format!(
                        "it is nested deeper than the {MAX_DEPTH} folders a backup writes (at {}): the snapshot is forged or damaged, and its deeper folders were not checked",
                        walk::shown(&shown)
                    )
                });
                hit(
                    &mut hits,
                    object,
                    format!("{} (directory listing)", walk::shown(&shown)),
                );
                continue;
            }
            if let Some(object) = self.blob_problem(&tree_id) {
                hit(&mut hits, object, format!("{shown} (directory listing)"));
                continue;
            }
            let tree = match self.reader.tree(&tree_id).await {
                Ok(t) => t,
                Err(e @ Error::Target { .. }) => return Err(e),
                Err(e) => {
                    let object = self
                        .index
                        .get(&tree_id)
                        .map_or(format!("blob {}", tree_id.to_hex()), |(p, _)| {
                            pack_key(&p.id)
                        });
                    problems
                        .entry(object.clone())
                        .or_insert_with(|| describe(&e));
                    hit(&mut hits, object, format!("{shown} (directory listing)"));
                    continue;
                }
            };
            let mut damaged_here = false;
            for node in &tree.entries {
                let path = format!("{dir}/{}", node.name.display());
                match node.kind {
                    NodeKind::Dir => {
                        if let Some(sub) = node.subtree {
                            todo.push((path, sub, level + 1));
                        }
                    }
                    NodeKind::File => {
                        if let Some(object) = first_problem(node, &|id| self.blob_problem(id)) {
                            hit(&mut hits, object, path);
                            damaged_here = true;
                        }
                    }
                    _ => {}
                }
            }
            // A tree whose files are intact and whose subtrees are intact need not be walked again;
            // subtrees are checked on their own, so only mark trees without subdirectories.
            if !damaged_here && tree.entries.iter().all(|n| n.kind != NodeKind::Dir) {
                self.clean_trees.insert(tree_id);
            }
        }
        Ok(hits)
    }
}

/// One finding per damaged object, with the snapshots it affects, oldest first.
fn findings(
    mut problems: BTreeMap<String, String>,
    mut affected: HashMap<String, Vec<Affected>>,
) -> Vec<Finding> {
    for object in affected.keys() {
        problems.entry(object.clone()).or_insert_with(|| {
            if object.starts_with("blob ") {
                "a snapshot references this blob, but no index object lists it".into()
            } else {
                "damaged".into()
            }
        });
    }
    let mut out = Vec::new();
    for (object, problem) in problems {
        let mut affects = affected.remove(&object).unwrap_or_default();
        affects.sort_by_key(|a| a.time);
        out.push(Finding {
            object,
            problem,
            affects,
        });
    }
    out
}

/// The first damaged object among a file's blobs.
fn first_problem(node: &Node, problem: &impl Fn(&Id) -> Option<String>) -> Option<String> {
    node.content.iter().find_map(problem)
}

/// Verifies one decrypted pack: its header, and each expected blob. Returns the damaged blobs,
/// or why the whole pack is unusable.
fn verify_pack(
    key: &crate::format::crypto::RepoKey,
    plain: &[u8],
    expected: &[(Id, crate::store::index::BlobLocation)],
) -> Result<Vec<(Id, String)>, String> {
    let header = pack::read_header(plain)?;
    // The pack's own header must agree with the index about every blob the index places there.
    let listed: HashMap<Id, &pack::PackEntry> = header.blobs.iter().map(|b| (b.id, b)).collect();
    for (bid, loc) in expected {
        match listed.get(bid) {
            Some(e)
                if e.offset == loc.offset
                    && e.length == loc.length
                    && e.raw_length == loc.raw_length
                    && e.zstd == loc.zstd => {}
            Some(_) => {
                return Err(format!(
                    "the pack's header and the index disagree about blob {}",
                    bid.short()
                ));
            }
            None => {
                return Err(format!(
                    "the index places blob {} in this pack, but the pack's header does not list it",
                    bid.short()
                ));
            }
        }
    }
    Ok(expected
        .iter()
        .filter_map(|(bid, loc)| {
            blobs::with_blob(key, plain, bid, loc, blobs::MAX_BLOB_BYTES, |_| ())
                .err()
                .map(|why| (*bid, why))
        })
        .collect())
}

fn describe(e: &Error) -> String {
    match e {
        Error::Corrupt { detail, .. } => detail.clone(),
        other => other.to_string(),
    }
}
