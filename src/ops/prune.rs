//! Retention and pruning: forget the snapshots a schedule's retention no longer keeps, then
//! delete the packs no remaining snapshot uses.
//!
//! # Why pruning never deletes data a snapshot needs
//!
//! A pack is deleted only when all of these hold:
//!
//! 1. **No snapshot on the target uses any blob in it.** The references are computed by reading
//!    every remaining snapshot's trees on that target, after the snapshots to forget are chosen.
//!    A snapshot, index object or tree that cannot be read stops the prune before it deletes
//!    anything: it cannot know what that snapshot uses.
//! 2. **No backup or copy is writing to the target.** Prune holds the target's exclusive lock
//!    (see [`crate::store::lock`]) from before it reads the snapshots until its last deletion. Backups
//!    and copies take a shared lock *before* they read the index they deduplicate against, and
//!    keep it until their snapshot is written; so no snapshot can appear during a prune that
//!    refers to a blob the prune saw unused, and no backup can start reusing a pack the prune is
//!    about to delete. Prune checks its own lock is fresh before each step that deletes.
//! 3. **A pack that no index object lists is older than the grace period.** Such a pack belongs
//!    to a backup that was killed before indexing it, or to one still running whose lock went
//!    stale; the grace period (24 hours unless configured) lets any such backup end first.
//! 4. **If it is a pack no index object lists, every blob the remaining snapshots use is placed
//!    by the index in a pack that is present.** Otherwise an index object may have been lost, and
//!    an unlisted pack may hold the only copy of data a snapshot needs: unlisted packs then stay
//!    until `repair` indexes them again.
//!
//! The newest snapshot and the newest complete snapshot of every source on a target are always
//! kept, whatever the retention rules say. Deletion order keeps the repository valid at every
//! instant: a marker `forgotten/ID` then the snapshot `snapshots/ID`; new index objects for the
//! packs that stay, then the old index objects, then the packs they no longer list. A prune
//! killed at any point leaves only unlisted packs, which the next prune removes.
//!
//! The `forgotten/ID` markers stop replication from copying a forgotten snapshot back from a
//! target that has not been pruned yet, and tell the next prune of that target to forget it too.
//!
//! A pack in use of which at least [`REPACK_UNUSED_PERCENT`] percent is unused is rewritten: its
//! used blobs are copied (checked against their ids) into new packs, which the new index objects
//! list before the old pack goes. Other packs that hold both used and unused blobs are kept
//! whole; the report says how much space they hold that no snapshot uses.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use futures::StreamExt;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::pack::{BlobKind, PackWriter};
use crate::format::tree::NodeKind;
use crate::id::Id;
use crate::plan::retention::{Decision, Retention, select};
use crate::store::blobs::BlobReader;
use crate::store::index::{BlobLocation, Index, IndexFile, IndexPack};
use crate::store::lock::TargetLock;
use crate::store::repo::{DATA, FORGOTTEN, INDEX, Repository, SNAPSHOTS, pack_key};
use crate::store::snapshot::{Catalog, Listed};

/// A pack in use is rewritten without its unused blobs when at least this share of it is unused.
pub const REPACK_UNUSED_PERCENT: u64 = 20;

/// What to prune and how.
#[derive(Clone, Debug)]
pub struct PruneOptions {
    pub retention: Retention,
    /// The sources whose snapshots the retention applies to; others are left alone (their
    /// snapshots still count as users of packs).
    pub sources: Vec<String>,
    /// The time zone days, weeks, months and years are counted in.
    pub timezone: Tz,
    /// Unlisted packs younger than this are kept.
    pub grace: chrono::Duration,
    /// Objects written less than this long ago are under S3 Object Lock and cannot be deleted.
    pub object_lock: Option<chrono::Duration>,
    /// Work out and report everything, change nothing.
    pub dry_run: bool,
    pub now: DateTime<Utc>,
}

/// What a prune did (or, with `dry_run`, would do) on one target.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub target: String,
    pub dry_run: bool,
    pub kept: Vec<Decision>,
    pub forgotten: Vec<Decision>,
    pub packs_deleted: u64,
    pub bytes_freed: u64,
    pub index_objects_rewritten: u64,
    /// Packs rewritten without their unused blobs, and the bytes of used blobs copied.
    pub packs_repacked: u64,
    pub bytes_repacked: u64,
    /// Packs kept because some of their blobs are still used, and the bytes in them that are not.
    pub packs_partly_used: u64,
    pub bytes_unused_in_kept_packs: u64,
    /// Unlisted packs kept because they are younger than the grace period.
    pub packs_in_grace: u64,
    /// Blobs the remaining snapshots use that no index places in a pack on the target, and the
    /// unlisted packs kept, whatever their age, because they may hold them.
    pub blobs_unlocated: u64,
    pub packs_unindexed_kept: u64,
    /// Objects that are no longer needed but are under object lock, and when the first lock ends.
    pub locked: Vec<String>,
    pub locked_until: Option<DateTime<Utc>>,
    /// The keys deleted, in the order they were deleted (snapshots, index objects, packs); the
    /// same deletions are then made on the schedule's other targets.
    #[serde(skip)]
    pub deleted: Vec<String>,
}

/// Prunes one repository (one target), taking its exclusive lock.
pub async fn prune(repo: &Repository, options: &PruneOptions) -> Result<PruneReport> {
    if options.dry_run {
        return prune_locked(repo, options, None).await;
    }
    let lock = TargetLock::exclusive(repo.target(), "prune").await?;
    let report = prune_locked(repo, options, Some(&lock)).await;
    lock.release().await;
    report
}

/// Prunes one repository whose exclusive lock the caller holds (`None` only for a dry run).
pub async fn prune_locked(
    repo: &Repository,
    options: &PruneOptions,
    lock: Option<&TargetLock>,
) -> Result<PruneReport> {
    let target = repo.target();
    let lock = if options.dry_run { None } else { lock };
    let refuse = |what: String| {
        Error::Usage(format!(
            "target \"{}\": {what}; prune deletes nothing while it cannot tell what every snapshot uses (run `firesafe check` to see the damage)",
            target.name()
        ))
    };

    let catalog = Catalog::load(repo).await?;
    if let Some((key, e)) = catalog.damaged.first() {
        return Err(refuse(format!("{key} cannot be read ({e})")));
    }
    let marks: HashSet<Id> = target
        .list(FORGOTTEN)
        .await?
        .into_iter()
        .filter_map(|l| l.key.rsplit('/').next().and_then(|n| n.parse().ok()))
        .collect();
    let listed_snapshots: HashMap<Id, DateTime<Utc>> = target
        .list(SNAPSHOTS)
        .await?
        .into_iter()
        .filter_map(|l| {
            let id = l.key.rsplit('/').next()?.parse().ok()?;
            Some((id, l.modified))
        })
        .collect();
    let judged: Vec<&Listed> = catalog
        .snapshots
        .iter()
        .filter(|l| options.sources.contains(&l.snapshot.source))
        .collect();
    let (mut kept, mut forgotten) = select(&judged, &options.retention, options.timezone, &marks);

    let mut report = PruneReport {
        target: target.name().to_string(),
        dry_run: options.dry_run,
        ..PruneReport::default()
    };
    let under_lock = |written: DateTime<Utc>| {
        options
            .object_lock
            .map(|d| written + d)
            .filter(|until| *until > options.now)
    };
    let note_locked = |report: &mut PruneReport, key: String, until: DateTime<Utc>| {
        report.locked.push(key);
        report.locked_until = Some(report.locked_until.map_or(until, |u| u.min(until)));
    };
    // A snapshot under object lock stays, and so does what it uses.
    forgotten.retain(|d| {
        let until = listed_snapshots.get(&d.id).and_then(|w| under_lock(*w));
        match until {
            Some(until) => {
                note_locked(&mut report, format!("{SNAPSHOTS}/{}", d.id), until);
                let mut d = d.clone();
                d.reasons.push("object lock".into());
                kept.push(d);
                false
            }
            None => true,
        }
    });
    let forget: HashSet<Id> = forgotten.iter().map(|d| d.id).collect();

    // The index, object by object, so that affected objects can be rewritten.
    let index_keys: Vec<crate::store::target::Listed> = target.list(INDEX).await?;
    let loaded: Vec<(crate::store::target::Listed, Result<IndexFile>)> =
        futures::stream::iter(index_keys)
            .map(|l| async move {
                let r = repo.load_sealed::<IndexFile>("index", &l.key).await;
                (l, r)
            })
            .buffer_unordered(8)
            .collect()
            .await;
    let mut index_files = Vec::new();
    for (l, r) in loaded {
        match r {
            Ok(f) => index_files.push((l, f)),
            Err(e @ Error::Target { .. }) => return Err(e),
            Err(e) => return Err(refuse(format!("{} cannot be read ({e})", l.key))),
        }
    }
    index_files.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    let present: HashMap<Id, crate::store::target::Listed> = target
        .list(DATA)
        .await?
        .into_iter()
        .filter_map(|l| {
            let id = l.key.rsplit('/').next()?.parse().ok()?;
            Some((id, l))
        })
        .collect();
    let mut index = Index::default();
    // Packs that are present first, so that blobs stored twice are read from a pack that is there.
    let mut ordered: Vec<&IndexPack> = index_files.iter().flat_map(|(_, f)| &f.packs).collect();
    ordered.sort_by_key(|p| !present.contains_key(&p.id));
    for p in ordered {
        index.add_pack(p.id, p.kind, p.size, &p.blobs);
    }

    // Every blob the remaining snapshots use.
    let used = used_blobs(
        repo,
        &index,
        catalog
            .snapshots
            .iter()
            .filter(|l| !forget.contains(&l.id))
            .map(|l| l.snapshot.tree),
    )
    .await?;

    // Which packs go, and which are rewritten with only their used blobs.
    let mut listing: HashMap<Id, &IndexPack> = HashMap::new();
    let mut in_use: HashSet<Id> = HashSet::new();
    for p in index_files.iter().flat_map(|(_, f)| &f.packs) {
        listing.entry(p.id).or_insert(p);
        if p.blobs.iter().any(|b| used.contains(&b.id)) {
            in_use.insert(p.id);
        }
    }
    let listed_packs: HashSet<Id> = listing.keys().copied().collect();
    let mut delete: HashSet<Id> = HashSet::new();
    let mut repack: Vec<&IndexPack> = Vec::new();
    for (id, p) in &listing {
        if !in_use.contains(id) {
            delete.insert(*id);
            continue;
        }
        let total: u64 = p.blobs.iter().map(|b| u64::from(b.length)).sum();
        let unused: u64 = p
            .blobs
            .iter()
            .filter(|b| !used.contains(&b.id))
            .map(|b| u64::from(b.length))
            .sum();
        let locked = present
            .get(id)
            .is_some_and(|l| under_lock(l.modified).is_some());
        if unused > 0
            && unused * 100 >= total * REPACK_UNUSED_PERCENT
            && present.contains_key(id)
            && !locked
        {
            repack.push(p);
            report.packs_repacked += 1;
            report.bytes_repacked += total - unused;
        } else if unused > 0 {
            report.packs_partly_used += 1;
            report.bytes_unused_in_kept_packs += unused;
        }
    }
    repack.sort_by_key(|p| p.id);
    // A used blob that no index places in a pack on the target may be in a pack no index lists
    // (its index object lost): then unlisted packs stay, whatever their age, until `repair`
    // indexes them again.
    let unlocated = used
        .iter()
        .filter(|b| {
            !index
                .get(b)
                .is_some_and(|(p, _)| present.contains_key(&p.id))
        })
        .count() as u64;
    report.blobs_unlocated = unlocated;
    for (id, l) in &present {
        if !listed_packs.contains(id) {
            if unlocated > 0 {
                report.packs_unindexed_kept += 1;
            } else if l.modified + options.grace <= options.now {
                delete.insert(*id);
            } else {
                report.packs_in_grace += 1;
            }
        }
    }
    // Objects under object lock stay until it ends.
    let mut locked_packs = HashSet::new();
    for id in &delete {
        if let Some(until) = present.get(id).and_then(|l| under_lock(l.modified)) {
            note_locked(&mut report, pack_key(id), until);
            locked_packs.insert(*id);
        }
    }
    delete.retain(|id| !locked_packs.contains(id));

    delete.extend(repack.iter().map(|p| p.id));
    // An index object under object lock cannot be replaced, so the packs it lists stay.
    for (l, f) in &index_files {
        if f.packs.iter().any(|p| delete.contains(&p.id))
            && let Some(until) = under_lock(l.modified)
        {
            note_locked(&mut report, l.key.clone(), until);
            for p in &f.packs {
                delete.remove(&p.id);
            }
        }
    }
    repack.retain(|p| delete.contains(&p.id));
    // Index objects that list a pack that goes (or one already missing that nothing uses).
    let gone = |p: &IndexPack| {
        delete.contains(&p.id)
            || (!present.contains_key(&p.id) && p.blobs.iter().all(|b| !used.contains(&b.id)))
    };
    let rewrite: Vec<usize> = index_files
        .iter()
        .enumerate()
        .filter(|(_, (l, f))| under_lock(l.modified).is_none() && f.packs.iter().any(gone))
        .map(|(i, _)| i)
        .collect();

    report.packs_deleted = delete.len() as u64;
    report.bytes_freed = delete
        .iter()
        .filter_map(|id| present.get(id))
        .map(|l| l.size)
        .sum();
    report.index_objects_rewritten = rewrite.len() as u64;
    report.kept = kept;
    report.forgotten = forgotten;
    report
        .kept
        .sort_by(|a, b| (&a.source, a.start).cmp(&(&b.source, b.start)));
    report
        .forgotten
        .sort_by(|a, b| (&a.source, a.start).cmp(&(&b.source, b.start)));
    let Some(lock) = lock else {
        return Ok(report);
    };

    // 1. Forget snapshots: the marker first, so that no copy brings one back.
    lock.ensure_fresh()?;
    for d in &report.forgotten {
        target
            .put_new(&format!("{FORGOTTEN}/{}", d.id), bytes::Bytes::new())
            .await?;
        let key = format!("{SNAPSHOTS}/{}", d.id);
        target.delete(&key).await?;
        report.deleted.push(key);
    }
    // 2. Used blobs of the packs being rewritten go into new packs; new index objects list
    //    them and the packs that stay; then the old index objects go.
    lock.ensure_fresh()?;
    let mut survivors: Vec<IndexPack> = rewrite
        .iter()
        .flat_map(|&i| index_files[i].1.packs.iter())
        .filter(|p| !gone(p))
        .cloned()
        .collect();
    survivors.extend(rewrite_packs(repo, &index, &repack, &used).await?);
    for chunk in survivors.chunks(256) {
        crate::store::index::save(repo, chunk.to_vec()).await?;
    }
    for &i in &rewrite {
        target.delete(&index_files[i].0.key).await?;
        report.deleted.push(index_files[i].0.key.clone());
    }
    // 3. The packs no index lists any more.
    lock.ensure_fresh()?;
    let mut keys: Vec<String> = delete.iter().map(pack_key).collect();
    keys.sort();
    let results: Vec<Result<()>> = futures::stream::iter(keys.clone())
        .map(|k| async move { target.delete(&k).await })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    report.deleted.extend(keys);
    Ok(report)
}

/// Copies the used blobs of `packs` into new packs, checking each against its id first; returns
/// the new packs for the index. Blobs are copied as stored (not recompressed).
async fn rewrite_packs(
    repo: &Repository,
    index: &Index,
    packs: &[&IndexPack],
    used: &HashSet<Id>,
) -> Result<Vec<IndexPack>> {
    let reader = BlobReader::new(repo, index, 0);
    let limit = u64::from(repo.config().pack_size);
    let mut out = Vec::new();
    let mut copied: HashSet<Id> = HashSet::new();
    let mut writers: HashMap<BlobKind, PackWriter> = HashMap::new();
    for p in packs {
        let plain = reader.pack(&p.id).await?;
        for b in p.blobs.iter().filter(|b| used.contains(&b.id)) {
            if !copied.insert(b.id) {
                continue;
            }
            let loc = BlobLocation {
                pack: 0,
                offset: b.offset,
                length: b.length,
                raw_length: b.raw_length,
                zstd: b.zstd,
            };
            crate::store::blobs::extract_blob(repo.key(), &plain, &b.id, &loc).map_err(|why| {
                Error::Corrupt {
                    what: "blob",
                    id: format!("{} in {}", b.id, pack_key(&p.id)),
                    target: repo.target().name().to_string(),
                    detail: format!("{why}; prune stopped before rewriting its pack"),
                }
            })?;
            let stored = crate::format::pack::blob_bytes(&plain, b.offset, b.length)
                .expect("extract_blob checked the bounds");
            let writer = writers
                .entry(p.kind)
                .or_insert_with(|| PackWriter::new(repo.key(), p.kind, limit as usize));
            writer
                .add(b.id, stored, b.raw_length as usize, b.zstd)
                .map_err(|e| Error::Format(format!("cannot build a pack: {e}")))?;
            if writer.len() >= limit {
                let full = writers.remove(&p.kind).expect("just used");
                out.push(store_pack(repo, full).await?);
            }
        }
    }
    for (_, w) in writers {
        if !w.is_empty() {
            out.push(store_pack(repo, w).await?);
        }
    }
    Ok(out)
}

async fn store_pack(repo: &Repository, writer: PackWriter) -> Result<IndexPack> {
    let sealed = writer.finish();
    let size = sealed.bytes.len() as u64;
    repo.target()
        .put_new(&pack_key(&sealed.id), bytes::Bytes::from(sealed.bytes))
        .await?;
    Ok(IndexPack {
        id: sealed.id,
        kind: sealed.header.kind,
        size,
        blobs: sealed.header.blobs,
    })
}

/// Every blob (trees and file content) reachable from `roots`, each tree read once.
pub(crate) async fn used_blobs(
    repo: &Repository,
    index: &Index,
    roots: impl Iterator<Item = Id>,
) -> Result<HashSet<Id>> {
    let reader = BlobReader::new(repo, index, 64 << 20);
    let mut used = HashSet::new();
    let mut stack: Vec<Id> = Vec::new();
    for root in roots {
        if used.insert(root) {
            stack.push(root);
        }
    }
    while let Some(id) = stack.pop() {
        let tree = reader.tree(&id).await.map_err(|e| {
            Error::Usage(format!(
                "target \"{}\": {e}; prune deletes nothing while it cannot tell what every snapshot uses",
                repo.target().name()
            ))
        })?;
        for node in tree.entries {
            used.extend(node.content.iter().copied());
            if node.kind == NodeKind::Dir
                && let Some(sub) = node.subtree
                && used.insert(sub)
            {
                stack.push(sub);
            }
        }
    }
    Ok(used)
}
