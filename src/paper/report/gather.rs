//! Collecting the report's facts: the 3-2-1 status of every share read from every target now,
//! the records of the period from the state directory, and each share's snapshots from the first
//! target of its schedule that can be read (for storage growth), and the times of every record
//! of the schedule, in the period or not (for what was due and what resolved an incident). All I/O of the report is here;
//! what is read is kept as [`ReportData`], and building the report reads nothing else.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::config::TargetKind;
use crate::config::{Config, ScheduleSpec};
use crate::error::{Error, Result};
use crate::format::crypto::Unlock;
use crate::format::snapshot::{Decision, Listed};
use crate::paper::report::facts::{
    Evidence, GrowthPoint, Guard, GuardState, ReportData, ScheduleData, Storage, SuspectIncident,
    TargetInfo,
};
use crate::store::audit::AuditRecord;
use crate::store::records::{CheckOutcome, DrillRecord, VerifyRecord};
use crate::store::repo::{DECISIONS, INDEX, Repository, SNAPSHOTS};
use crate::store::snapshot::Catalog;
use crate::store::state::{RunOutcome, RunRecord, StateDir};

/// What to report on.
#[derive(Clone, Debug)]
pub struct ReportOptions {
    /// Schedule names; empty means every schedule.
    pub schedules: Vec<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// When the report is made (status is read now).
    pub now: DateTime<Utc>,
}

/// Collects the report's facts: status from every target now, records from the state directory,
/// snapshots from the first reachable target of each schedule.
pub async fn gather(config: &Config, state: &StateDir, o: &ReportOptions) -> Result<ReportData> {
    if o.to < o.from {
        return Err(Error::Usage(format!(
            "--to ({}) is before --from ({}); give the start of the period first",
            o.to.format("%Y-%m-%d %H:%M"),
            o.from.format("%Y-%m-%d %H:%M")
        )));
    }
    let schedules: Vec<&ScheduleSpec> = if o.schedules.is_empty() {
        config.schedules.values().collect()
    } else {
        o.schedules
            .iter()
            .map(|s| config.schedule(s))
            .collect::<Result<_>>()?
    };
    if schedules.is_empty() {
        return Err(Error::NotFound(format!(
            "there are no schedules in {}/schedules; nothing to report on",
            config.dir.display()
        )));
    }
    // Oldest first, whatever order they were appended in (a restored state directory, or
    // records copied in).
    let mut history = state.history()?;
    history.sort_by_key(|r| r.started);
    let mut drills = state.drill_records()?;
    drills.sort_by_key(|r| r.started);
    let mut verifies = state.verify_records()?;
    verifies.sort_by_key(|r| r.started);
    let within = |t: DateTime<Utc>| t >= o.from && t <= o.to;
    let audits = state.audit_records()?;
    // A key file others can read is refused, as by every command that reads the key, before
    // anything is read with it.
    for s in &schedules {
        crate::ops::keys::check_private(&config.resolve(&s.key_file))?;
    }
    let mut out = Vec::new();
    for s in &schedules {
        let (storage, suspects) = storage(config, s, o, &audits).await;
        let status = crate::schedule::status::status_with_records(config, s, Some(state), o.now)
            .await
            .map_err(|e| e.to_string());
        out.push(ScheduleData {
            name: s.name.clone(),
            description: s.description.clone(),
            sources: s.sources.iter().map(|x| x.name.clone()).collect(),
            max_age_hours: s.policy.max_age_hours,
            rto_hours: s.policy.rto_hours,
            targets: s
                .targets
                .iter()
                .map(|t| TargetInfo::of(config, t))
                .collect(),
            status,
            runs: history
                .iter()
                .filter(|r| r.schedule == s.name && within(r.started))
                .cloned()
                .collect(),
            drills: drills
                .iter()
                .filter(|r| r.schedule == s.name && within(r.started))
                .cloned()
                .collect(),
            verifies: verifies
                .iter()
                .filter(|r| r.schedule == s.name && within(r.started))
                .cloned()
                .collect(),
            storage,
            times: s.times().clone(),
            evidence: evidence(&s.name, &history, &drills, &verifies),
            guards: guards(config, s, state, o.now).await,
            suspects,
        });
    }
    Ok(ReportData {
        school: config.site.as_ref().map(|s| s.school.clone()),
        from: o.from,
        to: o.to,
        generated: o.now,
        timezone: schedules[0].times().timezone,
        schedules: out,
        state_dir: state.path().display().to_string(),
    })
}

/// Every recorded time of one schedule.
fn evidence(
    schedule: &str,
    history: &[RunRecord],
    drills: &[DrillRecord],
    verifies: &[VerifyRecord],
) -> Evidence {
    let runs: Vec<&RunRecord> = history.iter().filter(|r| r.schedule == schedule).collect();
    let drills: Vec<&DrillRecord> = drills.iter().filter(|r| r.schedule == schedule).collect();
    let verifies: Vec<&VerifyRecord> = verifies.iter().filter(|r| r.schedule == schedule).collect();
    let begin = runs
        .iter()
        .map(|r| r.started)
        .chain(drills.iter().map(|r| r.started))
        .chain(verifies.iter().map(|r| r.started))
        .min();
    Evidence {
        begin,
        complete_runs: runs
            .iter()
            .filter(|r| r.outcome == RunOutcome::Complete)
            .map(|r| r.finished)
            .collect(),
        drills: drills.iter().map(|r| r.started).collect(),
        verifies: verifies
            .iter()
            .filter(|r| r.result != CheckOutcome::Error)
            .map(|r| r.started)
            .collect(),
        passed_drills: drills
            .iter()
            .filter(|r| r.result.passed())
            .map(|r| (r.source.clone(), r.finished))
            .collect(),
        passed_verifies: verifies
            .iter()
            .filter(|r| r.result.passed())
            .map(|r| (r.target.clone(), r.finished))
            .collect(),
    }
}

/// Opens the schedule's repository on its first reachable target and reads each share's
/// snapshots, and the suspect snapshots with the decisions about them.
async fn storage(
    config: &Config,
    s: &ScheduleSpec,
    o: &ReportOptions,
    audits: &[AuditRecord],
) -> (Storage, Vec<SuspectIncident>) {
    let to = o.to;
    let key_path = config.resolve(&s.key_file);
    let unlock = match std::fs::read_to_string(&key_path)
        .map_err(|e| e.to_string())
        .and_then(|t| Unlock::parse_identity_file(&t))
    {
        Ok(u) => u,
        Err(why) => {
            let storage = Storage {
                error: Some(format!(
                    "the key file {} could not be used: {why}",
                    key_path.display()
                )),
                ..Storage::default()
            };
            return (storage, Vec::new());
        }
    };
    let mut errors = Vec::new();
    for name in &s.targets {
        let result = async {
            let target = crate::config::targets::open_target(config, name, false)?;
            let repo = Repository::open(target, &unlock).await?;
            let catalog = Catalog::load(&repo).await?;
            let decisions = decisions(&repo).await?;
            Ok::<_, Error>((catalog, decisions))
        }
        .await;
        match result {
            Ok((catalog, decisions)) => {
                let suspects = suspects(&catalog.snapshots, decisions, audits, o);
                let mut growth: BTreeMap<String, Vec<GrowthPoint>> = BTreeMap::new();
                for l in catalog.snapshots.iter().filter(|l| l.snapshot.start <= to) {
                    let points = growth.entry(l.snapshot.source.clone()).or_default();
                    let before = points.last().map_or(0, |p| p.stored);
                    points.push(GrowthPoint {
                        at: l.snapshot.start,
                        stored: before + l.snapshot.stats.bytes_stored,
                        share_bytes: l.snapshot.stats.bytes,
                    });
                }
                let storage = Storage {
                    read_from: Some(name.clone()),
                    error: None,
                    growth,
                };
                return (storage, suspects);
            }
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    let storage = Storage {
        error: Some(format!("no target could be read ({})", errors.join("; "))),
        ..Storage::default()
    };
    (storage, Vec::new())
}

/// Every technician's decision about a suspect snapshot, oldest first.
async fn decisions(repo: &Repository) -> Result<Vec<Decision>> {
    let mut out = Vec::new();
    for l in repo.target().list(DECISIONS).await? {
        out.push(repo.load_sealed::<Decision>("decision", &l.key).await?);
    }
    out.sort_by_key(|d| d.time);
    Ok(out)
}

/// The suspect snapshots taken in the period, or before it and not decided yet, each with the
/// decisions about it and the first restore of its share from an older snapshot after it.
fn suspects(
    snapshots: &[Listed],
    decisions: Vec<Decision>,
    audits: &[AuditRecord],
    o: &ReportOptions,
) -> Vec<SuspectIncident> {
    let mut out: Vec<SuspectIncident> = Vec::new();
    for l in snapshots {
        let (Some(suspect), snap) = (&l.snapshot.suspect, &l.snapshot) else {
            continue;
        };
        let mine: Vec<Decision> = decisions
            .iter()
            .filter(|d| d.snapshot == l.id && d.time <= o.now)
            .cloned()
            .collect();
        if snap.start > o.to || (snap.start < o.from && !mine.is_empty()) {
            continue;
        }
        let restored = audits
            .iter()
            .filter(|a| {
                a.source == snap.source
                    && a.started >= snap.start
                    && a.snapshot_taken < snap.start
                    && a.result != "failed"
            })
            .min_by_key(|a| a.started)
            .cloned();
        out.push(SuspectIncident {
            snapshot: l.id,
            source: snap.source.clone(),
            taken: snap.start,
            suspect: suspect.clone(),
            decisions: mine,
            restored,
        });
    }
    out.sort_by_key(|i| i.taken);
    out
}

/// Each S3 and disk-pool target of the schedule: is it, now, a copy the server cannot delete?
async fn guards(
    config: &Config,
    s: &ScheduleSpec,
    state: &StateDir,
    now: DateTime<Utc>,
) -> Vec<Guard> {
    let pools = crate::schedule::media::pools(config, &s.targets, Some(state), now);
    let mut out = Vec::new();
    for name in &s.targets {
        let Some(spec) = config.targets.get(name) else {
            continue;
        };
        let state = if spec.kind == TargetKind::S3 {
            locked(config, name, now).await
        } else if !spec.pool.is_empty() {
            match &pools {
                Ok(p) => match p.iter().find(|p| &p.target == name) {
                    Some(p) => disk_away(p, now),
                    None => continue,
                },
                Err(e) => GuardState::Not(format!("the disk records could not be read ({e})")),
            }
        } else {
            continue;
        };
        out.push(Guard {
            target: name.clone(),
            object_lock_days: spec.object_lock_days,
            state,
        });
    }
    out
}

/// An S3 target's newest snapshot and index objects' retention, read back now.
async fn locked(config: &Config, name: &str, now: DateTime<Utc>) -> GuardState {
    let read = async {
        let target = crate::config::targets::open_target(config, name, false)?;
        let mut until: Option<(String, DateTime<Utc>)> = None;
        for (dir, what) in [(SNAPSHOTS, "snapshot"), (INDEX, "index")] {
            let listed = target.list(dir).await?;
            let Some(latest) = listed.iter().map(|l| l.modified).max() else {
                return Ok(GuardState::Not(format!("it holds no {what} object yet")));
            };
            // Listing times have whole seconds on many servers: every object written in the
            // newest second must be retained, or the answer would depend on listing order.
            for newest in listed.iter().filter(|l| l.modified == latest) {
                match target.retention(&newest.key).await? {
                    None => {
                        return Ok(GuardState::Not(format!(
                            "its newest {what} object carries no Object Lock retention, so the server could delete it"
                        )));
                    }
                    Some(r) if r.until <= now => {
                        return Ok(GuardState::Not(format!(
                            "the Object Lock retention of its newest {what} object ended on {}",
                            r.until.format("%Y-%m-%d %H:%M UTC")
                        )));
                    }
                    Some(r) => {
                        if until.as_ref().is_none_or(|u| r.until < u.1) {
                            until = Some((r.mode, r.until));
                        }
                    }
                }
            }
        }
        let (mode, until) = until.expect("both folders were read");
        Ok::<_, Error>(GuardState::Locked { mode, until })
    };
    read.await
        .unwrap_or_else(|e| GuardState::Not(format!("its retention could not be read back ({e})")))
}

/// A pool's disk recorded off site within `rotate_days` (the most recently moved), if any.
fn disk_away(p: &crate::schedule::media::PoolStatus, now: DateTime<Utc>) -> GuardState {
    use crate::schedule::media::Place;
    let away = p
        .disks
        .iter()
        .filter(|d| d.place == Place::Offsite && d.last_written.is_some())
        .filter_map(|d| d.last_moved.map(|t| (d, t)))
        .filter(|(_, t)| {
            p.rotate_days
                .is_none_or(|r| now - *t <= chrono::Duration::days(i64::from(r)))
        })
        .max_by_key(|(_, t)| *t);
    match (away, p.rotate_days) {
        (Some((d, t)), _) => GuardState::DiskAway {
            disk: d.disk.clone(),
            since: t,
        },
        (None, Some(r)) => GuardState::Not(format!(
            "no disk of the pool is recorded off site within the last {r} days (rotate_days)"
        )),
        (None, None) => GuardState::Not("no disk of the pool is recorded off site".into()),
    }
}
