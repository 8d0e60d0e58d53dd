//! A schedule's backup job: the run under the schedule's lock, recorded in the history, and the
//! monitoring that follows it (disk records, metrics, ping, email). The run itself
//! ([`crate::schedule::run`]) knows nothing of what happens after it.

use crate::config::{Config, ScheduleSpec};
use crate::error::{Error, Result};
use crate::format::tree::printable;
use crate::plan::words::{count_s, noun};
use crate::schedule::media::{Held, record_written};
use crate::schedule::run::{RunOptions, RunReport, TargetOutcome, run};
use crate::store::state::{RunOutcome, RunRecord, StateDir};

use chrono::{DateTime, Utc};

/// Runs a schedule under its lock and records the run in the state directory's history.
/// `scheduled_for` is the timetable time a daemon run is for (`None` for a run by hand).
pub async fn run_recorded(
    config: &Config,
    schedule: &ScheduleSpec,
    state: &crate::store::state::StateDir,
    scheduled_for: Option<chrono::DateTime<chrono::Utc>>,
    options: &RunOptions,
) -> Result<RunReport> {
    let Some(lock) = state.try_lock(&schedule.name)? else {
        return Err(Error::Usage(format!(
            "schedule \"{}\" is already running (its lock in {} is held); two runs of one schedule never overlap",
            schedule.name,
            state.path().display()
        )));
    };
    run_locked(config, schedule, state, scheduled_for, options, lock).await
}

/// How long a scheduled run waits for another run of its schedule (one started by hand) to end
/// before it is recorded as skipped.
pub const WAIT_FOR_RUN: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

/// A scheduled run (the daemon's): when another run of the schedule holds its lock, waits for
/// it to end (logging that it waits), then runs; after [`WAIT_FOR_RUN`], or when `cancel` is
/// set, the time is recorded in the history as a failed run with the reason, so that the
/// history and the report show every time the schedule fired, and a restart does not take it
/// for a run missed while firesafe was not running.
pub async fn run_scheduled(
    config: &Config,
    schedule: &ScheduleSpec,
    state: &StateDir,
    at: DateTime<Utc>,
    options: &RunOptions,
) -> Result<RunReport> {
    let waited_from = Utc::now();
    let mut logged = false;
    let lock = loop {
        if let Some(lock) = state.try_lock(&schedule.name)? {
            break lock;
        }
        let stopping = options
            .cancel
            .as_ref()
            .is_some_and(|c| c.load(std::sync::atomic::Ordering::Relaxed));
        let waited = (Utc::now() - waited_from).to_std().unwrap_or_default();
        if stopping || waited >= WAIT_FOR_RUN {
            let why = format!(
                "skipped: another run of schedule \"{}\" held its lock from {} {}",
                schedule.name,
                waited_from.format("%Y-%m-%d %H:%M UTC"),
                if stopping {
                    "until firesafe was stopped"
                } else {
                    "for six hours"
                }
            );
            state.record(&RunRecord {
                schedule: schedule.name.clone(),
                scheduled_for: Some(at),
                started: waited_from,
                finished: Utc::now(),
                outcome: RunOutcome::Failed,
                message: why.clone(),
                problems: vec![why.clone()],
            })?;
            return Err(Error::Usage(why));
        }
        if !logged {
            warn(
                &schedule.name,
                "another run of this schedule is going (started by hand?); the scheduled run waits for it to end",
            );
            logged = true;
        }
        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    };
    run_locked(config, schedule, state, Some(at), options, lock).await
}

async fn run_locked(
    config: &Config,
    schedule: &ScheduleSpec,
    state: &StateDir,
    scheduled_for: Option<DateTime<Utc>>,
    options: &RunOptions,
    _lock: crate::store::state::Lock,
) -> Result<RunReport> {
    let started = chrono::Utc::now();
    let result = run(config, schedule, options).await;
    let mut record = record_of(schedule, scheduled_for, started, &result);
    // The run's monitoring comes before its history line, so that an alert that could not be
    // sent is in the history too, not only on standard error.
    let monitored = after_run(config, schedule, state, &record, result.as_ref().ok()).await;
    if let Ok(notes) = &monitored
        && !notes.is_empty()
    {
        record.message = format!("{}; {}", record.message, notes.join("; "));
        record.problems.extend(notes.iter().cloned());
    }
    state.record(&record)?;
    monitored?;
    result
}

/// The history line for a run: its outcome and, in one line, what went wrong.
fn record_of(
    schedule: &ScheduleSpec,
    scheduled_for: Option<DateTime<Utc>>,
    started: DateTime<Utc>,
    result: &Result<RunReport>,
) -> RunRecord {
    let (outcome, problems) = match result {
        Ok(r) if r.is_clean() => (RunOutcome::Complete, Vec::new()),
        Ok(r) => (
            RunOutcome::Degraded,
            r.targets
                .iter()
                .filter_map(|(n, t)| match t {
                    TargetOutcome::Failed(e) => Some(format!("{n}: {e}")),
                    _ => None,
                })
                .chain(r.backups.iter().filter_map(|(s, b)| match b {
                    Err(e) => Some(format!("{s}: {e}")),
                    Ok(b) if b.snapshot.partial => Some(format!(
                        "{s}: partial snapshot, {}",
                        count_s(b.snapshot.warnings.len() as u64, "warning")
                    )),
                    Ok(b) if b.snapshot.suspect.is_some() => Some(format!(
                        "{s}: possible ransomware: {} (snapshot {} kept as suspect; nothing of {s} is pruned until a technician decides with `firesafe suspect`)",
                        b.snapshot.suspect.as_ref().map_or("", |x| x.headline.as_str()),
                        b.id.short()
                    )),
                    Ok(b) if !b.damaged_packs.is_empty() => Some(format!(
                        "{s}: {} found on the repository ({}); {} data was stored again, run `firesafe verify {} --repair`",
                        count_s(b.damaged_packs.len() as u64, "damaged pack"),
                        b.damaged_packs.iter().map(|(k, _)| k.as_str()).collect::<Vec<_>>().join(", "),
                        noun(b.damaged_packs.len() as u64, "its", "their"),
                        schedule.name
                    )),
                    Ok(_) => None,
                }))
                .collect::<Vec<_>>(),
        ),
        Err(Error::Interrupted(m)) => (RunOutcome::Interrupted, vec![m.clone()]),
        Err(e) => (RunOutcome::Failed, vec![e.to_string()]),
    };
    let message = if outcome == RunOutcome::Complete {
        "every source backed up to every target".to_string()
    } else {
        problems.join("; ")
    };
    // What a first run set up (and what it found out about each store) stays in the history.
    let message = match result {
        Ok(r) if !r.created.is_empty() => format!("{}; {message}", r.created.join("; ")),
        _ => message,
    };
    RunRecord {
        schedule: schedule.name.clone(),
        scheduled_for,
        started,
        finished: chrono::Utc::now(),
        outcome,
        message,
        problems,
    }
}

/// Monitoring after a recorded run: the disks written, metrics from the run and from what the
/// targets now hold, the ping, and an email when something needs attention.
async fn after_run(
    config: &Config,
    schedule: &ScheduleSpec,
    state: &StateDir,
    record: &RunRecord,
    report: Option<&RunReport>,
) -> Result<Vec<String>> {
    let mut notes = Vec::new();
    let outcome = record.outcome;
    let status = crate::schedule::status::status_with_records(
        config,
        schedule,
        Some(state),
        chrono::Utc::now(),
    )
    .await
    .ok();
    if let (Some(report), Some(status)) = (report, &status)
        && let Err(e) = record_run(state, report, status, record.finished)
    {
        warn(&schedule.name, &e.to_string());
    }
    // The trust's status beacon (when site.toml names a trust), from the status just read.
    if let Some(s) = &status {
        for why in crate::schedule::beacon::write(config, schedule, state, s).await {
            warn(&schedule.name, &why);
            notes.push(why);
        }
    }
    let metrics = crate::schedule::alert::metrics(record, report, status.as_ref());
    let path = match &schedule.alerts.metrics_file {
        Some(p) => p.clone(),
        None => state.metrics_dir()?.join(format!("{}.prom", schedule.name)),
    };
    crate::schedule::alert::write_metrics(&path, &metrics)?;
    if let Some(url) = &schedule.alerts.ping_url {
        let verdicts_ok = status.as_ref().is_some_and(|s| {
            s.sources.iter().all(|src| {
                src.evaluation.verdict == crate::plan::policy::Verdict::Ok && src.suspect.is_none()
            })
        });
        if let Err(why) =
            crate::schedule::alert::ping(url, outcome == RunOutcome::Complete && verdicts_ok).await
        {
            warn(&schedule.name, &why);
            notes.push(why);
        }
    }
    let attention = outcome != RunOutcome::Complete
        || status.as_ref().is_none_or(|s| {
            s.sources.iter().any(|src| {
                src.evaluation.verdict != crate::plan::policy::Verdict::Ok || src.suspect.is_some()
            })
        });
    if attention && !schedule.alerts.email_to.is_empty() {
        let ca = match &schedule.alerts.smtp_ca_file {
            Some(p) => {
                Some(std::fs::read(p).map_err(|e| Error::local(p, "cannot read smtp_ca_file", e))?)
            }
            None => None,
        };
        let (subject, body) = crate::schedule::alert::email_text(
            record,
            status.as_ref(),
            &crate::store::repo::hostname(),
        );
        if let Err(why) =
            crate::schedule::alert::send_email(&schedule.alerts, ca.as_deref(), &subject, &body)
                .await
        {
            warn(&schedule.name, &why);
            notes.push(why);
        }
    }
    Ok(notes)
}

/// A warning from monitoring: to the log when the daemon has one, else to standard error.
pub(crate) fn warn(schedule: &str, why: &str) {
    if tracing::dispatcher::has_been_set() {
        tracing::warn!(schedule = %schedule, "{}", printable(why));
    } else {
        eprintln!("firesafe: warning: {}", printable(why));
    }
}

/// After a run: records, for each pool target the run wrote to, the disk written and the newest
/// snapshot of each source now on it (as `status` read it from the disk).
pub fn record_run(
    state: &StateDir,
    report: &crate::schedule::run::RunReport,
    status: &crate::schedule::status::ScheduleStatus,
    at: DateTime<Utc>,
) -> Result<()> {
    for (target, outcome) in &report.targets {
        if matches!(outcome, crate::schedule::run::TargetOutcome::Failed(_)) {
            continue;
        }
        let mut disk = None;
        let mut held = Vec::new();
        for src in &status.sources {
            for c in &src.copies {
                if &c.target != target || c.as_recorded || c.disk.is_none() {
                    continue;
                }
                disk = c.disk.clone();
                if let (Some(snapshot), Some(taken)) = (&c.snapshot, c.taken) {
                    held.push(Held {
                        source: src.source.clone(),
                        snapshot: snapshot.clone(),
                        taken,
                    });
                }
            }
        }
        if let Some(disk) = disk {
            record_written(state, target, &disk, held, at)?;
        }
    }
    Ok(())
}
