//! Scheduled verification and restore drills: the `[verify]` and `[drill]` sections of a
//! schedule, run by the daemon at their own cron times in the schedule's time zone.
//!
//! Each takes the schedule's lock, so it never overlaps that schedule's backup: when a backup is
//! running it waits (up to six hours) and then runs. A time missed while the daemon was not
//! running is skipped, not caught up: the next time comes soon enough, and a drill or a
//! verification at start-up would compete with the catch-up backup.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::Utc;

use crate::config::{Config, ScheduleSpec};
use crate::format::tree::printable;
use crate::plan::timetable::Timetable;
use crate::schedule::timer::{Passed, Ticker, Woken};
use crate::store::state::StateDir;

/// Which job, for which schedule.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Job {
    Verify(String),
    Drill(String),
}

fn timetables(config: &Config) -> BTreeMap<Job, Timetable> {
    let mut out = BTreeMap::new();
    for s in config.schedules.values() {
        let times = s.times();
        if let Some(t) = &times.verify {
            out.insert(Job::Verify(s.name.clone()), t.clone());
        }
        if let Some(t) = &times.drill {
            out.insert(Job::Drill(s.name.clone()), t.clone());
        }
    }
    out
}

/// Runs every `[verify]` and `[drill]` at its times until `cancel` is set.
pub async fn run_at_times(config: Arc<Config>, state: StateDir, cancel: Arc<AtomicBool>) {
    let mut ticker = Ticker::new(timetables(&config), Utc::now(), Passed::Late);
    while let Some(Woken::Due(_, jobs)) = ticker.wait(&cancel, None, "verification or drill").await
    {
        for job in &jobs {
            if cancel.load(Ordering::Relaxed) {
                return;
            }
            run(&config, &state, job, &cancel).await;
        }
    }
}

async fn run(config: &Config, state: &StateDir, job: &Job, cancel: &AtomicBool) {
    let (Job::Verify(name) | Job::Drill(name)) = job;
    let schedule: &ScheduleSpec = &config.schedules[name];
    // Wait for the schedule's own run to finish.
    let mut waited = Duration::ZERO;
    let _lock = loop {
        match state.try_lock(name) {
            Ok(Some(lock)) => break lock,
            Ok(None) if waited < Duration::from_secs(6 * 3600) => {
                if cancel.load(Ordering::Relaxed) {
                    return;
                }
                tokio::time::sleep(Duration::from_secs(30)).await;
                waited += Duration::from_secs(30);
            }
            Ok(None) => {
                tracing::warn!(schedule = %name, "skipped: the schedule's run held its lock for six hours");
                return;
            }
            Err(e) => {
                tracing::error!(schedule = %name, error = %printable(&e.to_string()), "cannot take the schedule's lock");
                return;
            }
        }
    };
    match job {
        Job::Verify(_) => {
            let spec = schedule.verify.as_ref().expect("a verify job has [verify]");
            let options = crate::ops::verify::VerifyOptions {
                read: crate::ops::verify::Read::Rotating(spec.read_percent),
                repair: spec.repair,
                dry_run: false,
                progress: false,
            };
            match crate::schedule::verify_job::verify_schedule(config, schedule, state, &options)
                .await
            {
                Ok(records) => {
                    for r in records {
                        if r.result == crate::store::records::CheckOutcome::Pass {
                            tracing::info!(schedule = %name, target = %r.target, bytes_read = r.bytes_read, coverage_30d = r.coverage_30d, "verification passed");
                        } else {
                            tracing::warn!(schedule = %name, target = %r.target, findings = r.findings.len(), error = %printable(&r.error), "verification found problems");
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(schedule = %name, error = %printable(&e.to_string()), "verification could not run")
                }
            }
        }
        Job::Drill(_) => {
            let spec = schedule.drill.as_ref().expect("a drill job has [drill]");
            let options = crate::ops::drill::DrillOptions {
                kind: spec.kind,
                target: None,
                sample_files: spec.sample_files,
                seed: None,
                recovery_key: spec.recovery_key_file.clone(),
                scratch: spec.scratch_dir.clone(),
            };
            match crate::schedule::drill_job::drill_schedule(config, schedule, state, &options)
                .await
            {
                Ok(records) => {
                    for r in records {
                        if r.result == crate::store::records::CheckOutcome::Pass {
                            tracing::info!(schedule = %name, source = %r.source, target = %r.target, "restore drill passed");
                        } else {
                            tracing::warn!(schedule = %name, source = %r.source, target = %r.target, reason = %printable(&r.reason), "restore drill FAILED");
                        }
                    }
                }
                Err(e) => {
                    tracing::error!(schedule = %name, error = %printable(&e.to_string()), "restore drill could not run")
                }
            }
        }
    }
}
