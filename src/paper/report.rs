//! The governors' disaster-recovery report: what the backups achieved over a period, in plain
//! English on the first page, with the evidence behind it.
//!
//! [`gather`] collects the facts: the live 3-2-1 status of every share (every target opened
//! now), the runs, drills and verifications recorded in the state directory during the period,
//! and the snapshots in the repository (for storage growth). [`build`] turns those facts, and
//! nothing else, into a [`Doc`]: every sentence is derived from a record or from what a target
//! holds, and where there is no record the report says so ("No restore drill was recorded
//! between ...") and marks it red, rather than assuming all is well.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use crate::config::{Config, ScheduleSpec, Site, TargetKind};
use crate::error::{Error, Result};
use crate::format::crypto::Unlock;
use crate::paper::doc::{Block, Chart, Doc, Light, Series, bytes};
use crate::plan::policy::{Verdict, describe_age};
use crate::schedule::status::ScheduleStatus;
use crate::store::records::{CheckOutcome, DrillKind, DrillRecord, VerifyRecord};
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
    let history = state.history()?;
    let drills = state.drill_records()?;
    let verifies = state.verify_records()?;
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
        });
    }
    Ok(ReportData {
        school: config.site.as_ref().map(|s| s.school.clone()),
        from: o.from,
        to: o.to,
        generated: o.now,
        timezone: schedules[0].times().timezone,
        schedules: out,
    })
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

/// Dates and times as the report prints them, in the schedule's time zone.
struct Clock {
    tz: chrono_tz::Tz,
}

impl Clock {
    fn day(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz).format("%-d %B %Y").to_string()
    }

    fn time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%-d %b %Y %H:%M")
            .to_string()
    }
}

/// How long something takes, in words: "40 seconds", "12 minutes", "3.5 hours".
pub fn describe_seconds(s: f64) -> String {
    if s < 1.5 {
        "1 second".into()
    } else if s < 90.0 {
        format!("{} seconds", s.round())
    } else if s < 5400.0 {
        format!("{} minutes", (s / 60.0).round())
    } else {
        format!("{:.1} hours", s / 3600.0)
    }
}

/// A share of a schedule, with what is known about it.
struct Share<'a> {
    schedule: &'a ScheduleData,
    name: &'a str,
}

impl<'a> Share<'a> {
    fn status(&self) -> Option<&'a crate::schedule::status::SourceStatus> {
        self.schedule
            .status
            .as_ref()
            .ok()?
            .sources
            .iter()
            .find(|s| s.source == self.name)
    }

    /// The newest complete copy on any target, as read now.
    fn newest(&self) -> Option<DateTime<Utc>> {
        self.status()?.copies.iter().filter_map(|c| c.taken).max()
    }

    fn drills(&self) -> Vec<&'a DrillRecord> {
        self.schedule
            .drills
            .iter()
            .filter(|d| d.source == self.name)
            .collect()
    }

    /// The latest drill that measured a recovery time: a full one if there is one.
    fn recovery(&self) -> Option<&'a DrillRecord> {
        let measured: Vec<&DrillRecord> = self
            .drills()
            .into_iter()
            .filter(|d| d.estimated_recovery_seconds > 0.0 && d.result == CheckOutcome::Pass)
            .collect();
        measured
            .iter()
            .rev()
            .find(|d| d.kind != DrillKind::Sample)
            .or(measured.last())
            .copied()
    }
}

fn shares(d: &ReportData) -> Vec<Share<'_>> {
    d.schedules
        .iter()
        .flat_map(|s| {
            s.sources.iter().map(move |n| Share {
                schedule: s,
                name: n,
            })
        })
        .collect()
}

fn list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// "1 point", "3 points".
fn points(n: usize) -> String {
    if n == 1 {
        "1 point".into()
    } else {
        format!("{n} points")
    }
}

/// A traffic light with its headline and detail.
struct Check {
    light: Light,
    headline: String,
    detail: String,
}

fn check_copies(d: &ReportData) -> Check {
    if let Some(s) = d.schedules.iter().find(|s| s.status.is_err()) {
        return Check {
            light: Light::Red,
            headline: "The backup copies could not be checked.".into(),
            detail: format!(
                "Schedule {}: {}",
                s.name,
                s.status.as_ref().err().cloned().unwrap_or_default()
            ),
        };
    }
    let all = shares(d);
    let bad: Vec<&Share> = all
        .iter()
        .filter(|s| {
            s.status()
                .is_none_or(|x| x.evaluation.verdict != Verdict::Ok)
        })
        .collect();
    let policy = d.schedules[0].status.as_ref().ok();
    let rule = policy.map_or(String::new(), |p| {
        format!(
            "{} copies, on {} kinds of storage, with {} away from the school",
            p.min_copies, p.min_media, p.min_offsite
        )
    });
    if bad.is_empty() {
        return Check {
            light: Light::Green,
            headline: format!("Every share is protected by {rule}."),
            detail: format!(
                "Checked on {} by reading every backup copy, not from the settings.",
                Clock { tz: d.timezone }.time(d.generated)
            ),
        };
    }
    let violated = bad.iter().any(|s| {
        s.status()
            .is_none_or(|x| x.evaluation.verdict == Verdict::Violated)
    });
    let names: Vec<&str> = bad.iter().map(|s| s.name).collect();
    let why = bad
        .iter()
        .filter_map(|s| {
            s.status()
                .and_then(|x| x.evaluation.reasons.first())
                .map(|r| format!("{}: {r}", s.name))
        })
        .next()
        .unwrap_or_default();
    Check {
        light: if violated { Light::Red } else { Light::Amber },
        headline: format!(
            "{} of {} shares do not meet the rule of {rule}: {}.",
            bad.len(),
            all.len(),
            list(&names)
        ),
        detail: why,
    }
}

fn check_newest(d: &ReportData, c: &Clock) -> Check {
    let all = shares(d);
    let mut late = Vec::new();
    let mut never = Vec::new();
    for s in &all {
        match s.newest() {
            None => never.push(s.name),
            Some(t) if d.generated - t > Duration::hours(i64::from(s.schedule.max_age_hours)) => {
                late.push(format!(
                    "{} was last backed up {} ago (allowed: {} hours)",
                    s.name,
                    describe_age(d.generated - t),
                    s.schedule.max_age_hours
                ))
            }
            Some(_) => {}
        }
    }
    let oldest = all.iter().filter_map(|s| s.newest()).min();
    if !never.is_empty() {
        Check {
            light: Light::Red,
            headline: format!("No backup copy of {} was found.", list(&never)),
            detail: "Every target was read; none holds a complete backup of it.".into(),
        }
    } else if !late.is_empty() {
        Check {
            light: Light::Red,
            headline: "Some shares have not been backed up recently.".into(),
            detail: format!("{}.", late.join("; ")),
        }
    } else {
        Check {
            light: Light::Green,
            headline: format!(
                "Every share was backed up in the last {} hours.",
                d.schedules
                    .iter()
                    .map(|s| s.max_age_hours)
                    .max()
                    .unwrap_or(24)
            ),
            detail: oldest.map_or(String::new(), |t| {
                format!(
                    "The oldest of the newest copies was taken on {}.",
                    c.time(t)
                )
            }),
        }
    }
}

fn check_runs(d: &ReportData, c: &Clock) -> Check {
    let runs: Vec<&RunRecord> = d.schedules.iter().flat_map(|s| &s.runs).collect();
    let count = |o: &str| runs.iter().filter(|r| r.outcome == o).count();
    let (complete, degraded, failed) = (count("complete"), count("degraded"), count("failed"));
    let other = runs.len() - complete - degraded - failed;
    let period = format!("between {} and {}", c.day(d.from), c.day(d.to));
    if runs.is_empty() {
        return Check {
            light: Light::Red,
            headline: format!("No backup run was recorded {period}."),
            detail: "Check that the nightly service is running.".into(),
        };
    }
    let headline = format!(
        "{} of {} backup runs {period} were complete ({}%).",
        complete,
        runs.len(),
        complete * 100 / runs.len()
    );
    let none = |n: usize| {
        if n == 0 {
            "none".to_string()
        } else {
            n.to_string()
        }
    };
    let detail = format!(
        "Left a copy out of date: {}. Failed: {}{}.",
        none(degraded),
        none(failed),
        if other > 0 {
            format!(". Interrupted: {other}")
        } else {
            String::new()
        }
    );
    Check {
        light: if complete == 0 {
            Light::Red
        } else if complete == runs.len() {
            Light::Green
        } else {
            Light::Amber
        },
        headline,
        detail,
    }
}

fn check_drills(d: &ReportData, c: &Clock) -> Check {
    let all = shares(d);
    let period = format!("between {} and {}", c.day(d.from), c.day(d.to));
    let drilled: Vec<&Share> = all.iter().filter(|s| !s.drills().is_empty()).collect();
    if drilled.is_empty() {
        return Check {
            light: Light::Red,
            headline: format!("No restore drill was recorded {period}."),
            detail: "Nothing shows that the backups can be restored. Ask the technician to run a restore drill (firesafe drill).".into(),
        };
    }
    let failed: Vec<&str> = all
        .iter()
        .filter(|s| {
            s.drills()
                .last()
                .is_some_and(|x| x.result != CheckOutcome::Pass)
        })
        .map(|s| s.name)
        .collect();
    let missing: Vec<&str> = all
        .iter()
        .filter(|s| s.drills().is_empty())
        .map(|s| s.name)
        .collect();
    let latest = drilled
        .iter()
        .filter_map(|s| s.drills().last().map(|x| x.finished))
        .max();
    let count: usize = drilled.iter().map(|s| s.drills().len()).sum();
    if !failed.is_empty() {
        Check {
            light: Light::Red,
            headline: format!("The latest restore drill of {} failed.", list(&failed)),
            detail: "Some restored files were not what was backed up. See the risks below.".into(),
        }
    } else if !missing.is_empty() {
        Check {
            light: Light::Amber,
            headline: format!(
                "No restore drill of {} was recorded {period}.",
                list(&missing)
            ),
            detail: format!("{} restore drill(s) of the other shares passed.", count),
        }
    } else {
        Check {
            light: Light::Green,
            headline: "A restore of every share was tested and passed.".into(),
            detail: format!(
                "{count} restore drill(s) {period}; the latest on {}.",
                latest.map_or(String::new(), |t| c.time(t))
            ),
        }
    }
}

fn check_recovery(d: &ReportData) -> Check {
    let all = shares(d);
    let mut over = Vec::new();
    let mut unmeasured = Vec::new();
    let mut no_target = Vec::new();
    let mut longest: Option<(f64, Option<f64>)> = None;
    for s in &all {
        match s.recovery() {
            None => unmeasured.push(s.name),
            Some(r) => {
                let rto = s.schedule.rto_hours.or(r.rto_hours);
                if longest.is_none_or(|(l, _)| r.estimated_recovery_seconds > l) {
                    longest = Some((r.estimated_recovery_seconds, rto));
                }
                match rto {
                    Some(h) if r.estimated_recovery_seconds > h * 3600.0 => over.push(format!(
                        "{} would take about {} (target: {h} hours)",
                        s.name,
                        describe_seconds(r.estimated_recovery_seconds)
                    )),
                    Some(_) => {}
                    None => no_target.push(s.name),
                }
            }
        }
    }
    if !over.is_empty() {
        return Check {
            light: Light::Red,
            headline: "Recovery would take longer than the target.".into(),
            detail: format!("{}.", over.join("; ")),
        };
    }
    if unmeasured.len() == all.len() {
        return Check {
            light: Light::Amber,
            headline: "The recovery time was not measured.".into(),
            detail: "Only a restore drill can measure it, and none was recorded in this period."
                .into(),
        };
    }
    let (secs, rto) = longest.expect("at least one share measured");
    let longest = format!(
        "The slowest share would take about {} to restore{}.",
        describe_seconds(secs),
        rto.map_or(String::new(), |h| format!(" (target: {h} hours)"))
    );
    if !unmeasured.is_empty() {
        Check {
            light: Light::Amber,
            headline: format!(
                "The recovery time of {} was not measured.",
                list(&unmeasured)
            ),
            detail: longest,
        }
    } else if !no_target.is_empty() {
        Check {
            light: Light::Amber,
            headline: "No recovery time target is set, so it cannot be judged.".into(),
            detail: format!("{longest} Set rto_hours in the schedule's [policy]."),
        }
    } else {
        Check {
            light: Light::Green,
            headline: "Every share could be recovered within the target time.".into(),
            detail: longest,
        }
    }
}

/// The latest verification of each target in the period.
fn latest_verifies(s: &ScheduleData) -> Vec<(&TargetInfo, Option<&VerifyRecord>)> {
    s.targets
        .iter()
        .map(|t| (t, s.verifies.iter().rev().find(|v| v.target == t.name)))
        .collect()
}

fn check_reads(d: &ReportData, c: &Clock) -> Check {
    let all: Vec<(&TargetInfo, Option<&VerifyRecord>)> =
        d.schedules.iter().flat_map(latest_verifies).collect();
    let never: Vec<&str> = all
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(t, _)| t.name.as_str())
        .collect();
    let failing: Vec<&str> = all
        .iter()
        .filter(|(_, v)| v.is_some_and(|v| v.result != CheckOutcome::Pass))
        .map(|(t, _)| t.name.as_str())
        .collect();
    let partial: Vec<String> = all
        .iter()
        .filter_map(|(t, v)| v.map(|v| (t, v)))
        .filter(|(_, v)| v.coverage_90d < 0.999)
        .map(|(t, v)| format!("{} ({:.0}%)", t.name, v.coverage_90d * 100.0))
        .collect();
    let period = format!("between {} and {}", c.day(d.from), c.day(d.to));
    if never.len() == all.len() {
        Check {
            light: Light::Red,
            headline: format!("No copy's data was read back and checked {period}."),
            detail: "Without reading the data back, damage to a copy would go unnoticed. Ask the technician to schedule verification (firesafe verify).".into(),
        }
    } else if !failing.is_empty() {
        Check {
            light: Light::Red,
            headline: format!("Checking found damage on {}.", list(&failing)),
            detail: "See the risks below for what is affected.".into(),
        }
    } else if !never.is_empty() {
        Check {
            light: Light::Amber,
            headline: format!("The data on {} was not read back {period}.", list(&never)),
            detail: "The other copies were read back and found sound.".into(),
        }
    } else if !partial.is_empty() {
        Check {
            light: Light::Amber,
            headline: "Not all of every copy was read back in the last 90 days.".into(),
            detail: format!("Read back so far: {}.", partial.join(", ")),
        }
    } else {
        Check {
            light: Light::Green,
            headline: "Every copy's data was read back and checked in the last 90 days.".into(),
            detail: "No damage was found.".into(),
        }
    }
}

/// The incidents and open risks, each in one plain sentence, worst first.
fn risks(d: &ReportData, c: &Clock) -> Vec<(Light, String)> {
    let mut out = Vec::new();
    let period = format!("between {} and {}", c.day(d.from), c.day(d.to));
    for s in &d.schedules {
        if let Err(e) = &s.status {
            out.push((
                Light::Red,
                format!(
                    "The copies of schedule {} could not be checked: {e}",
                    s.name
                ),
            ));
        }
        for r in &s.runs {
            let what = match r.outcome {
                RunOutcome::Complete => continue,
                RunOutcome::Degraded => (Light::Amber, "finished, but left a copy out of date"),
                RunOutcome::Failed => (Light::Red, "failed"),
                RunOutcome::Interrupted => (Light::Amber, "was interrupted"),
            };
            out.push((
                what.0,
                format!(
                    "The {} backup of {} {}: {}",
                    s.name,
                    c.time(r.started),
                    what.1,
                    r.message.trim_end_matches('.')
                ) + ".",
            ));
        }
        if let Ok(st) = &s.status {
            for src in &st.sources {
                for r in &src.evaluation.reasons {
                    let light = match src.evaluation.verdict {
                        Verdict::Violated => Light::Red,
                        _ => Light::Amber,
                    };
                    out.push((light, format!("{} now: {r}.", src.source)));
                }
            }
            for p in &st.media {
                if let Some(w) = &p.warning {
                    out.push((Light::Amber, format!("Disk rotation ({}): {w}.", p.target)));
                }
            }
        }
        for v in &s.verifies {
            match v.result {
                CheckOutcome::Pass => {}
                CheckOutcome::Error => out.push((
                    Light::Amber,
                    format!(
                        "Checking {} on {} could not run: {}.",
                        v.target,
                        c.time(v.started),
                        v.error.trim_end_matches('.')
                    ),
                )),
                CheckOutcome::Fail => {
                    let first = v.findings.first().map_or(String::new(), |f| {
                        format!(
                            " The first: {} {}",
                            f.object,
                            f.problem.trim_end_matches('.')
                        )
                    });
                    out.push((
                        Light::Red,
                        format!(
                            "Checking {} on {} found {} problem(s) that were not repaired.{first}.",
                            v.target,
                            c.time(v.started),
                            v.findings
                                .iter()
                                .filter(|f| !f.repair.starts_with("repaired"))
                                .count()
                        ),
                    ));
                }
            }
        }
        for (t, v) in latest_verifies(s) {
            match v {
                None => out.push((
                    Light::Amber,
                    format!("The data on {} was not read back {period}.", t.name),
                )),
                Some(v) if v.coverage_90d < 0.999 => out.push((
                    Light::Amber,
                    format!(
                        "Only {:.0}% of the data on {} was read back in the 90 days to {}.",
                        v.coverage_90d * 100.0,
                        t.name,
                        c.day(v.finished)
                    ),
                )),
                Some(_) => {}
            }
        }
        for name in &s.sources {
            let share = Share { schedule: s, name };
            let drills = share.drills();
            if drills.is_empty() {
                out.push((
                    Light::Red,
                    format!("No restore drill of {name} was recorded {period}."),
                ));
            }
            for dr in drills.iter().filter(|x| x.result != CheckOutcome::Pass) {
                out.push((
                    Light::Red,
                    format!(
                        "The restore drill of {name} from {} on {} failed: {}.",
                        dr.target,
                        c.time(dr.started),
                        if dr.reason.is_empty() {
                            format!("{} file(s) did not match", dr.mismatches.len())
                        } else {
                            dr.reason.trim_end_matches('.').to_string()
                        }
                    ),
                ));
            }
            if let Some(r) = share.recovery()
                && let Some(h) = s.rto_hours.or(r.rto_hours)
                && r.estimated_recovery_seconds > h * 3600.0
            {
                out.push((
                    Light::Red,
                    format!(
                        "Restoring {name} would take about {}, longer than the target of {h} hours.",
                        describe_seconds(r.estimated_recovery_seconds)
                    ),
                ));
            }
        }
    }
    out.sort_by(|a, b| b.0.cmp(&a.0));
    out
}

const GLOSSARY: &[(&str, &str)] = &[
    (
        "Backup",
        "A copy of the school's files, kept so they can be got back if the originals are lost, damaged or locked by ransomware.",
    ),
    (
        "Share",
        "One of the school's shared folders on the file server, such as the curriculum, admin or staff share.",
    ),
    (
        "Snapshot",
        "One backup of a share: the files exactly as they were at one moment. Older snapshots are kept, so a file can be got back as it was last week or last term.",
    ),
    (
        "3-2-1 rule",
        "At least three copies of important data, on at least two separate kinds of storage, with at least one kept off site. The school's policy asks for this.",
    ),
    (
        "Off site",
        "Away from the school building (another building, or a data centre), so that a fire, flood or theft at school cannot destroy every copy.",
    ),
    (
        "Encryption",
        "The backups are scrambled with a secret key before they leave the server. Without the key, nobody (including the storage company) can read them.",
    ),
    (
        "Recovery key",
        "The secret key that unlocks the backups. A copy is kept in the fire safe; without it the backups cannot be read.",
    ),
    (
        "Restore drill",
        "A practice restore: files are really restored from the backups and compared with the originals, to prove the backups work.",
    ),
    (
        "RPO (recovery point objective)",
        "How much recent work the school could lose: the time since the last good backup. A nightly backup means at most about a day.",
    ),
    (
        "RTO (recovery time objective)",
        "How long the school can manage without its files: the target time to get a whole share back. Restore drills measure the real time.",
    ),
    (
        "Verification",
        "Reading the stored backups back and checking every piece is intact, so that hidden damage is found before the backups are needed.",
    ),
    (
        "Immutability",
        "Backups that cannot be changed or deleted for a set time, even by someone with the passwords: a defence against ransomware.",
    ),
    (
        "Ransomware",
        "Malicious software that locks or deletes files and demands payment. The school's policy counts an attack as a security breach.",
    ),
];

/// Builds the report from its facts.
pub fn build(d: &ReportData) -> Doc {
    let c = Clock { tz: d.timezone };
    let school = d.school.clone().unwrap_or_else(|| "The school".into());
    let mut b = Vec::new();
    b.push(Block::Title {
        title: format!("{school}: backup and disaster recovery report"),
        subtitle: format!(
            "For the headteacher and governors. Period: {} to {}. Produced on {} from the recorded history and from the backup copies themselves.",
            c.day(d.from),
            c.day(d.to),
            c.time(d.generated)
        ),
    });
    let checks = [
        check_copies(d),
        check_newest(d, &c),
        check_runs(d, &c),
        check_drills(d, &c),
        check_recovery(d),
        check_reads(d, &c),
    ];
    let worst = checks.iter().map(|k| k.light).max().unwrap_or(Light::Red);
    let count = |l: Light| checks.iter().filter(|k| k.light == l).count();
    b.push(Block::Status {
        light: worst,
        headline: match worst {
            Light::Green => "Overall: the backups are working and were tested.".into(),
            Light::Amber => format!("Overall: {} need attention.", points(count(Light::Amber))),
            Light::Red => format!(
                "Overall: {} need action{}.",
                points(count(Light::Red)),
                match count(Light::Amber) {
                    0 => String::new(),
                    n => format!(", {} attention", points(n)),
                }
            ),
        },
        detail:
            "Each point below is one question a governor may ask, answered from what was measured."
                .into(),
    });
    b.push(Block::Subheading("The six questions".into()));
    let questions = [
        "Are there enough copies, in enough places?",
        "Is every share backed up?",
        "Did the nightly backups work?",
        "Was a restore tested?",
        "How long would recovery take?",
        "Were the stored copies checked?",
    ];
    for (q, k) in questions.iter().zip(checks) {
        b.push(Block::Status {
            light: k.light,
            headline: q.to_string(),
            detail: format!("{} {}", k.headline, k.detail),
        });
    }
    b.push(Block::Subheading("Each share".into()));
    let mut rows = Vec::new();
    for s in shares(d) {
        rows.push(vec![
            s.name.to_string(),
            s.newest().map_or("never".into(), |t| c.time(t)),
            s.status()
                .map_or("not checked".into(), |x| match x.evaluation.verdict {
                    Verdict::Ok => "OK".into(),
                    Verdict::Degraded => "ATTENTION: a copy is old".into(),
                    Verdict::Violated => "ACTION NEEDED: a copy is missing".into(),
                }),
            match s.drills().last() {
                None => "never in this period".into(),
                Some(x) if x.result == CheckOutcome::Pass => {
                    format!("passed {}", c.day(x.finished))
                }
                Some(x) => format!("FAILED {}", c.day(x.finished)),
            },
        ]);
    }
    b.push(Block::Table {
        widths: vec![0.22, 0.26, 0.28, 0.24],
        header: vec![
            "Share".into(),
            "Last backed up".into(),
            "Copies (3-2-1)".into(),
            "Restore tested".into(),
        ],
        rows,
    });
    b.push(Block::Note(
        "Details, incidents and a glossary of terms follow. The technician's appendix lists every record this report is built from.".into(),
    ));
    b.push(Block::PageBreak);

    b.push(Block::Heading("Incidents and open risks".into()));
    let r = risks(d, &c);
    if r.is_empty() {
        b.push(Block::Para(
            "No incident was recorded in this period, and no risk is open.".into(),
        ));
    } else {
        b.push(Block::Para(format!(
            "{} item(s), the most serious first. Each should be resolved or accepted by the governors.",
            r.len()
        )));
        b.push(Block::Bullets(
            r.into_iter().map(|(l, t)| (Some(l), t)).collect(),
        ));
    }

    b.push(Block::Heading("Each share in detail".into()));
    for sched in &d.schedules {
        for name in &sched.sources {
            share_detail(&mut b, d, &c, sched, name);
        }
    }

    b.push(Block::Heading("Glossary".into()));
    b.push(Block::Bullets(
        GLOSSARY
            .iter()
            .map(|(t, m)| (None, format!("{t}: {m}")))
            .collect(),
    ));

    b.push(Block::Heading("Sign-off".into()));
    b.push(Block::Para(format!(
        "We have read this report for the period {} to {}, and the risks it names have been discussed and either resolved or accepted.",
        c.day(d.from),
        c.day(d.to)
    )));
    b.push(Block::SignOff(vec![
        "Headteacher".into(),
        "Chair of Governors".into(),
    ]));

    b.push(Block::PageBreak);
    appendix(&mut b, d, &c);
    Doc {
        title: format!("{school}: backup and disaster recovery report"),
        footer: format!("{school} · DR report {} to {}", c.day(d.from), c.day(d.to)),
        blocks: b,
    }
}

fn share_detail(b: &mut Vec<Block>, d: &ReportData, c: &Clock, s: &ScheduleData, name: &str) {
    let share = Share { schedule: s, name };
    b.push(Block::Subheading(format!("Share: {name}")));
    let runs = &s.runs;
    let complete: Vec<&RunRecord> = runs
        .iter()
        .filter(|r| r.outcome == RunOutcome::Complete)
        .collect();
    let rate = if runs.is_empty() {
        format!(
            "No backup run was recorded between {} and {}.",
            c.day(d.from),
            c.day(d.to)
        )
    } else {
        format!(
            "{} of {} runs complete ({}%); {} degraded, {} failed.",
            complete.len(),
            runs.len(),
            complete.len() * 100 / runs.len(),
            runs.iter()
                .filter(|r| r.outcome == RunOutcome::Degraded)
                .count(),
            runs.iter()
                .filter(|r| r.outcome == RunOutcome::Failed)
                .count()
        )
    };
    let gap = complete
        .windows(2)
        .map(|w| (w[1].finished - w[0].finished, w[0].finished, w[1].finished))
        .max_by_key(|g| g.0);
    let gap = match gap {
        Some((g, a, z)) => format!("{} (from {} to {}).", describe_age(g), c.time(a), c.time(z)),
        None => "Not measured: fewer than two complete backups were recorded in the period.".into(),
    };
    let newest = match share.newest() {
        Some(t) => format!(
            "{} old (taken {}); the policy allows {} hours.",
            describe_age(d.generated - t),
            c.time(t),
            s.max_age_hours
        ),
        None => "No complete copy was found on any target.".into(),
    };
    let drills = share.drills();
    let drill_text = if drills.is_empty() {
        format!(
            "No restore drill of {name} was recorded between {} and {}.",
            c.day(d.from),
            c.day(d.to)
        )
    } else {
        format!(
            "{} drill(s): {} passed, {} failed. Latest: {}.",
            drills.len(),
            drills
                .iter()
                .filter(|x| x.result == CheckOutcome::Pass)
                .count(),
            drills
                .iter()
                .filter(|x| x.result != CheckOutcome::Pass)
                .count(),
            drills.last().map_or(String::new(), |x| c.time(x.finished))
        )
    };
    let rto = match share.recovery() {
        Some(r) => format!(
            "About {} for the whole share ({}) at the measured {}/s, from the {} drill on {}{}.",
            describe_seconds(r.estimated_recovery_seconds),
            bytes(r.share_bytes as f64),
            bytes(r.bytes_per_second),
            match r.kind {
                DrillKind::Sample => "sample",
                DrillKind::Full => "full",
                DrillKind::SiteLoss => "site-loss",
            },
            c.day(r.finished),
            match s.rto_hours.or(r.rto_hours) {
                Some(h) => format!("; target {h} hours"),
                None => "; no target set".into(),
            }
        ),
        None => "Not measured: no restore drill measured it in this period.".into(),
    };
    b.push(Block::Table {
        widths: vec![0.3, 0.7],
        header: vec!["Measure".into(), "In this period".into()],
        rows: vec![
            vec!["Backup success rate".into(), rate],
            vec![
                "Longest gap between complete backups (RPO achieved)".into(),
                gap,
            ],
            vec!["Newest copy now".into(), newest],
            vec!["Restore drills".into(), drill_text],
            vec!["Recovery time (RTO) measured".into(), rto],
        ],
    });
    let growth = s.storage.growth.get(name);
    let in_period: Vec<&GrowthPoint> = growth
        .map(|g| g.iter().filter(|p| p.at >= d.from).collect())
        .unwrap_or_default();
    b.push(Block::Chart(Chart {
        title: format!("Storage growth of {name}"),
        series: if in_period.is_empty() {
            Vec::new()
        } else {
            vec![
                Series {
                    label: "stored in the backups (cumulative)".into(),
                    rgb: (0x1f, 0x5f, 0xbf),
                    points: in_period.iter().map(|p| (p.at, p.stored as f64)).collect(),
                },
                Series {
                    label: "size of the share".into(),
                    rgb: (0xb0, 0x60, 0x10),
                    points: in_period
                        .iter()
                        .map(|p| (p.at, p.share_bytes as f64))
                        .collect(),
                },
            ]
        },
        empty: match &s.storage.error {
            Some(e) => format!("Storage growth could not be measured: {e}."),
            None => format!(
                "No snapshot of {name} was taken between {} and {}.",
                c.day(d.from),
                c.day(d.to)
            ),
        },
    }));
    if let (Some(first), Some(last)) = (in_period.first(), in_period.last()) {
        b.push(Block::Note(format!(
            "From {} to {}: the share went from {} to {}; the backups of it take {} in all (after deduplication and compression), read from target {}.",
            c.day(first.at),
            c.day(last.at),
            bytes(first.share_bytes as f64),
            bytes(last.share_bytes as f64),
            bytes(last.stored as f64),
            s.storage.read_from.clone().unwrap_or_default()
        )));
    }
}

fn appendix(b: &mut Vec<Block>, d: &ReportData, c: &Clock) {
    b.push(Block::Heading("Technician's appendix".into()));
    b.push(Block::Para(format!(
        "Every record from the state directory for {} to {} (times in {}), and the targets as configured.",
        c.day(d.from),
        c.day(d.to),
        d.timezone
    )));
    for s in &d.schedules {
        b.push(Block::Subheading(format!(
            "Schedule {}: {}",
            s.name, s.description
        )));
        if let Ok(st) = &s.status {
            b.push(Block::Para(format!(
                "Policy: {} copies, {} media, {} offsite; newest copy at most {} hours old; the live share {}; recovery time target {}.",
                st.min_copies,
                st.min_media,
                st.min_offsite,
                st.max_age_hours,
                if st.live_data_counts { "counts as a copy" } else { "does not count as a copy" },
                s.rto_hours.map_or("not set".into(), |h| format!("{h} hours"))
            )));
        }
        b.push(Block::Table {
            widths: vec![0.13, 0.11, 0.16, 0.35, 0.25],
            header: vec![
                "Target".into(),
                "Where".into(),
                "Medium".into(),
                "Location".into(),
                "Description".into(),
            ],
            rows: s
                .targets
                .iter()
                .map(|t| {
                    vec![
                        t.name.clone(),
                        match t.location {
                            Site::Onsite => "on site".into(),
                            Site::Offsite => "off site".into(),
                        },
                        t.medium.clone(),
                        match &t.endpoint {
                            Some(e) => format!("{} ({e})", t.place),
                            None => t.place.clone(),
                        },
                        t.description.clone(),
                    ]
                })
                .collect(),
        });
        if let Ok(st) = &s.status {
            let mut rows = Vec::new();
            for src in &st.sources {
                for cp in &src.copies {
                    rows.push(vec![
                        src.source.clone(),
                        match &cp.disk {
                            Some(disk) => format!("{} disk {disk}", cp.target),
                            None => cp.target.clone(),
                        },
                        cp.snapshot.clone().unwrap_or_else(|| "none".into()),
                        cp.taken.map_or("-".into(), |t| c.time(t)),
                        cp.error.clone().unwrap_or_else(|| {
                            if cp.as_recorded {
                                "as recorded when the disk was last written".into()
                            } else {
                                "read now".into()
                            }
                        }),
                    ]);
                }
            }
            b.push(Block::Subheading("Copies now".into()));
            b.push(Block::Table {
                widths: vec![0.14, 0.16, 0.14, 0.2, 0.36],
                header: vec![
                    "Share".into(),
                    "Target".into(),
                    "Snapshot".into(),
                    "Taken".into(),
                    "Note".into(),
                ],
                rows,
            });
        }
        b.push(Block::Subheading(format!("Runs ({})", s.runs.len())));
        if s.runs.is_empty() {
            b.push(Block::Para("No run was recorded in the period.".into()));
        } else {
            b.push(Block::Table {
                widths: vec![0.22, 0.12, 0.12, 0.54],
                header: vec![
                    "Started".into(),
                    "Took".into(),
                    "Outcome".into(),
                    "Message".into(),
                ],
                rows: s
                    .runs
                    .iter()
                    .map(|r| {
                        vec![
                            c.time(r.started),
                            describe_seconds(
                                (r.finished - r.started).num_milliseconds() as f64 / 1000.0,
                            ),
                            r.outcome.to_string(),
                            r.message.clone(),
                        ]
                    })
                    .collect(),
            });
        }
        b.push(Block::Subheading(format!(
            "Restore drills ({})",
            s.drills.len()
        )));
        if s.drills.is_empty() {
            b.push(Block::Para(
                "No restore drill was recorded in the period.".into(),
            ));
        } else {
            b.push(Block::Table {
                widths: vec![0.17, 0.11, 0.1, 0.08, 0.16, 0.14, 0.08, 0.16],
                header: vec![
                    "Started".into(),
                    "Share".into(),
                    "Target".into(),
                    "Kind".into(),
                    "Restored".into(),
                    "Est. recovery".into(),
                    "Result".into(),
                    "Snapshot".into(),
                ],
                rows: s
                    .drills
                    .iter()
                    .map(|r| {
                        vec![
                            c.time(r.started),
                            r.source.clone(),
                            r.target.clone(),
                            format!("{:?}", r.kind).to_lowercase(),
                            format!(
                                "{} files, {} in {}",
                                r.files,
                                bytes(r.bytes as f64),
                                describe_seconds(r.restore_seconds)
                            ),
                            describe_seconds(r.estimated_recovery_seconds),
                            if r.result == CheckOutcome::Pass {
                                "pass".into()
                            } else {
                                format!("FAIL: {}", r.reason)
                            },
                            r.snapshot.chars().take(8).collect(),
                        ]
                    })
                    .collect(),
            });
        }
        b.push(Block::Subheading(format!(
            "Verifications ({})",
            s.verifies.len()
        )));
        if s.verifies.is_empty() {
            b.push(Block::Para(
                "No verification was recorded in the period.".into(),
            ));
        } else {
            b.push(Block::Table {
                widths: vec![0.18, 0.11, 0.2, 0.17, 0.1, 0.24],
                header: vec![
                    "Started".into(),
                    "Target".into(),
                    "Read back".into(),
                    "Coverage 30/90 days".into(),
                    "Result".into(),
                    "Findings".into(),
                ],
                rows: s
                    .verifies
                    .iter()
                    .map(|v| {
                        vec![
                            c.time(v.started),
                            v.target.clone(),
                            format!(
                                "{} of {} packs, {} of {}",
                                v.packs_read,
                                v.packs_total,
                                bytes(v.bytes_read as f64),
                                bytes(v.bytes_total as f64)
                            ),
                            format!(
                                "{:.0}% / {:.0}%",
                                v.coverage_30d * 100.0,
                                v.coverage_90d * 100.0
                            ),
                            v.result.to_string(),
                            if v.result == CheckOutcome::Error {
                                v.error.clone()
                            } else {
                                v.findings
                                    .iter()
                                    .map(|f| format!("{}: {} {}", f.object, f.problem, f.repair))
                                    .collect::<Vec<_>>()
                                    .join("; ")
                            },
                        ]
                    })
                    .collect(),
            });
        }
        b.push(Block::Note(
            match (&s.storage.read_from, &s.storage.error) {
                (Some(t), _) => format!("Snapshot statistics were read from target {t}."),
                (None, Some(e)) => format!("Snapshot statistics could not be read: {e}."),
                _ => String::new(),
            },
        ));
    }
}
