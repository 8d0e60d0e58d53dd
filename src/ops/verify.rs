//! Verification of a schedule's copies, and repair of one copy from another.
//!
//! Each run checks every target's structure (every index object, snapshot and tree read; every
//! pack a snapshot needs present at its recorded size), reads back a rotating share of each
//! target's packs so that every pack is read within a fixed number of runs, and compares the
//! targets with each other. Objects are named by the hash of their bytes and every target holds
//! the same logical repository, so two copies of one name must be the same bytes: a copy that
//! fails its name is damaged, and an object that one target lacks is missing there.
//!
//! Repair replaces a damaged or missing object with a copy from another target that passes every
//! check (its name, and for a pack its decryption, header and every blob), then reads it back.
//! Packs that no index object lists (their index object was lost) are indexed again from their
//! own headers. What cannot be repaired is reported with the snapshots and files it affects.
//!
//! # Rotation
//!
//! With `read_percent = P`, a cycle is `ceil(100 / P)` runs. Each run reads the packs not yet
//! read in the current cycle, oldest read first, up to an equal share of what remains for the
//! runs left, so that the last run of the cycle reads the rest: every pack present for the
//! whole cycle is read exactly once per cycle, and packs added during a cycle join it. The
//! state is kept in `STATE/coverage/TARGET.json`.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Id;
use crate::ops::check::{self, CheckOptions};
use crate::plan::words::{count_s, noun};
use crate::store::index::{self, IndexPack};
use crate::store::lock::TargetLock;
use crate::store::records::{Finding, VerifyRecord};
use crate::store::repo::{DATA, FORGOTTEN, INDEX, KEYS, Repository, SNAPSHOTS, pack_key};
use crate::store::state::StateDir;
use crate::store::target::Target;

/// How much data a verification reads back.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Read {
    /// This percent of each target's packs (by bytes), in rotation.
    Rotating(f64),
    /// Every pack.
    All,
    /// None: structure and comparison only.
    Nothing,
}

/// The share of each target's data read back per run, in percent, when nothing else is said
/// (the schedule's `[verify] read_percent`, or `firesafe verify --read-percent`): every pack is
/// then read once every 20 runs.
pub const DEFAULT_READ_PERCENT: f64 = 5.0;

/// How a verification runs.
#[derive(Clone, Debug)]
pub struct VerifyOptions {
    pub read: Read,
    /// Replace what is damaged or missing from a healthy copy elsewhere.
    pub repair: bool,
    /// With `repair`: say what would be repaired, change nothing.
    pub dry_run: bool,
    pub progress: bool,
}

/// The rotation state of one target.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Coverage {
    /// When each pack (by id) was last read back and found good.
    pub last_read: BTreeMap<String, DateTime<Utc>>,
    /// Packs read in the current cycle.
    pub cycle_read: BTreeSet<String>,
    /// Runs done in the current cycle.
    pub cycle_runs: u32,
    /// When the last cycle finished: every pack then present had been read.
    pub last_complete: Option<DateTime<Utc>>,
}

impl Coverage {
    fn path(state: &StateDir, target: &str) -> std::path::PathBuf {
        state.path().join("coverage").join(format!("{target}.json"))
    }

    pub fn load(state: &StateDir, target: &str) -> Result<Coverage> {
        crate::store::state::read_json(
            &Self::path(state, target),
            "is not valid coverage state (delete it to start a new cycle)",
        )
    }

    fn save(&self, state: &StateDir, target: &str) -> Result<()> {
        crate::store::state::write_json(&Self::path(state, target), self)
    }

    /// The packs to read this run, out of `packs` (id, size).
    pub fn choose(&self, packs: &[(Id, u64)], runs_per_cycle: u32) -> Vec<Id> {
        let mut remaining: Vec<&(Id, u64)> = packs
            .iter()
            .filter(|(id, _)| !self.cycle_read.contains(&id.to_hex()))
            .collect();
        remaining.sort_by_key(|(id, _)| (self.last_read.get(&id.to_hex()).copied(), *id));
        let runs_left = u64::from(runs_per_cycle.saturating_sub(self.cycle_runs).max(1));
        let bytes: u64 = remaining.iter().map(|(_, s)| s).sum();
        let budget = bytes.div_ceil(runs_left);
        let mut taken = 0;
        let mut out = Vec::new();
        for (id, size) in remaining {
            if taken >= budget {
                break;
            }
            taken += size;
            out.push(*id);
        }
        out
    }

    /// Records a run that read `read` (all good) out of `packs`. A cycle is `runs_per_cycle`
    /// runs: when its packs are all read before the end, the remaining runs read nothing, so
    /// that no pack is read twice in one cycle.
    pub fn record(
        &mut self,
        packs: &[(Id, u64)],
        read: &[Id],
        runs_per_cycle: u32,
        now: DateTime<Utc>,
    ) {
        let present: HashSet<String> = packs.iter().map(|(id, _)| id.to_hex()).collect();
        self.last_read.retain(|k, _| present.contains(k));
        self.cycle_read.retain(|k| present.contains(k));
        let complete_before = present.iter().all(|k| self.cycle_read.contains(k));
        for id in read {
            self.last_read.insert(id.to_hex(), now);
            self.cycle_read.insert(id.to_hex());
        }
        self.cycle_runs += 1;
        let complete = present.iter().all(|k| self.cycle_read.contains(k));
        if complete && (!complete_before || !read.is_empty()) {
            self.last_complete = Some(now);
        }
        if self.cycle_runs >= runs_per_cycle {
            self.cycle_read.clear();
            self.cycle_runs = 0;
        }
    }

    /// The share of `packs`' bytes read back since `since`.
    pub fn share_since(&self, packs: &[(Id, u64)], since: DateTime<Utc>) -> f64 {
        let total: u64 = packs.iter().map(|(_, s)| s).sum();
        if total == 0 {
            return 1.0;
        }
        let read: u64 = packs
            .iter()
            .filter(|(id, _)| {
                self.last_read
                    .get(&id.to_hex())
                    .is_some_and(|t| *t >= since)
            })
            .map(|(_, s)| s)
            .sum();
        read as f64 / total as f64
    }
}

/// Verifies one target: the check with its share of packs read back, the differences with the
/// other targets, repairs (with `options.repair`), and the rotation state; fills in `record`.
#[allow(clippy::too_many_arguments)]
pub async fn verify_target(
    repo: &Repository,
    others: &[(&str, &Repository)],
    differences: Option<&Vec<Finding>>,
    state: &StateDir,
    options: &VerifyOptions,
    runs_per_cycle: u32,
    now: DateTime<Utc>,
    record: &mut VerifyRecord,
) -> Result<()> {
    let name = repo.target().name().to_string();
    let packs = list_packs(repo).await?;
    record.packs_total = packs.len() as u64;
    record.bytes_total = packs.iter().map(|(_, s)| s).sum();
    let mut coverage = Coverage::load(state, &name)?;
    let chosen: Vec<Id> = match options.read {
        Read::All => packs.iter().map(|(id, _)| *id).collect(),
        Read::Rotating(_) => coverage.choose(&packs, runs_per_cycle),
        Read::Nothing => Vec::new(),
    };
    let (mut findings, good_reads) = check_and_read(repo, &chosen, options, record).await?;
    if let Some(diff) = differences {
        for d in diff {
            if !findings.iter().any(|f| f.object == d.object) {
                findings.push(d.clone());
            }
        }
    }
    record.compared = others.len().saturating_sub(1) as u64;

    if options.repair && !findings.is_empty() {
        repair(repo, others, &mut findings, options.dry_run).await?;
    }

    if !options.dry_run && options.read != Read::Nothing {
        if options.read == Read::All {
            // A full read completes a cycle of its own; the rotation starts again.
            coverage.cycle_read.clear();
            coverage.cycle_runs = 0;
        }
        let runs = if options.read == Read::All {
            1
        } else {
            runs_per_cycle
        };
        coverage.record(&packs, &good_reads, runs, now);
        coverage.save(state, &name)?;
    }
    record.coverage_30d = coverage.share_since(&packs, now - chrono::Duration::days(30));
    record.coverage_90d = coverage.share_since(&packs, now - chrono::Duration::days(90));
    record.last_complete_read = coverage.last_complete;
    let unresolved = findings
        .iter()
        .any(|f| !f.repair.starts_with("repaired") || f.repair.contains("still damaged"));
    record.result = if unresolved {
        crate::store::records::CheckOutcome::Fail
    } else {
        crate::store::records::CheckOutcome::Pass
    };
    record.findings = findings;
    Ok(())
}

/// The packs on the target (id, size).
async fn list_packs(repo: &Repository) -> Result<Vec<(Id, u64)>> {
    Ok(repo
        .target()
        .list(DATA)
        .await?
        .into_iter()
        .filter_map(|l| {
            let id: Id = l.key.rsplit('/').next()?.parse().ok()?;
            (l.key == pack_key(&id)).then_some((id, l.size))
        })
        .collect())
}

/// Checks the target's structure and reads back the `chosen` packs. Returns the findings, and
/// the chosen packs that read back intact.
async fn check_and_read(
    repo: &Repository,
    chosen: &[Id],
    options: &VerifyOptions,
    record: &mut VerifyRecord,
) -> Result<(Vec<Finding>, Vec<Id>)> {
    let check_options = CheckOptions {
        read_data: !chosen.is_empty(),
        only_packs: Some(chosen.iter().copied().collect()),
        progress: options.progress,
    };
    let report = check::check(repo, &check_options).await?;
    record.structure_checked = true;
    record.bytes_read = report.bytes_read;
    let damaged: HashSet<String> = report.findings.iter().map(|f| f.object.clone()).collect();
    let good_reads: Vec<Id> = chosen
        .iter()
        .filter(|id| !damaged.contains(&pack_key(id)))
        .copied()
        .collect();
    record.packs_read = chosen.len() as u64;
    let findings = report.findings.iter().map(finding).collect();
    Ok((findings, good_reads))
}

/// A check's finding as the record keeps it, with the affected files in words.
fn finding(f: &check::Finding) -> Finding {
    Finding {
        object: f.object.clone(),
        problem: f.problem.clone(),
        repair: String::new(),
        affects: f
            .affects
            .iter()
            .map(|a| {
                format!(
                    "snapshot {} ({}, {}): {}{}",
                    a.snapshot.short(),
                    a.source,
                    a.time.format("%Y-%m-%d %H:%M UTC"),
                    a.paths.join(", "),
                    if a.count > a.paths.len() {
                        format!(" and {} more", a.count - a.paths.len())
                    } else {
                        String::new()
                    }
                )
            })
            .collect(),
    }
}

/// Repairs what the findings name, under a shared lock so that no prune runs meanwhile, and
/// records in each finding what was done; then (not in a dry run) checks what was repaired.
async fn repair(
    repo: &Repository,
    others: &[(&str, &Repository)],
    findings: &mut [Finding],
    dry_run: bool,
) -> Result<()> {
    let lock = if dry_run {
        None
    } else {
        Some(TargetLock::shared(repo.target(), "repair").await?)
    };
    for f in findings.iter_mut() {
        f.repair = repair_object(repo, others, &f.object, dry_run).await;
    }
    // A lost index object: one copied back from another target above may list the blob again;
    // otherwise the packs no index lists are indexed again from their headers, and the new index
    // objects (with any pack they list that a copy lacks) are carried to every other copy, so
    // that the copies stay identical.
    if findings.iter().any(|f| f.object.starts_with("blob ")) {
        let listed = if dry_run {
            None
        } else {
            Some(index::Index::load(repo).await?.index)
        };
        let still_lost = |f: &Finding| {
            let id = f
                .object
                .strip_prefix("blob ")
                .and_then(|h| h.parse::<Id>().ok());
            listed
                .as_ref()
                .is_none_or(|i| id.is_none_or(|id| !i.contains(&id)))
        };
        for f in findings
            .iter_mut()
            .filter(|f| f.object.starts_with("blob "))
        {
            if !still_lost(f) {
                f.repair = "repaired: an index object copied from another target lists it".into();
            }
        }
        if findings
            .iter()
            .any(|f| f.object.starts_with("blob ") && f.repair.is_empty())
        {
            let (rebuilt, written) = reindex(repo, dry_run).await?;
            let carried = carry(repo, others, &written).await;
            for f in findings
                .iter_mut()
                .filter(|f| f.object.starts_with("blob ") && f.repair.is_empty())
            {
                f.repair = if rebuilt > 0 {
                    format!(
                        "{} {} no index listed{carried}",
                        if dry_run { "would index" } else { "indexed" },
                        count_s(rebuilt as u64, "pack")
                    )
                } else {
                    "not repaired: no pack on any target holds it".into()
                };
            }
        }
    }
    if let Some(lock) = lock {
        lock.release().await;
    }
    if !dry_run {
        confirm_repairs(repo, findings).await?;
    }
    Ok(())
}

/// What the repairs really achieved: checks again, reading what was replaced, and says in each
/// finding whether its object is still damaged.
async fn confirm_repairs(repo: &Repository, findings: &mut [Finding]) -> Result<()> {
    let replaced: HashSet<Id> = findings
        .iter()
        .filter(|f| f.repair.starts_with("repaired"))
        .filter_map(|f| f.object.rsplit('/').next()?.parse().ok())
        .collect();
    let again = check::check(
        repo,
        &CheckOptions {
            read_data: !replaced.is_empty(),
            only_packs: Some(replaced),
            progress: false,
        },
    )
    .await?;
    let left: HashSet<&str> = again.findings.iter().map(|f| f.object.as_str()).collect();
    for f in findings.iter_mut() {
        if f.repair.starts_with("repaired") && left.contains(f.object.as_str()) {
            f.repair = format!("{}, but it is still damaged", f.repair);
        } else if f.object.starts_with("blob ")
            && f.repair.starts_with("indexed")
            && !left.contains(f.object.as_str())
        {
            f.repair = format!("repaired: {}", f.repair);
        }
    }
    Ok(())
}

/// Replaces `object` on `repo`'s target with a good copy from another target. Returns what
/// happened, in words for the record.
async fn repair_object(
    repo: &Repository,
    others: &[(&str, &Repository)],
    object: &str,
    dry_run: bool,
) -> String {
    if object.starts_with("blob ") {
        return String::new();
    }
    // A removed key is never copied back: the runs remove it from every copy.
    if let Some(name) = object.strip_prefix(&format!("{KEYS}/")) {
        let id = name.strip_suffix(".info").unwrap_or(name);
        let record = format!("{}/{id}", crate::store::repo::KEYS_REMOVED);
        for (n, r) in others.iter().copied().chain([("this copy", repo)]) {
            if let Ok(true) = r.target().exists(&record).await {
                return format!(
                    "not repaired: the key was removed ({record} on {n}); the next run or sync removes it from every copy"
                );
            }
        }
    }
    // A prune may have forgotten the snapshot since the comparison listed the targets; the
    // caller's lock keeps prunes out from here on, so the marker is checked now.
    if let Some(id) = object.strip_prefix(&format!("{SNAPSHOTS}/")) {
        match repo.target().exists(&format!("{FORGOTTEN}/{id}")).await {
            Ok(false) => {}
            Ok(true) => return "not repaired: a prune forgot this snapshot".into(),
            Err(e) => return format!("not repaired: {e}"),
        }
    }
    let here = repo.target().name();
    for (name, other) in others {
        if *name == here {
            continue;
        }
        let Ok(Some(bytes)) = other.target().get_opt(object).await else {
            continue;
        };
        if good_copy(repo, object, &bytes).is_err() {
            continue;
        }
        if dry_run {
            return format!("would be repaired from {name}");
        }
        return match repo.target().put_replace(object, bytes.clone()).await {
            Ok(()) => match repo.target().get_opt(object).await {
                Ok(Some(back)) if back == bytes => match unmark_repaired(repo, object).await {
                    Ok(()) => format!("repaired from {name}"),
                    Err(e) => format!("repaired from {name}, but its damage mark stays: {e}"),
                },
                _ => format!("not repaired: the copy from {name} did not read back intact"),
            },
            Err(e) => format!("not repaired: {e}"),
        };
    }
    "not repaired: no healthy copy on any other target".into()
}

/// Removes the damage mark of a pack just replaced by an intact copy.
async fn unmark_repaired(repo: &Repository, object: &str) -> Result<()> {
    match object
        .strip_prefix(&format!("{DATA}/"))
        .and_then(|k| k.rsplit('/').next())
        .and_then(|n| n.parse::<Id>().ok())
    {
        Some(id) => crate::store::damage::unmark(repo.target(), &id).await,
        None => Ok(()),
    }
}

/// Whether `bytes` are a good copy of `object`: the name, and for a pack every blob in it.
fn good_copy(repo: &Repository, object: &str, bytes: &[u8]) -> std::result::Result<(), String> {
    let name = object.rsplit('/').next().unwrap_or_default();
    let content_addressed = [DATA, INDEX, SNAPSHOTS]
        .iter()
        .any(|d| object.starts_with(&format!("{d}/")))
        || (object.starts_with(&format!("{KEYS}/")) && !object.ends_with(".info"));
    if content_addressed {
        let id: Id = name.parse().map_err(|_| "not named by an id".to_string())?;
        if Id::of_object(bytes) != id {
            return Err("does not match its name".into());
        }
        if object.starts_with(&format!("{DATA}/")) {
            let plain = crate::store::blobs::open_pack(repo.key(), "copy", &id, bytes)
                .map_err(|e| e.to_string())?;
            let header = crate::format::pack::read_header(&plain)?;
            for b in &header.blobs {
                let loc = crate::store::index::BlobLocation {
                    pack: 0,
                    offset: b.offset,
                    length: b.length,
                    raw_length: b.raw_length,
                    zstd: b.zstd,
                };
                let max = crate::store::blobs::MAX_BLOB_BYTES;
                crate::store::blobs::with_blob(repo.key(), &plain, &b.id, &loc, max, |_| ())?;
            }
        }
    }
    Ok(())
}

/// Writes an index object for the packs on the target that no index object lists, from their
/// own headers. Returns how many packs it listed.
/// Copies the index objects `written` on `repo` by a repair to every other copy, with the packs
/// they list that a copy lacks (each checked against its name). Returns words for the record:
/// empty when there was nothing to carry.
async fn carry(repo: &Repository, others: &[(&str, &Repository)], written: &[Id]) -> String {
    if written.is_empty() {
        return String::new();
    }
    let here = repo.target().name();
    let mut done = Vec::new();
    let mut failed = Vec::new();
    for (name, other) in others.iter().filter(|(n, _)| *n != here) {
        match carry_to(repo, other, written).await {
            Ok(()) => done.push(name.to_string()),
            Err(e) => failed.push(format!("{name}: {e}")),
        }
    }
    let mut words = String::new();
    if !done.is_empty() {
        words.push_str(&format!(
            "; the new {} copied to {}",
            noun(written.len() as u64, "index object", "index objects"),
            done.join(", ")
        ));
    }
    if !failed.is_empty() {
        words.push_str(&format!(
            "; not copied to {} (the next run copies {})",
            failed.join("; "),
            noun(written.len() as u64, "it", "them")
        ));
    }
    words
}

async fn carry_to(repo: &Repository, other: &Repository, written: &[Id]) -> Result<()> {
    for id in written {
        let key = format!("{INDEX}/{id}");
        let bytes = repo.target().get(&key).await?;
        let file: index::IndexFile = repo.open_sealed("index", &key, &bytes)?;
        for p in &file.packs {
            let pack = pack_key(&p.id);
            // A plain object, not merely a name: a named pipe or a folder where the pack should
            // be is damage, and is replaced below.
            if other.target().holds_object(&pack).await? {
                continue;
            }
            let damaged = other.target().exists(&pack).await?;
            let data = repo.target().get(&pack).await?;
            if Id::of_object(&data) != p.id {
                return Err(Error::Corrupt {
                    what: "pack",
                    id: pack,
                    target: repo.target().name().to_string(),
                    detail: "its content does not match its name".into(),
                });
            }
            if damaged {
                other.target().put_replace(&pack, data).await?;
            } else {
                other.target().put_new(&pack, data).await?;
            }
        }
        other.target().put_new(&key, bytes).await?;
    }
    Ok(())
}

async fn reindex(repo: &Repository, dry_run: bool) -> Result<(usize, Vec<Id>)> {
    let loaded = index::Index::load(repo).await?;
    let unlisted: Vec<Id> = loaded
        .present
        .keys()
        .filter(|id| loaded.index.pack(id).is_none())
        .copied()
        .collect();
    if dry_run {
        return Ok((unlisted.len(), Vec::new()));
    }
    let mut packs = Vec::new();
    for id in unlisted {
        let Some(bytes) = repo.target().get_opt(&pack_key(&id)).await? else {
            continue;
        };
        let Ok(plain) =
            crate::store::blobs::open_pack(repo.key(), repo.target().name(), &id, &bytes)
        else {
            continue;
        };
        let Ok(header) = crate::format::pack::read_header(&plain) else {
            continue;
        };
        packs.push(IndexPack {
            id,
            kind: header.kind,
            size: bytes.len() as u64,
            blobs: header.blobs,
        });
    }
    // Split as every writer splits them (see `index::save`), so that no index object grows
    // past what a reader accepts (`MAX_SEALED_BYTES`).
    let count = packs.len();
    let written = index::save(repo, packs).await?;
    Ok((count, written))
}

/// Objects that some targets hold and others lack, or hold at another size: a finding for each
/// target concerned. Packs are left to each target's own check (a pack one target lacks matters
/// only if that target's index lists it), and snapshots a prune forgot are left out. Key
/// envelopes are compared by [`crate::ops::keys::differences`], which knows removals.
pub async fn compare(targets: &[(&str, &Repository)]) -> Result<HashMap<String, Vec<Finding>>> {
    let mut out: HashMap<String, Vec<Finding>> = HashMap::new();
    if targets.len() < 2 {
        return Ok(out);
    }
    for d in crate::ops::keys::differences(targets).await? {
        out.entry(d.copy).or_default().push(Finding {
            object: d.object,
            problem: d.problem,
            repair: String::new(),
            affects: Vec::new(),
        });
    }
    let mut removed: HashSet<Id> = HashSet::new();
    for (_, repo) in targets {
        removed.extend(crate::store::repo::removed_envelopes(repo.target()).await?);
    }
    let mut forgotten: HashSet<String> = HashSet::new();
    let mut listings: Vec<(&str, HashMap<String, u64>)> = Vec::new();
    for (name, repo) in targets {
        let t: &Target = repo.target();
        for l in t.list(FORGOTTEN).await? {
            if let Some(id) = l.key.rsplit('/').next() {
                forgotten.insert(id.to_string());
            }
        }
        let mut keys = HashMap::new();
        for dir in [KEYS, INDEX, SNAPSHOTS, DATA] {
            for l in t.list(dir).await? {
                keys.insert(l.key, l.size);
            }
        }
        listings.push((name, keys));
    }
    let mut all: BTreeMap<&String, Vec<(&str, u64)>> = BTreeMap::new();
    for (name, keys) in &listings {
        for (k, size) in keys {
            all.entry(k).or_default().push((name, *size));
        }
    }
    for (key, holders) in all {
        let id = key.rsplit('/').next().unwrap_or_default();
        if key.starts_with(&format!("{SNAPSHOTS}/")) && forgotten.contains(id) {
            continue;
        }
        let sizes: BTreeSet<u64> = holders.iter().map(|(_, s)| *s).collect();
        if sizes.len() > 1 {
            let desc: Vec<String> = holders
                .iter()
                .map(|(n, s)| format!("{s} bytes on {n}"))
                .collect();
            for (name, _) in &holders {
                out.entry(name.to_string()).or_default().push(Finding {
                    object: key.clone(),
                    problem: format!("the copies differ: {}", desc.join(", ")),
                    repair: String::new(),
                    affects: Vec::new(),
                });
            }
        }
        if key.starts_with(&format!("{DATA}/")) || holders.len() == listings.len() {
            continue;
        }
        // Envelopes were compared above; the info of a removed one is left to the runs.
        let envelope = key
            .strip_prefix(&format!("{KEYS}/"))
            .map(|n| n.strip_suffix(".info").unwrap_or(n).parse::<Id>());
        match envelope {
            Some(Ok(id)) if removed.contains(&id) || !key.ends_with(".info") => continue,
            _ => {}
        }
        let present: Vec<&str> = holders.iter().map(|(n, _)| *n).collect();
        for (name, _) in &listings {
            if !present.contains(name) {
                out.entry(name.to_string()).or_default().push(Finding {
                    object: key.clone(),
                    problem: format!("missing here; {} has it", present.join(", ")),
                    repair: String::new(),
                    affects: Vec::new(),
                });
            }
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn packs(n: u8, size: u64) -> Vec<(Id, u64)> {
        (0..n).map(|i| (Id([i; 32]), size)).collect()
    }

    #[test]
    fn a_cycle_reads_every_pack_exactly_once() {
        let all = packs(37, 1000);
        let mut c = Coverage::default();
        let mut seen: Vec<Id> = Vec::new();
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("time");
        for run in 0..20 {
            let chosen = c.choose(&all, 20);
            assert!(!chosen.is_empty(), "run {run} read nothing");
            seen.extend(&chosen);
            c.record(&all, &chosen, 20, t0 + chrono::Duration::days(run));
        }
        let unique: HashSet<Id> = seen.iter().copied().collect();
        assert_eq!(seen.len(), 37, "a pack was read twice in one cycle");
        assert_eq!(unique.len(), 37);
        assert_eq!(c.last_complete, Some(t0 + chrono::Duration::days(19)));
        // The next cycle starts with the packs read longest ago.
        let next = c.choose(&all, 20);
        assert_eq!(next[0], seen[0]);
    }

    #[test]
    fn a_cycle_that_finishes_early_reads_nothing_more_until_its_end() {
        // One big pack and small ones: the first run's share is the big pack and more.
        let mut all = packs(4, 10);
        all.push((Id([9; 32]), 1000));
        let mut c = Coverage::default();
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("time");
        let mut reads = 0;
        for run in 0..4 {
            let chosen = c.choose(&all, 4);
            reads += chosen.len();
            c.record(&all, &chosen, 4, t0 + chrono::Duration::days(run));
        }
        assert_eq!(reads, 5, "a pack was read twice in one cycle");
        assert!(c.last_complete.is_some());
        assert!(!c.choose(&all, 4).is_empty(), "the next cycle reads again");
    }

    #[test]
    fn packs_added_mid_cycle_join_it_and_coverage_counts_bytes() {
        let mut all = packs(10, 100);
        let mut c = Coverage::default();
        let t0: DateTime<Utc> = "2026-01-01T00:00:00Z".parse().expect("time");
        let first = c.choose(&all, 4);
        c.record(&all, &first, 4, t0);
        assert!((c.share_since(&all, t0) - first.len() as f64 / 10.0).abs() < 1e-9);
        all.push((Id([99; 32]), 100));
        let mut read: HashSet<Id> = first.into_iter().collect();
        for run in 1..4 {
            let chosen = c.choose(&all, 4);
            for id in &chosen {
                assert!(read.insert(*id), "read twice");
            }
            c.record(&all, &chosen, 4, t0 + chrono::Duration::days(run));
        }
        assert_eq!(read.len(), 11);
        assert!(c.last_complete.is_some());
        assert!((c.share_since(&all, t0) - 1.0).abs() < 1e-9);
    }
}
