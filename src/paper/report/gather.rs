//! Collecting the report's facts: the 3-2-1 status of every share read from every target now,
//! the records of the period from the state directory, and each share's snapshots from the first
//! target of its schedule that can be read (for storage growth), and the times of every record
//! of the schedule, in the period or not (for what was due and what resolved an incident). All I/O of the report is here;
//! what is read is kept as [`ReportData`], and building the report reads nothing else.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::config::{Config, ScheduleSpec};
use crate::error::{Error, Result};
use crate::format::crypto::Unlock;
use crate::paper::report::facts::{
    Evidence, GrowthPoint, ReportData, ScheduleData, Storage, TargetInfo,
};
use crate::store::records::{CheckOutcome, DrillRecord, VerifyRecord};
use crate::store::repo::Repository;
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
    let mut out = Vec::new();
    for s in &schedules {
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
            storage: storage(config, s, o.to).await,
            times: s.times().clone(),
            evidence: evidence(&s.name, &history, &drills, &verifies),
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
/// snapshots.
async fn storage(config: &Config, s: &ScheduleSpec, to: DateTime<Utc>) -> Storage {
    let key_path = config.resolve(&s.key_file);
    let unlock = match std::fs::read_to_string(&key_path)
        .map_err(|e| e.to_string())
        .and_then(|t| Unlock::parse_identity_file(&t))
    {
        Ok(u) => u,
        Err(why) => {
            return Storage {
                error: Some(format!(
                    "the key file {} could not be used: {why}",
                    key_path.display()
                )),
                ..Storage::default()
            };
        }
    };
    let mut errors = Vec::new();
    for name in &s.targets {
        let result = async {
            let target = crate::config::targets::open_target(config, name, false)?;
            let repo = Repository::open(target, &unlock).await?;
            Catalog::load(&repo).await
        }
        .await;
        match result {
            Ok(catalog) => {
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
                return Storage {
                    read_from: Some(name.clone()),
                    error: None,
                    growth,
                };
            }
            Err(e) => errors.push(format!("{name}: {e}")),
        }
    }
    Storage {
        error: Some(format!("no target could be read ({})", errors.join("; "))),
        ..Storage::default()
    }
}
