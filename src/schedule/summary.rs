//! The weekly summary: what a schedule did over the last 7 days, and where its copies stand now.
//!
//! One plain-text email per schedule, at the times in its `[alerts] summary_cron` (read in the
//! schedule's time zone): how many runs completed, ended degraded, failed or were interrupted
//! (from `STATE/history.jsonl`), the last complete run, the current 3-2-1 verdict of each source
//! (from [`crate::schedule::status`], so from what is really on each target), and the rotated disks with
//! any overdue rotation. `firesafe summary SCHEDULE` prints the same text.
//!
//! A summary whose time passes while the daemon is not running is skipped, not sent late: the
//! next one covers the same days.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use chrono::{DateTime, Duration, Utc};

use crate::config::{Config, ScheduleSpec};
use crate::error::Result;
use crate::plan::policy::Verdict;
use crate::plan::timetable::Timetable;
use crate::schedule::media::Place;
use crate::schedule::status::ScheduleStatus;
use crate::schedule::timer::{Passed, Ticker, Woken};
use crate::store::state::{RunOutcome, RunRecord, StateDir};

/// The days a summary covers.
pub const DAYS: i64 = 7;

/// A summary email: subject and plain-text body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub subject: String,
    pub body: String,
}

fn rank(v: Verdict) -> u8 {
    match v {
        Verdict::Ok => 0,
        Verdict::Degraded => 1,
        Verdict::Violated => 2,
    }
}

/// Writes the summary of `schedule` at `now` from its run history and its status (or why the
/// status could not be found). Pure: everything is passed in.
pub fn text(
    schedule: &ScheduleSpec,
    history: &[RunRecord],
    status: std::result::Result<&ScheduleStatus, &str>,
    host: &str,
    now: DateTime<Utc>,
) -> Summary {
    let tz = schedule.times().timezone;
    let local = |t: DateTime<Utc>| t.with_timezone(&tz).format("%a %Y-%m-%d %H:%M").to_string();
    let from = now - Duration::days(DAYS);
    let runs: Vec<&RunRecord> = history
        .iter()
        .filter(|r| r.schedule == schedule.name && r.finished > from && r.finished <= now)
        .collect();
    let count = |o: RunOutcome| runs.iter().filter(|r| r.outcome == o).count();
    let complete = count(RunOutcome::Complete);
    let last_complete = history
        .iter()
        .filter(|r| {
            r.schedule == schedule.name && r.outcome == RunOutcome::Complete && r.finished <= now
        })
        .map(|r| r.finished)
        .max();

    let mut body = String::new();
    let _ = writeln!(
        body,
        "Weekly summary of schedule {} on {host}, {} to {} ({}).",
        schedule.name,
        local(from),
        local(now),
        schedule.timezone
    );
    let _ = writeln!(
        body,
        "\nRuns in the last {DAYS} days: {} ({complete} complete, {} degraded, {} failed, {} interrupted).",
        runs.len(),
        count(RunOutcome::Degraded),
        count(RunOutcome::Failed),
        count(RunOutcome::Interrupted)
    );
    let _ = writeln!(
        body,
        "Last complete run: {}.",
        match last_complete {
            Some(t) => local(t),
            None => "none recorded".to_string(),
        }
    );
    let trouble: Vec<&&RunRecord> = runs
        .iter()
        .filter(|r| r.outcome != RunOutcome::Complete)
        .collect();
    if !trouble.is_empty() {
        let _ = writeln!(body, "Runs that did not complete:");
        for r in trouble {
            let _ = writeln!(
                body,
                "  - {}: {}: {}",
                local(r.started),
                r.outcome,
                r.message
            );
        }
    }

    let (worst, overdue) = match status {
        Ok(st) => write_status(&mut body, st, &local),
        Err(why) => {
            let _ = writeln!(body, "\nThe 3-2-1 status could not be checked: {why}");
            (None, false)
        }
    };
    let _ = writeln!(body, "\nRun `firesafe status` on {host} for the details.");

    let verdict = match worst {
        Some(0) => "3-2-1 OK",
        Some(1) => "3-2-1 DEGRADED",
        Some(_) => "3-2-1 VIOLATED",
        None => "3-2-1 not checked",
    };
    let subject = format!(
        "firesafe on {host}: weekly summary of schedule {}: {verdict}, {complete} of {} runs complete{}",
        schedule.name,
        runs.len(),
        if overdue {
            ", disk rotation overdue"
        } else {
            ""
        }
    );
    Summary { subject, body }
}

/// The 3-2-1 part of the summary: each source's verdict and reasons, then the rotated disks.
/// Returns the worst verdict's rank and whether a rotation is overdue.
fn write_status(
    body: &mut String,
    st: &ScheduleStatus,
    local: &dyn Fn(DateTime<Utc>) -> String,
) -> (Option<u8>, bool) {
    let mut worst = None;
    let mut overdue = false;
    let _ = writeln!(
        body,
        "\nThe 3-2-1 rule now, checked against what is on each target:"
    );
    for src in &st.sources {
        let e = &src.evaluation;
        worst = worst.max(Some(rank(e.verdict)));
        let _ = writeln!(
            body,
            "  {}: {} ({} copies, {} media, {} offsite)",
            src.source, e.verdict, e.copies, e.media, e.offsite
        );
        for r in &e.reasons {
            let _ = writeln!(body, "    - {r}");
        }
    }
    for pool in &st.media {
        let _ = writeln!(body, "\nRotated disks of {}:", pool.target);
        for d in &pool.disks {
            let _ = writeln!(
                body,
                "  {}: {}{}; last written {}",
                d.disk,
                d.place,
                match (d.place, d.last_moved) {
                    (Place::Offsite, Some(t)) => format!(" since {}", local(t)),
                    _ => String::new(),
                },
                d.last_written.map_or("never".to_string(), local)
            );
        }
        if let Some(w) = &pool.warning {
            overdue = true;
            let _ = writeln!(body, "  - {w}");
        }
    }
    (worst, overdue)
}

/// The summary of `schedule` now: its history from `state`, its status read from its targets.
pub async fn summary(
    config: &Config,
    schedule: &ScheduleSpec,
    state: &StateDir,
    now: DateTime<Utc>,
) -> Result<Summary> {
    let history = state.history()?;
    let status = crate::schedule::status::status_with_records(config, schedule, Some(state), now)
        .await
        .map_err(|e| e.to_string());
    let mut summary = text(
        schedule,
        &history,
        status.as_ref().map_err(String::as_str),
        &crate::store::repo::hostname(),
        now,
    );
    summary.body.push_str(&format!(
        "\nRecords read from the state directory {}.\n",
        state.path().display()
    ));
    Ok(summary)
}

/// Emails a summary with the schedule's `[alerts]` settings.
pub async fn send(schedule: &ScheduleSpec, summary: &Summary) -> Result<()> {
    crate::schedule::alert::email_with(
        &schedule.alerts,
        &format!(
            "schedule \"{}\" cannot email: set email_to, email_from and smtp_host in its [alerts] (schedules/{}.toml)",
            schedule.name, schedule.name
        ),
        &summary.subject,
        &summary.body,
    )
    .await
}

/// The summary times of every schedule that has a `summary_cron`.
pub fn timetables(config: &Config) -> BTreeMap<String, Timetable> {
    config
        .schedules
        .values()
        .filter_map(|s| Some((s.name.clone(), s.times().summary.clone()?)))
        .collect()
}

/// The daemon's summary sender: sleeps until the next summary time of any schedule, sends the
/// summaries due then, and so on until `cancel` is set. Times that passed before it started
/// are skipped. Failures are logged, never fatal.
pub async fn send_at_times(config: Arc<Config>, state: StateDir, cancel: Arc<AtomicBool>) {
    let mut ticker = Ticker::new(timetables(&config), Utc::now(), Passed::Late);
    while let Some(Woken::Due(_, names)) = ticker.wait(&cancel, None, "weekly summary").await {
        for name in &names {
            let schedule = &config.schedules[name];
            let result = match summary(&config, schedule, &state, Utc::now()).await {
                Ok(s) => send(schedule, &s).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(()) => tracing::info!(schedule = %name, "weekly summary sent"),
                Err(e) => tracing::warn!(schedule = %name, error = %e, "weekly summary not sent"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule() -> ScheduleSpec {
        let mut s: ScheduleSpec = toml::from_str(
            "cron = \"0 2 * * *\"\ntimezone = \"Europe/London\"\ntargets = [\"nas\"]\nkey_file = \"k\"\n[[sources]]\nname = \"admin\"\npath = \"/srv/admin\"\n",
        )
        .unwrap();
        s.name = "nightly".into();
        s.parse_times().unwrap();
        s
    }

    fn run(day: i64, outcome: &str) -> RunRecord {
        let t = DateTime::from_timestamp(1_800_000_000 + day * 86_400, 0).unwrap();
        RunRecord {
            schedule: "nightly".into(),
            scheduled_for: Some(t),
            started: t,
            finished: t + Duration::minutes(5),
            outcome: outcome.parse().unwrap(),
            message: if outcome == "complete" {
                String::new()
            } else {
                "offsite: unreachable".into()
            },
            problems: vec![],
        }
    }

    #[test]
    fn counts_the_last_seven_days_only() {
        let history = vec![
            run(0, "failed"),
            run(3, "complete"),
            run(4, "degraded"),
            run(5, "complete"),
            run(9, "complete"),
        ];
        let now = DateTime::from_timestamp(1_800_000_000 + 10 * 86_400, 0).unwrap();
        let s = text(&schedule(), &history, Err("no key"), "server", now);
        assert!(
            s.body.contains(
                "Runs in the last 7 days: 4 (3 complete, 1 degraded, 0 failed, 0 interrupted)."
            ),
            "{}",
            s.body
        );
        assert!(
            s.body.contains("degraded: offsite: unreachable"),
            "{}",
            s.body
        );
        assert!(
            s.body.contains("could not be checked: no key"),
            "{}",
            s.body
        );
        assert_eq!(
            s.subject,
            "firesafe on server: weekly summary of schedule nightly: 3-2-1 not checked, 3 of 4 runs complete"
        );
    }
}
