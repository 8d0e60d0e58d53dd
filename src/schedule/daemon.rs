//! The scheduler: runs every schedule at its times, in its own time zone.
//!
//! - Times come from [`crate::plan::timetable`], so clock changes neither skip nor double a run.
//! - A run missed while the machine was off runs once at start-up (for the latest missed time).
//! - Two runs of one schedule never overlap: runs take the schedule's lock in the state
//!   directory, which `firesafe run` takes too; the daemon itself runs one schedule at a time.
//!   A time that comes while a run started by hand holds the lock waits for it, then runs
//!   (after six hours it is recorded as skipped, with the reason): every time is in the history.
//! - On SIGTERM the current backup stops starting new files, stores and indexes what it has
//!   queued, and the daemon exits; the next run continues from what was stored.
//! - Every run is recorded in the state directory's history.
//! - Verifications and restore drills ([`crate::schedule::checks`]) run at their own times, under the
//!   schedule's lock.
//! - Weekly summaries ([`crate::schedule::summary`]) are sent at their own times; one missed while the
//!   daemon was not running is skipped.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::format::tree::printable;
use crate::plan::timetable::{self, Timetable};
use crate::schedule::run::{self, RunOptions};
use crate::schedule::timer::{Passed, Ticker, Woken};
use crate::store::state::StateDir;

/// What the daemon needs.
pub struct DaemonOptions {
    pub config: Config,
    pub state: StateDir,
    /// Set when the daemon must stop; running backups watch it.
    pub cancel: Arc<AtomicBool>,
    /// Notified when `cancel` is set, to wake the daemon from its sleep.
    pub wake: Arc<Notify>,
}

fn timetables(config: &Config) -> BTreeMap<String, Timetable> {
    config
        .schedules
        .values()
        .map(|s| (s.name.clone(), s.times().backup.clone()))
        .collect()
}

/// Runs until `cancel` is set.
pub async fn daemon(options: DaemonOptions) -> Result<()> {
    let DaemonOptions {
        config,
        state,
        cancel,
        wake,
    } = options;
    let tables = timetables(&config);
    // A daemon with nothing to run must not look like one that finished its work: it fails,
    // so that the service manager reports it (and restarts it once the files are there).
    if tables.is_empty() {
        return Err(Error::NotFound(format!(
            "no schedules in {}: the daemon has nothing to run; put the schedules in {} (or give --config-dir)",
            config.dir.join("schedules").display(),
            config.dir.join("schedules").display()
        )));
    }
    let config = Arc::new(config);
    // Weekly summaries go out on their own times, beside the runs.
    let summaries = tokio::spawn(crate::schedule::summary::send_at_times(
        Arc::clone(&config),
        state.clone(),
        Arc::clone(&cancel),
    ));
    // Verifications and drills too.
    let checks = tokio::spawn(crate::schedule::checks::run_at_times(
        Arc::clone(&config),
        state.clone(),
        Arc::clone(&cancel),
    ));
    let started = Utc::now();
    // The last scheduled time handled, per schedule; a schedule never run starts from now.
    // Times that pass while a run is going are skipped: the next run covers them.
    let count = tables.len();
    let mut ticker = Ticker::new(tables, started, Passed::Skip);
    let mut last = BTreeMap::new();
    for name in ticker.tables().keys() {
        last.insert(name.clone(), state.load(name)?.last_scheduled);
    }
    for (name, at) in &last {
        ticker.handled(name, at.unwrap_or(started));
    }
    tracing::info!(schedules = count, state = %state.path().display(), "daemon started");

    // Catch up: one run for each schedule that missed a time while the daemon was not running.
    let missed: Vec<(String, DateTime<Utc>)> = ticker
        .tables()
        .iter()
        .filter_map(|(name, table)| {
            let at = timetable::missed(table, last[name].or(Some(started)), Utc::now())?;
            Some((name.clone(), at))
        })
        .collect();
    for (name, at) in missed {
        if cancel.load(Ordering::Relaxed) {
            break;
        }
        tracing::warn!(schedule = %name, missed = %at, "a run was missed while firesafe was not running; running it now");
        run_one(&config, &state, &name, at, &cancel).await;
        ticker.handled(&name, at);
    }

    while !cancel.load(Ordering::Relaxed) {
        match ticker.wait(&cancel, Some(&wake), "run").await {
            Some(Woken::Early) => continue,
            Some(Woken::Due(at, names)) => {
                for name in names {
                    if cancel.load(Ordering::Relaxed) {
                        break;
                    }
                    run_one(&config, &state, &name, at, &cancel).await;
                }
            }
            None if cancel.load(Ordering::Relaxed) => break,
            None => {
                summaries.abort();
                checks.abort();
                return Err(Error::Usage(
                    "no schedule has a run time to come; the daemon stops (check the schedules' cron times with `firesafe config check`)".into(),
                ));
            }
        }
    }
    summaries.abort();
    checks.abort();
    tracing::info!("daemon stopped");
    Ok(())
}

async fn run_one(
    config: &Config,
    state: &StateDir,
    name: &str,
    at: DateTime<Utc>,
    cancel: &Arc<AtomicBool>,
) {
    let schedule = &config.schedules[name];
    tracing::info!(schedule = %name, scheduled_for = %at, "run started");
    let options = RunOptions {
        init: false,
        // Off a terminal: a progress line in the log every minute of a long backup.
        progress: true,
        cancel: Some(Arc::clone(cancel)),
    };
    match crate::schedule::backup_job::run_scheduled(config, schedule, state, at, &options).await {
        Ok(r) if r.is_clean() => tracing::info!(schedule = %name, "run complete"),
        Ok(r) => {
            for (target, outcome) in &r.targets {
                if let run::TargetOutcome::Failed(e) = outcome {
                    tracing::warn!(schedule = %name, target = %target, error = %printable(&e.to_string()), "target not updated");
                }
            }
            tracing::warn!(schedule = %name, "run degraded");
        }
        Err(e @ Error::Interrupted(_)) => {
            tracing::warn!(schedule = %name, "{}", printable(&e.to_string()))
        }
        Err(e) => {
            tracing::error!(schedule = %name, error = %printable(&e.to_string()), "run failed")
        }
    }
}
