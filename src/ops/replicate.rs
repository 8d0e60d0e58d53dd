//! Replication: bring one target up to date with another by copying the objects it lacks.
//!
//! Every target of a schedule holds the same logical repository, object for object: objects are
//! encrypted once and are named by the hash of their bytes, so a copy is exact and checkable.
//! Objects are copied in the order a backup writes them (keys, packs, index objects, snapshots,
//! then `config` for a new target), so the receiving target is valid at every instant, and a
//! snapshot appears there only once everything it references is there. Content-addressed objects
//! are checked against their names before they are written, so damage is never copied.
//!
//! Key removals travel the same way: the removal records (`keys-removed/ID`) are copied first,
//! an envelope named by a record on either side is never copied, and the receiving copy's
//! envelopes that a record names are deleted (never its last envelope).

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::id::Id;
use crate::ops::progress::Ticker;
use crate::plan::words::noun;
use crate::store::index::{Index, IndexFile, IndexPack};
use crate::store::lock::TargetLock;
use crate::store::repo::{
    AUDIT, CONFIG, DATA, DECISIONS, DRILLS, FORGOTTEN, INDEX, KEYS, KEYS_REMOVED, Repository,
    SNAPSHOTS, pack_key, removed_envelopes,
};
use crate::store::target::{Put, Target};

/// What a replication copied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplicateReport {
    pub copied: u64,
    pub bytes: u64,
    /// Objects skipped because the source copy is damaged (the receiving target lacks them).
    pub damaged: Vec<String>,
    /// Objects damaged on the receiving target (marked damaged, of the wrong size, or not a
    /// file) that were replaced by the source's intact copy.
    pub repaired: Vec<String>,
    /// Key envelopes deleted from the receiving target because a removal record names them.
    pub keys_removed: Vec<String>,
    /// Removals not made there, and why (the only envelope left, or the store refused).
    pub notes: Vec<String>,
}

/// Replaces each pack marked damaged on `to` (see `store::damage`) with the copy `from` holds,
/// when that copy matches its name (packs are named by the hash of their bytes, so it is
/// intact), reads it back, and removes the mark.
async fn heal_marked(from: &Target, to: &Target, report: &mut ReplicateReport) -> Result<()> {
    let mut marked: Vec<Id> = crate::store::damage::marked(to)
        .await?
        .into_iter()
        .collect();
    marked.sort();
    for id in marked {
        let key = pack_key(&id);
        let Some(bytes) = from.get_opt(&key).await? else {
            continue;
        };
        if Id::of_object(&bytes) != id {
            continue;
        }
        to.put_replace(&key, bytes.clone()).await?;
        if to.get_opt(&key).await?.is_some_and(|back| back == bytes) {
            crate::store::damage::unmark(to, &id).await?;
            report.repaired.push(key);
        }
    }
    Ok(())
}

/// Copies to `to` every object of `from` that `to` lacks.
pub async fn replicate(from: &Target, to: &Target) -> Result<ReplicateReport> {
    replicate_with(from, to, None).await
}

/// Like [`replicate`], under a lock on `to` the caller already holds (a prune's exclusive lock).
pub async fn replicate_with(
    from: &Target,
    to: &Target,
    held: Option<&TargetLock>,
) -> Result<ReplicateReport> {
    let source_config = Repository::read_config(from).await?;
    let has_config = match Repository::read_config(to).await {
        Ok(c) if c.id == source_config.id => true,
        Ok(c) => {
            return Err(Error::Usage(format!(
                "target \"{}\" holds a different repository ({}) from target \"{}\" ({}); refusing to mix them",
                to.name(),
                c.id.short(),
                from.name(),
                source_config.id.short()
            )));
        }
        Err(Error::NotARepository { .. }) => false,
        Err(e) => return Err(e),
    };
    // Held on the receiving target until its snapshots are written (see `lock`).
    let own = match held {
        Some(_) => None,
        None => Some(TargetLock::shared(to, "copy").await?),
    };
    let lock = held.or(own.as_ref()).expect("one of them");
    let mut report = ReplicateReport::default();
    // Snapshots a prune forgot on either side are not copied (the markers themselves are).
    let forgotten = forgotten_ids(from, to).await?;
    // Envelopes removed on either side are not copied, and are removed from `to`.
    let removed = removed_ids(from, to).await?;
    let order = [
        KEYS_REMOVED,
        KEYS,
        DATA,
        INDEX,
        FORGOTTEN,
        DRILLS,
        AUDIT,
        DECISIONS,
        SNAPSHOTS,
    ];
    // The source is listed in the reverse of the order a backup writes, so that everything a
    // listed snapshot or index object refers to is listed too, even while a backup writes there.
    let mut listed: Vec<Vec<(String, u64)>> = Vec::new();
    for dir in order.iter().rev() {
        listed.push(
            from.list(dir)
                .await?
                .into_iter()
                .map(|l| (l.key, l.size))
                .collect(),
        );
    }
    listed.reverse();
    // Progress: the objects copied so far (to this target), and their bytes.
    let copied = Arc::new(AtomicU64::new(0));
    let copied_bytes = Arc::new(AtomicU64::new(0));
    let _ticker = {
        let (n, b, name) = (
            Arc::clone(&copied),
            Arc::clone(&copied_bytes),
            to.name().to_string(),
        );
        Ticker::spinner(move || {
            format!(
                "copying to {name}: {}, {}",
                crate::plan::words::count_s(n.load(Ordering::Relaxed), "object"),
                bytesize::ByteSize(b.load(Ordering::Relaxed))
            )
        })
    };
    for (dir, keys) in order.into_iter().zip(listed) {
        if dir == SNAPSHOTS {
            lock.ensure_fresh()?;
        }
        let have: HashMap<String, u64> = to
            .list(dir)
            .await?
            .into_iter()
            .map(|l| (l.key, l.size))
            .collect();
        // An object named by its hash that is there at another size is damage (truncated, or
        // something else in its place): the source's copy, checked against the name, replaces it.
        let hashed = dir != FORGOTTEN && dir != KEYS && dir != KEYS_REMOVED;
        let missing: Vec<(String, bool)> = keys
            .into_iter()
            .filter_map(|(k, size)| match have.get(&k) {
                None => Some((k, false)),
                Some(&there) if hashed && there != size => Some((k, true)),
                Some(_) => None,
            })
            .filter(|(k, _)| {
                dir != SNAPSHOTS || !k.rsplit('/').next().is_some_and(|n| forgotten.contains(n))
            })
            .filter(|(k, _)| !envelope_of(k).is_some_and(|id| removed.contains(&id)))
            .collect();
        let results: Vec<(String, Copied)> = futures::stream::iter(missing)
            .map(|(key, wrong)| {
                let (n, b) = (Arc::clone(&copied), Arc::clone(&copied_bytes));
                async move {
                    let bytes = from.get(&key).await?;
                    n.fetch_add(1, Ordering::Relaxed);
                    b.fetch_add(bytes.len() as u64, Ordering::Relaxed);
                    // Markers are empty and named by the snapshot they stand for; removal records
                    // are named by the envelope they remove.
                    let named = key
                        .rsplit('/')
                        .next()
                        .and_then(|n| n.parse::<Id>().ok())
                        .filter(|_| dir != FORGOTTEN && dir != KEYS_REMOVED);
                    if named.is_some_and(|id| Id::of_object(&bytes) != id) {
                        return Ok((key, Copied::Damaged));
                    }
                    let len = bytes.len() as u64;
                    if wrong {
                        to.put_replace(&key, bytes).await?;
                        return Ok((key, Copied::Replaced(len)));
                    }
                    let copied = match to.put_new(&key, bytes.clone()).await? {
                        Put::Created => Copied::Created(len),
                        // Not listed, yet the name is taken: something that is not an object (a
                        // pipe, a device) holds the place of a hash-named object.
                        Put::Existed if named.is_some() => {
                            to.put_replace(&key, bytes).await?;
                            Copied::Replaced(len)
                        }
                        Put::Existed => Copied::Existed,
                    };
                    Ok::<_, Error>((key, copied))
                }
            })
            // As many at once as the end that takes most does (an S3 target more than a disk).
            .buffer_unordered(from.transfers().max(to.transfers()).max(4))
            .try_collect()
            .await?;
        for (key, copied) in results {
            match copied {
                Copied::Created(len) => {
                    report.copied += 1;
                    report.bytes += len;
                }
                Copied::Replaced(len) => {
                    report.copied += 1;
                    report.bytes += len;
                    report.repaired.push(key);
                }
                Copied::Existed => {}
                Copied::Damaged => report.damaged.push(key),
            }
        }
        if dir == KEYS {
            carry_removals(to, &removed, &mut report).await?;
        }
    }
    heal_marked(from, to, &mut report).await?;
    if !has_config {
        let bytes = from.get(CONFIG).await?;
        to.put_new(CONFIG, bytes).await?;
        report.copied += 1;
    }
    if let Some(own) = own {
        own.release().await;
    }
    Ok(report)
}

/// How many of a prune's deletions [`mirror_deletions`] made on another target, and how many it
/// left for a later prune because the objects are under object lock.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Mirrored {
    pub deleted: usize,
    pub locked: usize,
}

/// Makes on `to` the deletions a prune made on `from` (`deleted`, in the order it made them),
/// once `to` has been given `from`'s new objects by [`replicate_with`], so that both hold the
/// same objects again. Also deletes what `from` no longer has and `to` still does: index objects
/// only `to` holds (it now holds every index object of `from`, which lists all that its
/// snapshots need) and snapshots a prune forgot. Snapshots go first, so that none is left
/// without what it uses. Objects written less than `object_lock` before `now` are under object
/// lock: they stay, and are counted. `lock` is the caller's exclusive lock on `to`, checked
/// fresh before each deletion.
pub async fn mirror_deletions(
    from: &Target,
    to: &Target,
    deleted: &[String],
    lock: &TargetLock,
    object_lock: Option<chrono::Duration>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Mirrored> {
    let mut modified = std::collections::HashMap::new();
    if object_lock.is_some() {
        for dir in [SNAPSHOTS, INDEX, DATA] {
            for l in to.list(dir).await? {
                modified.insert(l.key, l.modified);
            }
        }
    }
    let extra = left_behind(from, to, deleted).await?;
    let is_snapshot = |k: &&String| k.starts_with(SNAPSHOTS);
    let snapshots_first = extra
        .iter()
        .filter(is_snapshot)
        .chain(deleted.iter().filter(is_snapshot))
        .chain(extra.iter().filter(|k| !is_snapshot(k)))
        .chain(deleted.iter().filter(|k| !is_snapshot(k)));
    let mut done = Mirrored::default();
    for key in snapshots_first {
        lock.ensure_fresh()?;
        let under_lock = object_lock
            .zip(modified.get(key))
            .is_some_and(|(d, m)| *m + d > now);
        if under_lock {
            done.locked += 1;
            continue;
        }
        to.delete(key).await?;
        done.deleted += 1;
    }
    Ok(done)
}

/// What `to` holds that `from` no longer has, beyond the prune's own `deleted`: forgotten
/// snapshots (first), then index objects only `to` holds.
async fn left_behind(from: &Target, to: &Target, deleted: &[String]) -> Result<Vec<String>> {
    let mut extra = Vec::new();
    let theirs: HashSet<String> = from.list(INDEX).await?.into_iter().map(|l| l.key).collect();
    for l in to.list(INDEX).await? {
        if !theirs.contains(&l.key) && !deleted.contains(&l.key) {
            extra.push(l.key);
        }
    }
    let forgotten: HashSet<String> = to
        .list(FORGOTTEN)
        .await?
        .into_iter()
        .filter_map(|l| l.key.rsplit('/').next().map(str::to_string))
        .collect();
    for l in to.list(SNAPSHOTS).await? {
        let id = l.key.rsplit('/').next().unwrap_or_default();
        if forgotten.contains(id) && !deleted.contains(&l.key) {
            extra.insert(0, l.key);
        }
    }
    Ok(extra)
}

enum Copied {
    Created(u64),
    /// Written over something at its name that was not this object.
    Replaced(u64),
    Existed,
    Damaged,
}

/// Brings `to` the snapshots `from` has and `to` lacks, with exactly the data they need: the
/// packs holding blobs they use that `to` does not hold, a new index object listing those packs,
/// then the snapshots. Key envelopes and the small record objects are copied whole.
///
/// This is how the primary of a run catches up from the other targets. Copying everything the
/// primary lacks instead would copy back, from a target not pruned yet (or append-only), every
/// pack a prune deleted from the primary.
pub async fn pull(from: &Repository, to: &Repository) -> Result<ReplicateReport> {
    pull_with(from, to, None).await
}

/// Like [`pull`], under a lock on `to` the caller already holds.
pub async fn pull_with(
    from: &Repository,
    to: &Repository,
    held: Option<&TargetLock>,
) -> Result<ReplicateReport> {
    if from.config().id != to.config().id {
        return Err(Error::Usage(format!(
            "target \"{}\" holds a different repository ({}) from target \"{}\" ({}); refusing to mix them",
            from.target().name(),
            from.config().id.short(),
            to.target().name(),
            to.config().id.short()
        )));
    }
    let (src, dst) = (from.target(), to.target());
    let own = match held {
        Some(_) => None,
        None => Some(TargetLock::shared(dst, "copy").await?),
    };
    let lock = held.or(own.as_ref()).expect("one of them");
    let mut report = ReplicateReport::default();
    let forgotten = forgotten_ids(src, dst).await?;
    let removed = removed_ids(src, dst).await?;
    // Listed before anything is read, so that what they need is listed after them.
    let have_snapshots: HashSet<String> = dst
        .list(SNAPSHOTS)
        .await?
        .into_iter()
        .map(|l| l.key)
        .collect();
    let missing: Vec<String> = src
        .list(SNAPSHOTS)
        .await?
        .into_iter()
        .map(|l| l.key)
        .filter(|k| !have_snapshots.contains(k))
        .filter(|k| !k.rsplit('/').next().is_some_and(|n| forgotten.contains(n)))
        .collect();
    for dir in [KEYS_REMOVED, KEYS, FORGOTTEN, DRILLS, AUDIT, DECISIONS] {
        let have: HashSet<String> = dst.list(dir).await?.into_iter().map(|l| l.key).collect();
        for l in src.list(dir).await? {
            let removed_key = envelope_of(&l.key).is_some_and(|id| removed.contains(&id));
            if !have.contains(&l.key) && !removed_key {
                copy_one(
                    src,
                    dst,
                    &l.key,
                    dir != FORGOTTEN && dir != KEYS_REMOVED && !l.key.ends_with(".info"),
                    &mut report,
                )
                .await?;
            }
        }
        if dir == KEYS {
            carry_removals(dst, &removed, &mut report).await?;
        }
    }
    if !missing.is_empty() {
        let snapshots = pull_data(from, to, &missing, &mut report).await?;
        lock.ensure_fresh()?;
        for key in &snapshots {
            copy_one(src, dst, key, true, &mut report).await?;
        }
    }
    if let Some(own) = own {
        own.release().await;
    }
    Ok(report)
}

/// The envelopes named by a removal record on either target.
async fn removed_ids(one: &Target, other: &Target) -> Result<BTreeSet<Id>> {
    let mut removed = removed_envelopes(one).await?;
    removed.extend(removed_envelopes(other).await?);
    Ok(removed)
}

/// The envelope a `keys/ID` or `keys/ID.info` key belongs to.
fn envelope_of(key: &str) -> Option<Id> {
    let name = key.strip_prefix("keys/")?;
    name.strip_suffix(".info").unwrap_or(name).parse().ok()
}

/// Deletes from `to` the envelopes (and their info) that a removal record names, unless that
/// would leave `to` with no envelope at all: a copy nobody can open is worse than a key that
/// should have gone, so those stay and are noted. A deletion the store refuses (object lock) is
/// noted too; the next run tries again.
async fn carry_removals(
    to: &Target,
    removed: &BTreeSet<Id>,
    report: &mut ReplicateReport,
) -> Result<()> {
    if removed.is_empty() {
        return Ok(());
    }
    let listed: Vec<String> = to.list(KEYS).await?.into_iter().map(|l| l.key).collect();
    let envelopes: Vec<Id> = listed
        .iter()
        .filter_map(|k| crate::store::repo::envelope_id(k))
        .collect();
    if !envelopes.is_empty() && envelopes.iter().all(|id| removed.contains(id)) {
        let ids: Vec<String> = envelopes.iter().map(Id::short).collect();
        let n = envelopes.len() as u64;
        let them = noun(n, "it", "them");
        report.notes.push(format!(
            "kept {} {} on {}: a removal record names {them}, but {} there and without {them} it could never be opened",
            noun(n, "key", "keys"),
            ids.join(", "),
            to.name(),
            noun(n, "it is the only key", "they are the only keys"),
        ));
        return Ok(());
    }
    for key in &listed {
        let Some(id) = envelope_of(key).filter(|id| removed.contains(id)) else {
            continue;
        };
        match to.delete(key).await {
            Ok(()) if !key.ends_with(".info") => report.keys_removed.push(id.short()),
            Ok(()) => {}
            Err(e) => report
                .notes
                .push(format!("could not remove {key} from {}: {e}", to.name())),
        }
    }
    Ok(())
}

/// The ids of the snapshots a prune forgot on either target (their `forgotten/ID` markers).
async fn forgotten_ids(one: &Target, other: &Target) -> Result<HashSet<String>> {
    let mut forgotten: HashSet<String> = HashSet::new();
    for t in [one, other] {
        for l in t.list(FORGOTTEN).await? {
            if let Some(id) = l.key.rsplit('/').next() {
                forgotten.insert(id.to_string());
            }
        }
    }
    Ok(forgotten)
}

/// Brings `to` the data the snapshots `missing` of `from` use that `to` does not hold: the packs
/// holding it, and a new index object listing them. Returns the snapshots that can be read (the
/// others are noted as damaged), ready to be copied.
async fn pull_data(
    from: &Repository,
    to: &Repository,
    missing: &[String],
    report: &mut ReplicateReport,
) -> Result<Vec<String>> {
    let (src, dst) = (from.target(), to.target());
    // What the missing snapshots use, and where `from` keeps it.
    let mut snapshots = Vec::new();
    for key in missing {
        match from
            .load_sealed::<crate::store::snapshot::Snapshot>("snapshot", key)
            .await
        {
            Ok(s) => snapshots.push((key.clone(), s.tree)),
            Err(e @ Error::Target { .. }) => return Err(e),
            Err(_) => report.damaged.push(key.clone()),
        }
    }
    let mut listing: std::collections::HashMap<Id, IndexPack> = std::collections::HashMap::new();
    for l in src.list(INDEX).await? {
        match from.load_sealed::<IndexFile>("index", &l.key).await {
            Ok(f) => {
                for p in f.packs {
                    listing.entry(p.id).or_insert(p);
                }
            }
            Err(e @ Error::Target { .. }) => return Err(e),
            Err(_) => report.damaged.push(l.key),
        }
    }
    let mut from_index = Index::default();
    for p in listing.values() {
        from_index.add_pack(p.id, p.kind, p.size, &p.blobs);
    }
    let here = Index::load(to).await?;
    let used = crate::store::walk::used_blobs(from, &from_index, snapshots.iter().map(|(_, t)| *t))
        .await?;
    let mut needed: BTreeSet<Id> = BTreeSet::new();
    for blob in &used {
        let stored_here = here
            .index
            .get(blob)
            .is_some_and(|(p, _)| here.is_present(p));
        if !stored_here && let Some((p, _)) = from_index.get(blob) {
            needed.insert(p.id);
        }
    }
    let mut packs = Vec::new();
    for id in &needed {
        let key = pack_key(id);
        if !here.present.contains_key(id) && !copy_one(src, dst, &key, true, report).await? {
            continue;
        }
        if let Some(p) = listing.get(id) {
            packs.push(p.clone());
        }
    }
    if !packs.is_empty() {
        crate::store::index::save(to, packs).await?;
    }
    Ok(snapshots.into_iter().map(|(key, _)| key).collect())
}

/// Copies one object, checking a content-addressed one against its name first. Returns false
/// (and notes it) when the source copy is damaged.
async fn copy_one(
    from: &Target,
    to: &Target,
    key: &str,
    content_addressed: bool,
    report: &mut ReplicateReport,
) -> Result<bool> {
    let bytes = from.get(key).await?;
    let named = key.rsplit('/').next().and_then(|n| n.parse::<Id>().ok());
    if content_addressed && named.is_some_and(|id| Id::of_object(&bytes) != id) {
        report.damaged.push(key.to_string());
        return Ok(false);
    }
    let len = bytes.len() as u64;
    if to.put_new(key, bytes).await? == Put::Created {
        report.copied += 1;
        report.bytes += len;
    }
    Ok(true)
}
