//! Retention and pruning: forget the snapshots a schedule's retention no longer keeps, then
//! delete the packs no remaining snapshot uses.
//!
//! A prune marks, plans, then executes. It marks the snapshots to forget and the blobs the
//! others use, and from them [`plan`] works out a [`PrunePlan`]: what goes, in what order, and
//! what stays that no snapshot needs, and why. Nothing changes until [`prune_locked`] carries a
//! plan out, one it made under the target's exclusive lock; `--dry-run` prints the plan instead.
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
use crate::id::Id;
use crate::plan::retention::{Decision, Retention, select};
use crate::store::blobs::BlobReader;
use crate::store::index::{BlobLocation, Index, IndexFile, IndexPack};
use crate::store::lock::TargetLock;
use crate::store::repo::{DATA, FORGOTTEN, INDEX, Repository, SNAPSHOTS, pack_key};
use crate::store::snapshot::{Catalog, Listed};
use crate::store::target::Listed as Stored;

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
    pub now: DateTime<Utc>,
}

impl PruneOptions {
    /// When the object lock on an object written at `written` ends, if it has not yet.
    fn lock_ends(&self, written: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.object_lock
            .map(|d| written + d)
            .filter(|until| *until > self.now)
    }
}

/// A source prune forgets nothing of: it has a suspect snapshot no technician has accepted, or
/// a confirmed attack whose hold is not lifted, so the clean snapshots before it stay.
#[derive(Clone, Debug, Serialize)]
pub struct Hold {
    pub source: String,
    /// The snapshot that holds it (the oldest such), full id.
    pub snapshot: Id,
    /// `true` for a confirmed attack (held until lifted), `false` for a suspect one not decided.
    pub confirmed: bool,
    /// How many snapshots retention would otherwise have forgotten.
    pub spared: usize,
}

impl Hold {
    /// The sentence prune prints: what holds the source and what to do.
    pub fn sentence(&self) -> String {
        let id = self.snapshot.short();
        if self.confirmed {
            format!(
                "{}: nothing forgotten: snapshot {id} is a confirmed attack; the hold stays until `firesafe suspect lift {id} --note ...`",
                self.source
            )
        } else {
            format!(
                "{}: nothing forgotten: snapshot {id} is suspect (possible ransomware); decide with `firesafe suspect accept|confirm {id}`",
                self.source
            )
        }
    }
}

/// What a prune did (or, with `dry_run`, would do) on one target.
#[derive(Clone, Debug, Default, Serialize)]
pub struct PruneReport {
    pub target: String,
    pub dry_run: bool,
    /// Sources held because of a suspect snapshot: nothing of theirs is forgotten.
    pub held: Vec<Hold>,
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
    /// Lock objects of processes that were gone, and scratch files of killed backups, removed
    /// when the prune took its lock.
    #[serde(default)]
    pub stale_locks_removed: Vec<String>,
    #[serde(default)]
    pub scratch_removed: u64,
}

/// What a prune of one target will do, worked out from what the target holds without changing
/// anything. `--dry-run` prints it ([`PrunePlan::report`]); [`prune_locked`] works it out and
/// carries it out under the target's exclusive lock. Every list is in the order it is carried
/// out.
pub struct PrunePlan {
    pub target: String,
    /// Sources held because of a suspect snapshot (see [`Hold`]).
    pub held: Vec<Hold>,
    /// The snapshots that stay, and why (a retention rule, `newest`, `object lock`).
    pub kept: Vec<Decision>,
    /// The snapshots to forget: a marker `forgotten/ID` is written, then `snapshots/ID` goes.
    pub forget: Vec<Decision>,
    /// Packs in use of which at least [`REPACK_UNUSED_PERCENT`] percent is unused: their used
    /// blobs are copied into new packs, and the old packs are among `packs`.
    pub repack: Vec<IndexPack>,
    /// The packs that stay of the index objects being replaced: new index objects list them,
    /// and the new packs of `repack`, before the old index objects go.
    pub relist: Vec<IndexPack>,
    /// The index objects replaced (keys).
    pub index_objects: Vec<String>,
    /// The packs deleted last (keys), which no index object lists any more, and their bytes.
    pub packs: Vec<String>,
    pub bytes_freed: u64,
    /// The packs found worth rewriting and the bytes of used blobs in them, as the report gives
    /// them: counted before index objects under object lock spare some of them from `repack`.
    pub packs_repacked: u64,
    pub bytes_repacked: u64,
    /// Unused data that stays, and why.
    pub spared: Spared,
    /// The index as read, and every blob the remaining snapshots use: what `repack` copies.
    index: Index,
    used: HashSet<Id>,
    /// The deleted packs that were marked damaged: their marks go after them.
    unmark: Vec<Id>,
}

/// Data no remaining snapshot needs that a prune leaves where it is, and why.
#[derive(Clone, Debug, Default)]
pub struct Spared {
    /// Packs still partly in use and not worth rewriting, and the bytes in them no snapshot uses.
    pub packs_partly_used: u64,
    pub bytes_unused_in_kept_packs: u64,
    /// Unlisted packs younger than the grace period (rule 3).
    pub packs_in_grace: u64,
    /// Blobs the remaining snapshots use that no index places in a present pack, and the
    /// unlisted packs kept whatever their age because they may hold them (rule 4).
    pub blobs_unlocated: u64,
    pub packs_unindexed_kept: u64,
    /// Objects under object lock (snapshots, packs, index objects), and when the first lock ends.
    pub locked: Vec<String>,
    pub locked_until: Option<DateTime<Utc>>,
}

impl Spared {
    fn note_locked(&mut self, key: String, until: DateTime<Utc>) {
        self.locked.push(key);
        self.locked_until = Some(self.locked_until.map_or(until, |u| u.min(until)));
    }
}

impl PrunePlan {
    /// The report of this plan as a dry run: what a prune would do, nothing deleted.
    pub fn report(&self) -> PruneReport {
        PruneReport {
            target: self.target.clone(),
            dry_run: true,
            held: self.held.clone(),
            kept: self.kept.clone(),
            forgotten: self.forget.clone(),
            packs_deleted: self.packs.len() as u64,
            bytes_freed: self.bytes_freed,
            index_objects_rewritten: self.index_objects.len() as u64,
            packs_repacked: self.packs_repacked,
            bytes_repacked: self.bytes_repacked,
            packs_partly_used: self.spared.packs_partly_used,
            bytes_unused_in_kept_packs: self.spared.bytes_unused_in_kept_packs,
            packs_in_grace: self.spared.packs_in_grace,
            blobs_unlocated: self.spared.blobs_unlocated,
            packs_unindexed_kept: self.spared.packs_unindexed_kept,
            locked: self.spared.locked.clone(),
            locked_until: self.spared.locked_until,
            deleted: Vec::new(),
            stale_locks_removed: Vec::new(),
            scratch_removed: 0,
        }
    }
}

/// Prunes one repository (one target), taking its exclusive lock.
pub async fn prune(repo: &Repository, options: &PruneOptions) -> Result<PruneReport> {
    let lock = TargetLock::exclusive(repo.target(), "prune").await?;
    let report = prune_locked(repo, options, &lock).await;
    lock.release().await;
    report
}

/// Prunes one repository whose exclusive lock the caller holds: works the plan out under the
/// lock, then carries it out.
pub async fn prune_locked(
    repo: &Repository,
    options: &PruneOptions,
    lock: &TargetLock,
) -> Result<PruneReport> {
    let plan = plan(repo, options).await?;
    let mut report = execute(repo, plan, lock).await?;
    report.stale_locks_removed = lock.stale_removed().to_vec();
    report.scratch_removed = lock.scratch_removed();
    Ok(report)
}

/// Works out what pruning `repo` would do, and changes nothing. A snapshot, index object or tree
/// that cannot be read stops it: it cannot know what that snapshot uses. Unless the caller holds
/// the target's exclusive lock the plan is only a forecast (a dry run).
pub async fn plan(repo: &Repository, options: &PruneOptions) -> Result<PrunePlan> {
    let mut spared = Spared::default();
    let (catalog, kept, forget, held) = mark_snapshots(repo, options, &mut spared).await?;
    let survey = survey(repo, &catalog, &forget).await?;
    let packs = choose_packs(&survey, options, &mut spared);
    let Survey {
        index_files,
        present,
        index,
        used,
        marked,
    } = survey;
    let unmark = packs.delete.intersection(&marked).copied().collect();
    let mut keys: Vec<String> = packs.delete.iter().map(pack_key).collect();
    keys.sort();
    Ok(PrunePlan {
        target: repo.target().name().to_string(),
        held,
        kept,
        forget,
        repack: packs.repack,
        relist: packs.relist,
        index_objects: packs
            .rewrite
            .iter()
            .map(|&i| index_files[i].0.key.clone())
            .collect(),
        packs: keys,
        bytes_freed: packs
            .delete
            .iter()
            .filter_map(|id| present.get(id))
            .map(|l| l.size)
            .sum(),
        packs_repacked: packs.packs_repacked,
        bytes_repacked: packs.bytes_repacked,
        spared,
        index,
        used,
        unmark,
    })
}

/// The refusal to go on when something that decides what is used cannot be read.
fn refuse(repo: &Repository, what: String) -> Error {
    Error::Usage(format!(
        "target \"{}\": {what}; prune deletes nothing while it cannot tell what every snapshot uses (run `firesafe check` to see the damage)",
        repo.target().name()
    ))
}

/// Marks the snapshots to forget: those the retention does not keep, less those under object
/// lock (which stay, and so does what they use). Returns the catalog of every snapshot on the
/// target, then (kept, forgotten), each sorted by source and start.
async fn mark_snapshots(
    repo: &Repository,
    options: &PruneOptions,
    spared: &mut Spared,
) -> Result<(Catalog, Vec<Decision>, Vec<Decision>, Vec<Hold>)> {
    let target = repo.target();
    let catalog = Catalog::load(repo).await?;
    if let Some((key, e)) = catalog.damaged.first() {
        return Err(refuse(repo, format!("{key} cannot be read ({e})")));
    }
    // A decision that cannot be read might be the one that holds a source.
    if let Some((key, e)) = catalog.damaged_decisions.first() {
        return Err(refuse(repo, format!("{key} cannot be read ({e})")));
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
    let held = hold_suspect_sources(&catalog, options, &mut kept, &mut forgotten);
    forgotten.retain(|d| {
        let until = listed_snapshots
            .get(&d.id)
            .and_then(|w| options.lock_ends(*w));
        match until {
            Some(until) => {
                spared.note_locked(format!("{SNAPSHOTS}/{}", d.id), until);
                let mut d = d.clone();
                d.reasons.push("object lock".into());
                kept.push(d);
                false
            }
            None => true,
        }
    });
    kept.sort_by(|a, b| (&a.source, a.start).cmp(&(&b.source, b.start)));
    forgotten.sort_by(|a, b| (&a.source, a.start).cmp(&(&b.source, b.start)));
    Ok((catalog, kept, forgotten, held))
}

/// Keeps every snapshot of a source that has a suspect snapshot not accepted (or a confirmed
/// attack not lifted): the clean snapshots before an attack must outlive it.
fn hold_suspect_sources(
    catalog: &Catalog,
    options: &PruneOptions,
    kept: &mut Vec<Decision>,
    forgotten: &mut Vec<Decision>,
) -> Vec<Hold> {
    let mut held = Vec::new();
    for source in &options.sources {
        let Some(hold) = catalog.hold(source) else {
            continue;
        };
        let confirmed = matches!(
            catalog.standing(hold),
            crate::store::decisions::Standing::Confirmed(_)
        );
        let mut spared = 0;
        forgotten.retain(|d| {
            if &d.source != source {
                return true;
            }
            let mut d = d.clone();
            d.reasons.push("suspect hold".into());
            kept.push(d);
            spared += 1;
            false
        });
        held.push(Hold {
            source: source.clone(),
            snapshot: hold.id,
            confirmed,
            spared,
        });
    }
    held
}

/// What prune reads of a target's index and packs once the snapshots to forget are marked.
struct Survey {
    /// Every index object, sorted by key.
    index_files: Vec<(Stored, IndexFile)>,
    /// Every pack on the target, by id.
    present: HashMap<Id, Stored>,
    /// The index, packs that are present first, so that blobs stored twice are read from a pack
    /// that is there.
    index: Index,
    /// Every blob the remaining snapshots use.
    used: HashSet<Id>,
    /// Packs marked damaged (see `store::damage`): never rewritten, and deleted once every
    /// blob they hold is stored in another pack.
    marked: HashSet<Id>,
}

async fn survey(repo: &Repository, catalog: &Catalog, forget: &[Decision]) -> Result<Survey> {
    let target = repo.target();
    let forget: HashSet<Id> = forget.iter().map(|d| d.id).collect();
    // The index, object by object, so that affected objects can be rewritten.
    let index_keys: Vec<Stored> = target.list(INDEX).await?;
    let loaded: Vec<(Stored, Result<IndexFile>)> = futures::stream::iter(index_keys)
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
            Err(e) => return Err(refuse(repo, format!("{} cannot be read ({e})", l.key))),
        }
    }
    index_files.sort_by(|a, b| a.0.key.cmp(&b.0.key));
    let present: HashMap<Id, Stored> = target
        .list(DATA)
        .await?
        .into_iter()
        .filter_map(|l| {
            let id = l.key.rsplit('/').next()?.parse().ok()?;
            Some((id, l))
        })
        .collect();
    let marked = crate::store::damage::marked(target).await?;
    let mut index = Index::default();
    let mut ordered: Vec<&IndexPack> = index_files.iter().flat_map(|(_, f)| &f.packs).collect();
    ordered.sort_by_key(|p| (!present.contains_key(&p.id), marked.contains(&p.id)));
    for p in ordered {
        index.add_pack(p.id, p.kind, p.size, &p.blobs);
    }
    let roots = catalog
        .snapshots
        .iter()
        .filter(|l| !forget.contains(&l.id))
        .map(|l| l.snapshot.tree);
    let used = crate::store::walk::used_blobs(repo, &index, roots)
        .await
        .map_err(|e| {
            Error::Usage(format!(
                "target \"{}\": {e}; prune deletes nothing while it cannot tell what every snapshot uses",
                repo.target().name()
            ))
        })?;
    Ok(Survey {
        index_files,
        present,
        index,
        used,
        marked,
    })
}

/// The decisions about packs and index objects, before they become a [`PrunePlan`].
struct Packs {
    /// Every pack that goes, the repacked ones included.
    delete: HashSet<Id>,
    repack: Vec<IndexPack>,
    relist: Vec<IndexPack>,
    /// The index objects replaced, as positions in [`Survey::index_files`].
    rewrite: Vec<usize>,
    packs_repacked: u64,
    bytes_repacked: u64,
}

/// Which packs go, which are rewritten with only their used blobs, and which index objects are
/// replaced: rules 1, 3 and 4 of the module's safety argument, and object lock.
fn choose_packs(survey: &Survey, options: &PruneOptions, spared: &mut Spared) -> Packs {
    let Survey {
        index_files,
        present,
        used,
        ..
    } = survey;
    let mut packs = choose_listed(survey, options, spared);
    let listed: HashSet<Id> = index_files
        .iter()
        .flat_map(|(_, f)| &f.packs)
        .map(|p| p.id)
        .collect();
    // A used blob that no index places in a pack on the target may be in a pack no index lists
    // (its index object lost): then unlisted packs stay, whatever their age, until `repair`
    // indexes them again.
    let unlocated = used
        .iter()
        .filter(|b| {
            !survey
                .index
                .get(b)
                .is_some_and(|(p, _)| present.contains_key(&p.id))
        })
        .count() as u64;
    spared.blobs_unlocated = unlocated;
    for (id, l) in present {
        if !listed.contains(id) {
            if unlocated > 0 {
                spared.packs_unindexed_kept += 1;
            } else if l.modified + options.grace <= options.now {
                packs.delete.insert(*id);
            } else {
                spared.packs_in_grace += 1;
            }
        }
    }
    // Objects under object lock stay until it ends.
    let mut locked_packs = HashSet::new();
    for id in &packs.delete {
        if let Some(until) = present.get(id).and_then(|l| options.lock_ends(l.modified)) {
            spared.note_locked(pack_key(id), until);
            locked_packs.insert(*id);
        }
    }
    packs.delete.retain(|id| !locked_packs.contains(id));
    packs.delete.extend(packs.repack.iter().map(|p| p.id));
    // An index object under object lock cannot be replaced, so the packs it lists stay.
    for (l, f) in index_files {
        if f.packs.iter().any(|p| packs.delete.contains(&p.id))
            && let Some(until) = options.lock_ends(l.modified)
        {
            spared.note_locked(l.key.clone(), until);
            for p in &f.packs {
                packs.delete.remove(&p.id);
            }
        }
    }
    packs.repack.retain(|p| packs.delete.contains(&p.id));
    // Index objects that list a pack that goes (or one already missing that nothing uses).
    let gone = |p: &IndexPack| {
        packs.delete.contains(&p.id)
            || (!present.contains_key(&p.id) && p.blobs.iter().all(|b| !used.contains(&b.id)))
    };
    packs.rewrite = index_files
        .iter()
        .enumerate()
        .filter(|(_, (l, f))| options.lock_ends(l.modified).is_none() && f.packs.iter().any(gone))
        .map(|(i, _)| i)
        .collect();
    packs.relist = packs
        .rewrite
        .iter()
        .flat_map(|&i| index_files[i].1.packs.iter())
        .filter(|p| !gone(p))
        .cloned()
        .collect();
    packs
}

/// The packs some index object lists: those no remaining snapshot uses go; those in use of which
/// at least [`REPACK_UNUSED_PERCENT`] percent is unused are rewritten, if present and not under
/// object lock; the others that hold unused blobs stay, and are counted.
fn choose_listed(survey: &Survey, options: &PruneOptions, spared: &mut Spared) -> Packs {
    let Survey {
        index_files,
        present,
        used,
        ..
    } = survey;
    let mut listing: HashMap<Id, &IndexPack> = HashMap::new();
    let mut in_use: HashSet<Id> = HashSet::new();
    for p in index_files.iter().flat_map(|(_, f)| &f.packs) {
        listing.entry(p.id).or_insert(p);
        // A damaged pack is in use only for the blobs no other pack holds.
        let needs = |b: &&crate::format::pack::PackEntry| {
            used.contains(&b.id)
                && (!survey.marked.contains(&p.id)
                    || survey.index.get(&b.id).is_some_and(|(q, _)| q.id == p.id))
        };
        if p.blobs.iter().any(|b| needs(&b)) {
            in_use.insert(p.id);
        }
    }
    let mut packs = Packs {
        delete: HashSet::new(),
        repack: Vec::new(),
        relist: Vec::new(),
        rewrite: Vec::new(),
        packs_repacked: 0,
        bytes_repacked: 0,
    };
    for (id, p) in &listing {
        if !in_use.contains(id) {
            packs.delete.insert(*id);
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
            .is_some_and(|l| options.lock_ends(l.modified).is_some());
        if unused > 0
            && unused * 100 >= total * REPACK_UNUSED_PERCENT
            && present.contains_key(id)
            && !locked
            && !survey.marked.contains(id)
        {
            packs.repack.push((*p).clone());
            packs.packs_repacked += 1;
            packs.bytes_repacked += total - unused;
        } else if unused > 0 {
            spared.packs_partly_used += 1;
            spared.bytes_unused_in_kept_packs += unused;
        }
    }
    packs.repack.sort_by_key(|p| p.id);
    packs
}

/// Carries `plan` out on `repo`, whose exclusive lock the caller held while making it, in the
/// order that keeps the repository valid at every instant, checking the lock is fresh before
/// each step that deletes.
async fn execute(repo: &Repository, plan: PrunePlan, lock: &TargetLock) -> Result<PruneReport> {
    let target = repo.target();
    let mut report = plan.report();
    report.dry_run = false;
    // 1. Forget snapshots: the marker first, so that no copy brings one back.
    lock.ensure_fresh()?;
    for d in &plan.forget {
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
    let mut relist = plan.relist;
    relist.extend(rewrite_packs(repo, &plan.index, &plan.repack, &plan.used).await?);
    crate::store::index::save(repo, relist).await?;
    for key in plan.index_objects {
        target.delete(&key).await?;
        report.deleted.push(key);
    }
    // 3. The packs no index lists any more.
    lock.ensure_fresh()?;
    let results: Vec<Result<()>> = futures::stream::iter(plan.packs.clone())
        .map(|k| async move { target.delete(&k).await })
        .buffer_unordered(8)
        .collect()
        .await;
    results.into_iter().collect::<Result<Vec<()>>>()?;
    // The damage marks of packs deleted go with them.
    for id in &plan.unmark {
        crate::store::damage::unmark(target, id).await?;
    }
    report.deleted.extend(plan.packs);
    Ok(report)
}

/// Copies the used blobs of `packs` into new packs, checking each against its id first; returns
/// the new packs for the index. Blobs are copied as stored (not recompressed).
async fn rewrite_packs(
    repo: &Repository,
    index: &Index,
    packs: &[IndexPack],
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

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;
    use crate::format::crypto::{self, Recipient};
    use crate::ops::backup::{BackupOptions, backup};
    use crate::store::repo::InitOptions;
    use crate::store::target::{Location, Target, TargetOptions};

    async fn repository(dir: &Path) -> Repository {
        let url = dir.join("repo").display().to_string();
        let location = Location::parse(&url).expect("location");
        let target =
            Target::open("store", &location, &TargetOptions::default(), true).expect("target");
        let (_, public) = crypto::generate_identity_file();
        let who = Recipient::parse_x25519(&public).expect("recipient");
        Repository::init(target, &[(who, "test".into())], &InitOptions::default())
            .await
            .expect("init")
    }

    async fn keys(repo: &Repository, dir: &str) -> BTreeSet<String> {
        let listed = repo.target().list(dir).await.expect("list");
        listed.into_iter().map(|l| l.key).collect()
    }

    async fn everything(repo: &Repository) -> BTreeSet<String> {
        keys(repo, "").await
    }

    fn options(now: DateTime<Utc>) -> PruneOptions {
        PruneOptions {
            retention: Retention {
                last: 1,
                ..Retention::default()
            },
            sources: vec!["share".into()],
            timezone: chrono_tz::Europe::London,
            grace: chrono::Duration::hours(24),
            object_lock: None,
            now,
        }
    }

    /// Two snapshots of a file that changed completely: keeping the last, the plan forgets the
    /// first and deletes exactly the packs and index objects only it used, changing nothing;
    /// carried out, it deletes them in that order.
    #[tokio::test]
    async fn a_plan_deletes_only_what_the_forgotten_snapshot_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        let share = dir.path().join("share");
        std::fs::create_dir_all(&share).expect("mkdir");
        let repo = repository(dir.path()).await;
        let file = share.join("a.txt");
        std::fs::write(&file, "the first draft, which nobody will miss").expect("write");
        let first = backup(&repo, &BackupOptions::new("share", vec![share.clone()]))
            .await
            .expect("first backup");
        let (first_packs, first_index) = (keys(&repo, DATA).await, keys(&repo, INDEX).await);
        std::fs::write(&file, "the second draft, entirely rewritten").expect("write");
        backup(&repo, &BackupOptions::new("share", vec![share.clone()]))
            .await
            .expect("second backup");
        let before = everything(&repo).await;

        let plan = plan(&repo, &options(Utc::now())).await.expect("plan");
        assert_eq!(
            everything(&repo).await,
            before,
            "planning changed the target"
        );
        let forget: Vec<Id> = plan.forget.iter().map(|d| d.id).collect();
        assert_eq!(forget, vec![first.id]);
        assert_eq!(plan.kept.len(), 1);
        assert!(plan.kept[0].reasons.contains(&"last".to_string()));
        assert_eq!(plan.packs, first_packs.iter().cloned().collect::<Vec<_>>());
        assert_eq!(
            plan.index_objects,
            first_index.iter().cloned().collect::<Vec<_>>()
        );
        assert!(plan.repack.is_empty() && plan.relist.is_empty());
        assert_eq!(plan.spared.locked, Vec::<String>::new());
        let report = plan.report();
        assert!(report.dry_run && report.deleted.is_empty());
        assert_eq!(report.packs_deleted, first_packs.len() as u64);

        let done = prune(&repo, &options(Utc::now())).await.expect("prune");
        assert!(!done.dry_run);
        let mut expected = vec![format!("{SNAPSHOTS}/{}", first.id)];
        expected.extend(first_index.iter().cloned());
        expected.extend(first_packs.iter().cloned());
        assert_eq!(done.deleted, expected);
        let after = everything(&repo).await;
        assert!(expected.iter().all(|k| !after.contains(k)));
        assert!(after.contains(&format!("{FORGOTTEN}/{}", first.id)));
    }

    /// A pack no index lists stays while it is younger than the grace period, and goes after.
    #[tokio::test]
    async fn an_unlisted_pack_waits_out_the_grace_period() {
        let dir = tempfile::tempdir().expect("tempdir");
        let share = dir.path().join("share");
        std::fs::create_dir_all(&share).expect("mkdir");
        std::fs::write(share.join("a.txt"), "kept").expect("write");
        let repo = repository(dir.path()).await;
        backup(&repo, &BackupOptions::new("share", vec![share.clone()]))
            .await
            .expect("backup");
        let orphan = pack_key(&Id::random());
        repo.target()
            .put_new(&orphan, bytes::Bytes::from_static(b"from a killed backup"))
            .await
            .expect("put");

        let now = Utc::now();
        let young = plan(&repo, &options(now)).await.expect("plan");
        assert!(young.packs.is_empty() && young.forget.is_empty());
        assert_eq!(young.spared.packs_in_grace, 1);
        let old = plan(&repo, &options(now + chrono::Duration::hours(25)))
            .await
            .expect("plan");
        assert_eq!(old.packs, vec![orphan]);
        assert_eq!(old.spared.packs_in_grace, 0);
        assert!(old.index_objects.is_empty());
    }
}
