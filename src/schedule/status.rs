//! Status: the 3-2-1 verdict for each source of a schedule, from what is really on each target.
//!
//! Every target is opened and its snapshots read; the newest complete snapshot of each source
//! there is what counts. A snapshot object is only ever written after every object it references
//! (by a backup, and by replication), so its presence on a target means the copy is there.
//! Nothing here is taken from configuration alone: a target that cannot be read holds no copy.
//!
//! A removable-disk pool (see [`crate::schedule::media`]) is the exception that proves the rule: the
//! attached disk is read like any target, and counts as on site (it is plugged into the server);
//! a disk recorded off site cannot be read, so the most recently written one counts as the
//! offsite copy with the snapshots it held when last written, marked "as recorded". When the
//! pool's rotation is overdue, every source's verdict is at least DEGRADED.

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::config::{Config, ScheduleSpec, Site};
use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::plan::policy::{self, Copy, Evaluation};
use crate::store::decisions;
use crate::store::index::Index;
use crate::store::repo::Repository;
use crate::store::snapshot::{Catalog, Listed};
use crate::store::target::Location;

/// One source's copy on one target.
#[derive(Clone, Debug, Serialize)]
pub struct TargetCopy {
    pub target: String,
    pub location: Site,
    pub medium: String,
    /// The newest complete snapshot there: short id and time taken.
    pub snapshot: Option<String>,
    /// Its full id (the object `snapshots/ID`), when it was read from the target now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub snapshot_id: Option<String>,
    pub taken: Option<DateTime<Utc>>,
    /// Why the target could not be read, if it could not.
    pub error: Option<String>,
    /// What the newest snapshot needs that is not on the target: then the copy does not count.
    pub missing: Option<String>,
    /// For a disk pool: the disk holding this copy.
    pub disk: Option<String>,
    /// The copy is on a disk off site, as recorded when it was last written, not read now.
    pub as_recorded: bool,
}

#[derive(Clone, Debug, Serialize)]
pub struct SourceStatus {
    pub source: String,
    pub copies: Vec<TargetCopy>,
    pub evaluation: Evaluation,
    /// Set while the source has a suspect snapshot no technician has accepted, or a confirmed
    /// attack not lifted: its verdict is then SUSPECT, whatever the 3-2-1 count says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect: Option<SuspectNotice>,
}

impl SourceStatus {
    /// The verdict as shown: `SUSPECT` while [`SourceStatus::suspect`] is set, else the 3-2-1
    /// verdict.
    pub fn shown_verdict(&self) -> String {
        match &self.suspect {
            Some(_) => "SUSPECT".into(),
            None => self.evaluation.verdict.to_string(),
        }
    }
}

/// Why a source is SUSPECT, and what the technician should do.
#[derive(Clone, Debug, Serialize)]
pub struct SuspectNotice {
    /// The oldest snapshot holding the source (short id), and when it was taken.
    pub snapshot: String,
    pub taken: DateTime<Utc>,
    /// A confirmed attack (held until lifted) rather than a suspect snapshot not yet decided.
    pub confirmed: bool,
    /// The backup's one-line summary (`Suspect.headline`), empty when a technician confirmed an
    /// attack the backup did not flag.
    pub headline: String,
    /// How many snapshots of the source are suspect and undecided, or confirmed and not lifted.
    pub snapshots: usize,
    /// What to do, in one sentence.
    pub advice: String,
}

#[derive(Clone, Debug, Serialize)]
pub struct ScheduleStatus {
    pub schedule: String,
    pub checked_at: DateTime<Utc>,
    pub min_copies: usize,
    pub min_media: usize,
    pub min_offsite: usize,
    pub max_age_hours: u32,
    pub live_data_counts: bool,
    pub sources: Vec<SourceStatus>,
    /// The schedule's removable-disk pools: which disk holds what, and rotation warnings.
    pub media: Vec<crate::schedule::media::PoolStatus>,
    /// Per target, the latest verification recorded in the state directory.
    pub verification: Vec<TargetVerification>,
    /// Advice about the schedule's passphrase keys (an old scrypt work factor); it does not
    /// change a verdict.
    pub key_notices: Vec<String>,
    /// How the copies' sets of keys differ (each is also a reason of every source).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub key_differences: Vec<String>,
}

impl ScheduleStatus {
    /// Whether the schedule is healthy: every source's verdict is OK and nothing is amiss (no
    /// reasons given: every target could be read and is up to date).
    pub fn is_ok(&self) -> bool {
        self.sources.iter().all(|s| {
            s.evaluation.verdict == policy::Verdict::Ok
                && s.evaluation.reasons.is_empty()
                && s.suspect.is_none()
        })
    }
}

/// What the latest verification of one target found, and how much of it has been read back.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct TargetVerification {
    pub target: String,
    /// When it ran, and `pass`, `fail` or `error`.
    pub verified: DateTime<Utc>,
    pub result: crate::store::records::CheckOutcome,
    /// Share of the target's data read back within the 30 and 90 days before that run.
    pub coverage_30d: f64,
    pub coverage_90d: f64,
    /// When every byte had last been read back (a completed rotation or a full read).
    pub last_complete_read: Option<DateTime<Utc>>,
    /// Findings not repaired.
    pub open_findings: usize,
}

/// The latest verification of each of the schedule's targets, from the state directory.
pub fn verification(
    schedule: &ScheduleSpec,
    state: &crate::store::state::StateDir,
) -> Result<Vec<TargetVerification>> {
    let records = state.verify_records()?;
    Ok(schedule
        .targets
        .iter()
        .filter_map(|t| {
            let r = records
                .iter()
                .rev()
                .find(|r| r.schedule == schedule.name && &r.target == t)?;
            Some(TargetVerification {
                target: t.clone(),
                verified: r.finished,
                result: r.result,
                coverage_30d: r.coverage_30d,
                coverage_90d: r.coverage_90d,
                last_complete_read: r.last_complete_read,
                open_findings: r
                    .findings
                    .iter()
                    .filter(|f| !f.repair.starts_with("repaired"))
                    .count(),
            })
        })
        .collect())
}

/// Reads every target of `schedule` and evaluates each source at `now`, without the records of
/// removable-disk pools (see [`status_with_records`]).
pub async fn status(
    config: &Config,
    schedule: &ScheduleSpec,
    now: DateTime<Utc>,
) -> Result<ScheduleStatus> {
    status_with_records(config, schedule, None, now).await
}

/// Like [`status`], with what the state directory records about disk pools: the offsite disk's
/// copy and overdue rotation.
pub async fn status_with_records(
    config: &Config,
    schedule: &ScheduleSpec,
    state: Option<&crate::store::state::StateDir>,
    now: DateTime<Utc>,
) -> Result<ScheduleStatus> {
    let unlock = config.schedule_key(schedule)?;
    let (catalogs, disks) = read_catalogs(config, schedule, &unlock).await;
    let pools = crate::schedule::media::pools(config, &schedule.targets, state, now)?;
    let policy = schedule.policy.policy();
    let mut sources: Vec<SourceStatus> = schedule
        .sources
        .iter()
        .map(|source| {
            let copies = copies_of(
                config,
                &schedule.name,
                &source.name,
                &catalogs,
                &disks,
                &pools,
            );
            let evaluation = evaluate(&policy, &copies, &pools, now);
            SourceStatus {
                source: source.name.clone(),
                copies,
                evaluation,
                suspect: suspect_notice(&catalogs, &schedule.name, &source.name),
            }
        })
        .collect();
    let keys = crate::schedule::keys::review(config, schedule, &unlock).await;
    add_key_differences(&mut sources, &keys.differences);
    Ok(ScheduleStatus {
        schedule: schedule.name.clone(),
        checked_at: now,
        min_copies: policy.min_copies,
        min_media: policy.min_media,
        min_offsite: policy.min_offsite,
        max_age_hours: schedule.policy.max_age_hours,
        live_data_counts: policy.live_data_counts,
        sources,
        media: pools,
        verification: match state {
            Some(st) => verification(schedule, st)?,
            None => Vec::new(),
        },
        key_notices: keys.notices,
        key_differences: keys.differences,
    })
}

/// What status reads of one target: its snapshots, and per source what the newest complete
/// snapshot of it needs that is not on the target (pack keys, `blob ID`s, or why its trees
/// cannot be read).
struct TargetRead {
    catalog: Catalog,
    absent: HashMap<String, Vec<String>>,
    /// The keys of the index objects read there.
    index_objects: Vec<String>,
}

/// Each target's read (or why it could not be read), and the disk of a pool target. A target
/// that holds another repository than the first target read is not read.
async fn read_catalogs(
    config: &Config,
    schedule: &ScheduleSpec,
    unlock: &crate::format::crypto::Unlock,
) -> (
    Vec<(String, std::result::Result<TargetRead, String>)>,
    Vec<Option<String>>,
) {
    let mut catalogs = Vec::new();
    let mut disks = Vec::new();
    let mut first_id: Option<crate::id::Id> = None;
    for name in &schedule.targets {
        let spec = &config.targets[name];
        let disk = match &spec.location() {
            Location::Path(p) => crate::store::target::disk::attached(&spec.name, &spec.pool, p),
            _ => Ok(None),
        };
        disks.push(disk.as_ref().ok().cloned().flatten());
        let result = read_target(config, schedule, name, unlock, &mut first_id)
            .await
            .map_err(|e| e.to_string());
        catalogs.push((name.clone(), result));
    }
    name_lost_index_objects(&mut catalogs);
    (catalogs, disks)
}

/// Where a snapshot needs blobs no index object on a target lists, names the index objects
/// another copy holds that this one lacks (`index/ID (held by nas)`): those are what `repair` brings
/// back.
fn name_lost_index_objects(catalogs: &mut [(String, std::result::Result<TargetRead, String>)]) {
    let unindexed = |lacking: &Vec<String>| lacking.iter().any(|l| l.starts_with("blob "));
    let needed = |r: &TargetRead| r.absent.values().any(unindexed);
    if !catalogs.iter().any(|(_, r)| r.as_ref().is_ok_and(needed)) {
        return;
    }
    let held: Vec<(String, Vec<String>)> = catalogs
        .iter()
        .filter_map(|(n, r)| {
            r.as_ref()
                .ok()
                .map(|r| (n.clone(), r.index_objects.clone()))
        })
        .collect();
    for (name, read) in catalogs.iter_mut() {
        let Ok(read) = read else { continue };
        if !needed(read) {
            continue;
        }
        // `Index::load` gives the keys sorted.
        let lost: Vec<String> = held
            .iter()
            .filter(|(other, _)| other != name)
            .flat_map(|(other, keys)| {
                keys.iter()
                    .filter(|k| read.index_objects.binary_search(k).is_err())
                    .map(move |k| format!("{k} (held by {other})"))
            })
            .collect();
        if lost.is_empty() {
            continue;
        }
        for lacking in read.absent.values_mut() {
            if unindexed(lacking) {
                for l in lost.iter().rev() {
                    if !lacking.contains(l) {
                        lacking.insert(0, l.clone());
                    }
                }
            }
        }
    }
}

/// Opens one target as a run would (a NAS must be mounted, an empty target is missing), reads
/// its snapshots and index, and finds what each source's newest complete snapshot lacks there.
async fn read_target(
    config: &Config,
    schedule: &ScheduleSpec,
    name: &str,
    unlock: &crate::format::crypto::Unlock,
    first_id: &mut Option<crate::id::Id>,
) -> Result<TargetRead> {
    let target = crate::config::targets::open_target(config, name, false)?;
    let repo = match Repository::open(target, unlock).await {
        Err(Error::NotARepository { .. }) => {
            return Err(crate::config::targets::missing(config, schedule, name));
        }
        other => other?,
    };
    let id = repo.config().id;
    match first_id {
        Some(first) if *first != id => {
            return Err(Error::NotFound(format!(
                "target \"{name}\" holds another repository (id {id}) than the schedule's ({first}): check that the right share or disk is mounted"
            )));
        }
        Some(_) => {}
        None => *first_id = Some(id),
    }
    let catalog = Catalog::load(&repo).await?;
    let loaded = Index::load(&repo).await?;
    let mut absent = HashMap::new();
    for source in &schedule.sources {
        let Some(newest) = newest_complete(&catalog, &source.name) else {
            continue;
        };
        let lacking =
            match crate::store::walk::absent_for(&repo, &loaded, newest.snapshot.tree).await {
                Ok(v) => v,
                Err(e @ Error::Target { .. }) => return Err(e),
                Err(e) => vec![format!("its folder listings cannot be read ({e})")],
            };
        if !lacking.is_empty() {
            absent.insert(source.name.clone(), lacking);
        }
    }
    Ok(TargetRead {
        catalog,
        absent,
        index_objects: loaded.objects,
    })
}

/// Whether `source` is held by a suspect snapshot, from the snapshots and decisions of every
/// target read (a decision made on one copy counts before replication carries it).
fn suspect_notice(
    catalogs: &[(String, std::result::Result<TargetRead, String>)],
    schedule: &str,
    source: &str,
) -> Option<SuspectNotice> {
    let read: Vec<&Catalog> = catalogs
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok().map(|r| &r.catalog))
        .collect();
    let mut decisions = Vec::new();
    for d in read.iter().flat_map(|c| &c.decisions) {
        if !decisions.contains(d) {
            decisions.push(d.clone());
        }
    }
    let mut holding: Vec<&Listed> = Vec::new();
    for l in read.iter().flat_map(|c| &c.snapshots) {
        if l.snapshot.source == source
            && !holding.iter().any(|h| h.id == l.id)
            && decisions::standing(l, &decisions).holds()
        {
            holding.push(l);
        }
    }
    holding.sort_by_key(|l| (l.snapshot.start, l.id));
    let first = holding.first()?;
    let id = first.id.short();
    let confirmed = matches!(
        decisions::standing(first, &decisions),
        decisions::Standing::Confirmed(_)
    );
    let advice = if confirmed {
        format!(
            "a confirmed attack: old snapshots of {source} are kept until `firesafe suspect lift {id} --schedule {schedule} --note ...`; restore from {source}@clean"
        )
    } else {
        format!(
            "possible ransomware: nothing of {source} is pruned until you decide; see what changed with `firesafe diff {source}@clean {id} --schedule {schedule}`, then `firesafe suspect accept {id} --schedule {schedule} --note ...` (a false alarm) or `firesafe suspect confirm {id} --schedule {schedule} --note ...` and restore {source}@clean"
        )
    };
    Some(SuspectNotice {
        snapshot: id,
        taken: first.snapshot.start,
        confirmed,
        headline: first
            .snapshot
            .suspect
            .as_ref()
            .map(|s| s.headline.clone())
            .unwrap_or_default(),
        snapshots: holding.len(),
        advice,
    })
}

fn newest_complete<'c>(catalog: &'c Catalog, source: &str) -> Option<&'c Listed> {
    catalog
        .snapshots
        .iter()
        .rev()
        .find(|l| l.snapshot.source == source && !l.snapshot.partial)
}

/// The copies of one source: the newest complete snapshot on each target, and for a disk
/// pool the newest held by the disk recorded off site.
fn copies_of(
    config: &Config,
    schedule: &str,
    source: &str,
    catalogs: &[(String, std::result::Result<TargetRead, String>)],
    disks: &[Option<String>],
    pools: &[crate::schedule::media::PoolStatus],
) -> Vec<TargetCopy> {
    let mut copies = Vec::new();
    for ((name, read), disk) in catalogs.iter().zip(disks) {
        let spec = &config.targets[name];
        let newest = read
            .as_ref()
            .ok()
            .and_then(|r| newest_complete(&r.catalog, source));
        // A copy counts only when everything its snapshot needs is on the target.
        let lacking = read.as_ref().ok().and_then(|r| r.absent.get(source));
        let pool = pools.iter().find(|p| &p.target == name);
        copies.push(TargetCopy {
            target: name.clone(),
            location: if pool.is_some() {
                Site::Onsite
            } else {
                spec.location
            },
            medium: spec.medium.clone(),
            snapshot: newest.map(|l| l.id.short()),
            snapshot_id: newest.map(|l| l.id.to_hex()),
            taken: newest
                .filter(|_| lacking.is_none())
                .map(|l| l.snapshot.start),
            error: read.as_ref().err().cloned(),
            missing: lacking
                .zip(newest)
                .map(|(l, n)| lacking_words(n, l, schedule)),
            disk: disk.clone(),
            as_recorded: false,
        });
        if let Some((d, held)) = pool.and_then(|p| p.offsite_held(source)) {
            copies.push(TargetCopy {
                target: name.clone(),
                location: Site::Offsite,
                medium: spec.medium.clone(),
                snapshot: Some(held.snapshot.clone()),
                snapshot_id: None,
                taken: Some(held.taken),
                error: None,
                missing: None,
                disk: Some(d.to_string()),
                as_recorded: true,
            });
        }
    }
    copies
}

/// Why a copy does not count: what its newest snapshot needs that is not there.
fn lacking_words(newest: &Listed, lacking: &[String], schedule: &str) -> String {
    let shown: Vec<&str> = lacking.iter().take(3).map(String::as_str).collect();
    format!(
        "not counted: snapshot {} needs {} not on this target ({}{}); run `firesafe repair {schedule}`",
        newest.id.short(),
        crate::plan::words::count_s(lacking.len() as u64, "object"),
        shown.join(", "),
        if lacking.len() > 3 { ", ..." } else { "" }
    )
}

/// The 3-2-1 verdict of one source's copies, with the reasons a target could not be read and
/// the pools' warnings (an overdue rotation makes an OK verdict DEGRADED).
fn evaluate(
    policy: &policy::Policy,
    copies: &[TargetCopy],
    pools: &[crate::schedule::media::PoolStatus],
    now: DateTime<Utc>,
) -> Evaluation {
    let facts: Vec<Copy> = copies
        .iter()
        .map(|c| Copy {
            target: match &c.disk {
                Some(d) if c.as_recorded => format!("{} disk {d} (as recorded)", c.target),
                Some(d) => format!("{} disk {d}", c.target),
                None => c.target.clone(),
            },
            medium: c.medium.clone(),
            offsite: c.location == Site::Offsite,
            newest: c.taken,
        })
        .collect();
    let mut evaluation = policy::evaluate(policy, &facts, now);
    // A copy whose data is missing is said so once, not also as holding no snapshot.
    for (c, f) in copies.iter().zip(&facts) {
        if c.missing.is_some() {
            let none = policy::no_snapshot_reason(f);
            evaluation.reasons.retain(|r| *r != none);
        }
    }
    for c in copies {
        if let Some(e) = &c.error {
            evaluation
                .reasons
                .insert(0, format!("{} could not be read: {e}", c.target));
        }
        if let Some(m) = &c.missing {
            evaluation.reasons.insert(0, format!("{}: {m}", c.target));
        }
    }
    for warning in pools.iter().filter_map(|p| p.warning.as_ref()) {
        evaluation.reasons.push(warning.clone());
        if evaluation.verdict == policy::Verdict::Ok {
            evaluation.verdict = policy::Verdict::Degraded;
        }
    }
    evaluation
}

/// Copies whose keys differ (a recovery key only on the NAS, a removal not yet made offsite)
/// make every source at least DEGRADED, with the difference as a reason: if the NAS is lost,
/// the copy left must open with the keys the school counts on.
fn add_key_differences(sources: &mut [SourceStatus], differences: &[String]) {
    for s in sources {
        s.evaluation.reasons.extend(differences.iter().cloned());
        if !differences.is_empty() && s.evaluation.verdict == policy::Verdict::Ok {
            s.evaluation.verdict = policy::Verdict::Degraded;
        }
    }
}
