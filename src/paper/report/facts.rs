//! The facts a report is built from, as [`gather()`](super::gather()) finds them: each schedule's
//! targets, its 3-2-1 status now, the runs, drills and verifications recorded in the period and
//! the growth of its snapshots, and the times of every record (for what was due). Plain data, so that building the report from it is pure and a
//! test can build one from facts it made up.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};

use crate::config::{Config, Site, TargetKind, Times};
use crate::format::snapshot::{Decision, Suspect};
use crate::id::Id;
use crate::schedule::status::ScheduleStatus;
use crate::store::audit::AuditRecord;
use crate::store::records::{DrillRecord, VerifyRecord};
use crate::store::state::RunRecord;

/// A target as the report describes it.
#[derive(Clone, Debug)]
pub struct TargetInfo {
    pub name: String,
    pub description: String,
    pub location: Site,
    pub medium: String,
    /// The directory, or `s3://BUCKET/PREFIX`.
    pub place: String,
    pub endpoint: Option<String>,
    pub region: Option<String>,
}

impl TargetInfo {
    pub fn of(config: &Config, name: &str) -> TargetInfo {
        let spec = &config.targets[name];
        let place = match spec.kind {
            TargetKind::Path => {
                absolute(&config.resolve(spec.path.as_deref().unwrap_or(std::path::Path::new(""))))
                    .display()
                    .to_string()
            }
            TargetKind::S3 => {
                let prefix = spec.prefix.trim_matches('/');
                let bucket = spec.bucket.as_deref().unwrap_or_default();
                if prefix.is_empty() {
                    format!("s3://{bucket}")
                } else {
                    format!("s3://{bucket}/{prefix}")
                }
            }
        };
        TargetInfo {
            name: name.to_string(),
            description: spec.description.clone(),
            location: spec.location,
            medium: spec.medium.clone(),
            place,
            endpoint: spec.endpoint.clone(),
            region: spec.region.clone(),
        }
    }

    pub fn is_s3(&self) -> bool {
        self.place.starts_with("s3://")
    }
}

/// A path made absolute (without following links), for documents read on another machine.
pub fn absolute(p: &std::path::Path) -> std::path::PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// A share's size and the repository space its snapshots added, at one snapshot.
#[derive(Clone, Debug)]
pub struct GrowthPoint {
    pub at: DateTime<Utc>,
    /// Bytes stored for this share's snapshots so far (after deduplication and compression).
    pub stored: u64,
    /// The share's size in this snapshot.
    pub share_bytes: u64,
}

/// What the repository says about storage.
#[derive(Clone, Debug, Default)]
pub struct Storage {
    /// The target the snapshots were read from.
    pub read_from: Option<String>,
    /// Why no target could be read, when none could.
    pub error: Option<String>,
    /// Per share, every snapshot taken up to the end of the period, oldest first.
    pub growth: BTreeMap<String, Vec<GrowthPoint>>,
}

/// Everything recorded and measured about one schedule.
#[derive(Clone, Debug)]
pub struct ScheduleData {
    pub name: String,
    pub description: String,
    pub sources: Vec<String>,
    pub max_age_hours: u32,
    pub rto_hours: Option<f64>,
    pub targets: Vec<TargetInfo>,
    /// The 3-2-1 status now, or why it could not be read.
    pub status: std::result::Result<ScheduleStatus, String>,
    /// Runs, drills and verifications started within the period, oldest first.
    pub runs: Vec<RunRecord>,
    pub drills: Vec<DrillRecord>,
    pub verifies: Vec<VerifyRecord>,
    pub storage: Storage,
    /// The schedule's cron times in its time zone (the daemon's timetable).
    pub times: Times,
    /// What the records hold at any time, inside the period or not: when they begin and when
    /// each complete run, drill and verification happened (for what was due in the period).
    pub evidence: Evidence,
    /// Each S3 or disk-pool target of the schedule: whether it is, now, a copy the nightly
    /// server cannot delete. Local directories never are, and are not listed.
    pub guards: Vec<Guard>,
    /// Suspect snapshots (signs of ransomware) taken in the period, or before it and not yet
    /// decided, oldest first.
    pub suspects: Vec<SuspectIncident>,
}

/// Whether one target holds a copy the nightly server cannot delete, as read back now.
#[derive(Clone, Debug)]
pub struct Guard {
    pub target: String,
    /// The target's `object_lock_days`, for saying that the setting alone is not enough.
    pub object_lock_days: Option<u32>,
    pub state: GuardState,
}

#[derive(Clone, Debug, PartialEq)]
pub enum GuardState {
    /// S3: the newest snapshot object and the newest index object both carry Object Lock
    /// retention; `until` is the earlier of the two.
    Locked { mode: String, until: DateTime<Utc> },
    /// A disk of the pool recorded off site within `rotate_days` (any time, without it).
    DiskAway { disk: String, since: DateTime<Utc> },
    /// Not such a copy, and why, in plain words ("the newest snapshot object has no Object Lock
    /// retention").
    Not(String),
}

/// One suspect snapshot: found, decided, restored.
#[derive(Clone, Debug)]
pub struct SuspectIncident {
    pub snapshot: Id,
    pub source: String,
    pub taken: DateTime<Utc>,
    pub suspect: Suspect,
    /// Technicians' decisions about it, oldest first.
    pub decisions: Vec<Decision>,
    /// The first restore of the share from an older snapshot after it was found, if any.
    pub restored: Option<AuditRecord>,
}

/// Every recorded time of one schedule, from the whole state directory.
#[derive(Clone, Debug, Default)]
pub struct Evidence {
    /// The earliest record of the schedule (run, drill or verification); `None` when there is
    /// none.
    pub begin: Option<DateTime<Utc>>,
    /// When each complete run finished.
    pub complete_runs: Vec<DateTime<Utc>>,
    /// When each drill started (pass or fail: it ran).
    pub drills: Vec<DateTime<Utc>>,
    /// When each verification that could run started.
    pub verifies: Vec<DateTime<Utc>>,
    /// Passing drills of each share, and passing verifications of each target: (name, when).
    pub passed_drills: Vec<(String, DateTime<Utc>)>,
    pub passed_verifies: Vec<(String, DateTime<Utc>)>,
}

/// The facts the report is built from.
#[derive(Clone, Debug)]
pub struct ReportData {
    pub school: Option<String>,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub generated: DateTime<Utc>,
    /// The time zone dates are shown in (the first schedule's).
    pub timezone: chrono_tz::Tz,
    pub schedules: Vec<ScheduleData>,
    /// The state directory the records were read from.
    pub state_dir: String,
}

impl ScheduleData {
    /// The latest verification of each target in the period.
    pub(super) fn latest_verifies(&self) -> Vec<(&TargetInfo, Option<&VerifyRecord>)> {
        self.targets
            .iter()
            .map(|t| (t, self.verifies.iter().rev().find(|v| v.target == t.name)))
            .collect()
    }
}
