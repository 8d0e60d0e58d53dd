//! `status` and `summary`: where each source's copies are, how old, and the 3-2-1 verdict; and
//! the week's summary of a schedule.

use chrono::{DateTime, Local, Utc};
use clap::Args;
use firesafe::Result;
use firesafe::config::{ScheduleSpec, Site};
use firesafe::format::tree::printable;
use firesafe::plan::policy::describe_age;
use firesafe::schedule::status::{ScheduleStatus, SourceStatus, TargetCopy, status_with_records};
use firesafe::store::records::CheckOutcome;

use super::Outcome;
use super::args::{ConfigDir, StateDirFlag, state_help};
use super::media::print_pools;

/// The `status` command's long help.
pub(super) const STATUS_HELP: &str =
    "The verdict comes from what is really on each target: every target is opened
and the newest complete snapshot of each source there is what counts. OK: the policy is met.
DEGRADED: every copy exists but some are older than the policy allows. VIOLATED: a copy, a
medium or the offsite copy is missing. The exit status is 0 only when every verdict is OK and
every target could be read and is up to date.

EXAMPLES:
  firesafe status
  firesafe status nightly --json";

/// The `summary` command's long help.
pub(super) const SUMMARY_HELP: &str =
    "The summary counts the schedule's runs of the last 7 days (complete, degraded,
failed, interrupted) from the state directory's history.jsonl, gives the last complete run, the
3-2-1 verdict of each source read from the targets now, and the rotated disks with any overdue
rotation. With --send it is emailed with the schedule's [alerts] settings.

The daemon sends it by itself at the times in `[alerts] summary_cron` (for example
\"0 8 * * 1\", Monday 08:00 in the schedule's time zone). A summary time missed while the daemon
was not running is skipped, not sent late.

EXAMPLES:
  firesafe summary nightly
  firesafe summary nightly --send";

#[derive(Args, Debug)]
#[command(mut_arg("state_dir", |a| {
    a.help(state_help("Where the records of rotated disks are kept"))
}))]
pub(super) struct StatusArgs {
    /// Only this schedule (default: every schedule).
    schedule: Option<String>,
    #[command(flatten)]
    config: ConfigDir,
    #[command(flatten)]
    state: StateDirFlag,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
#[command(mut_arg("state_dir", |a| a.help(state_help("Where run history is kept"))))]
pub(super) struct SummaryArgs {
    /// The schedule (schedules/NAME.toml).
    schedule: String,
    #[command(flatten)]
    config: ConfigDir,
    #[command(flatten)]
    state: StateDirFlag,
    /// Email it with the schedule's [alerts] settings.
    #[arg(long)]
    send: bool,
}

pub(super) async fn status_cmd(a: StatusArgs) -> Result<Outcome> {
    let config = a.config.load()?;
    let schedules: Vec<&ScheduleSpec> = match &a.schedule {
        Some(s) => vec![config.schedule(s)?],
        None => config.schedules.values().collect(),
    };
    let now = Utc::now();
    // The records of rotated disks, when there is a state directory to read them from.
    let state = a.state.open_existing(Some(&a.config))?;
    let mut all = Vec::new();
    for s in schedules {
        all.push(status_with_records(&config, s, state.as_ref(), now).await?);
    }
    let ok = all.iter().all(ScheduleStatus::is_ok);
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all).expect("JSON"));
        return Ok(Outcome::clean_if(ok));
    }
    for s in &all {
        print_status(s, now);
    }
    match &state {
        Some(st) => println!(
            "records read from the state directory {}",
            st.path().display()
        ),
        None => println!(
            "no state directory at {} (no run recorded yet): targets read, no records",
            a.state.path(Some(&a.config)).display()
        ),
    }
    Ok(Outcome::clean_if(ok))
}

/// One schedule's policy, each source's verdict and copies, its disks and its verifications.
fn print_status(s: &ScheduleStatus, now: DateTime<Utc>) {
    println!(
        "schedule {}: policy {} copies, {} media, {} offsite, newest copy at most {} hours old; the live share {} as a copy",
        s.schedule,
        s.min_copies,
        s.min_media,
        s.min_offsite,
        s.max_age_hours,
        if s.live_data_counts {
            "counts"
        } else {
            "does not count"
        }
    );
    for src in &s.sources {
        print_source(src, now);
    }
    print_pools(&s.media, "  ");
    for n in &s.key_notices {
        println!("  key: {n}");
    }
    if !s.verification.is_empty() {
        println!("  verification (latest run per target):");
    }
    for v in &s.verification {
        println!(
            "    {:<12} {} {}: read back {:.0}% in 30 days, {:.0}% in 90 days; last complete read {}{}",
            v.target,
            v.verified.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
            match v.result {
                CheckOutcome::Pass => "OK",
                CheckOutcome::Fail => "PROBLEMS",
                CheckOutcome::Error => "COULD NOT RUN",
            },
            v.coverage_30d * 100.0,
            v.coverage_90d * 100.0,
            v.last_complete_read
                .map(|t| t.with_timezone(&Local).format("%Y-%m-%d").to_string())
                .unwrap_or_else(|| "never".into()),
            if v.open_findings > 0 {
                let n = v.open_findings as u64;
                format!(
                    "; {} open (`firesafe verify` lists {})",
                    firesafe::plan::words::count_s(n, "finding"),
                    firesafe::plan::words::noun(n, "it", "them")
                )
            } else {
                String::new()
            }
        );
    }
}

/// A source's verdict, where its copies are and how old, and the reasons for the verdict.
fn print_source(src: &SourceStatus, now: DateTime<Utc>) {
    let e = &src.evaluation;
    println!(
        "  {}: {} ({}, {} media, {} offsite)",
        src.source,
        src.shown_verdict(),
        match e.copies {
            1 => "1 copy".to_string(),
            n => format!("{n} copies"),
        },
        e.media,
        e.offsite
    );
    // Columns as wide as the longest name and medium, so that long target names stay in line.
    let name_width = src
        .copies
        .iter()
        .map(|c| copy_name(c).chars().count())
        .max()
        .unwrap_or(0)
        .max(12);
    let medium_width = src
        .copies
        .iter()
        .map(|c| c.medium.chars().count())
        .max()
        .unwrap_or(0)
        .max(16);
    if let Some(n) = &src.suspect {
        println!(
            "    ! snapshot {} taken {}{}{}",
            n.snapshot,
            n.taken.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
            if n.confirmed {
                " is a confirmed attack"
            } else {
                " is suspect"
            },
            if n.headline.is_empty() {
                String::new()
            } else {
                format!(": {}", printable(&n.headline))
            }
        );
        println!("    ! {}", n.advice);
    }
    for c in &src.copies {
        let what = match (&c.snapshot, c.taken) {
            (Some(id), Some(t)) => format!(
                "snapshot {id}, taken {} ({} ago)",
                t.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
                describe_age(now - t)
            ),
            (Some(id), None) if c.missing.is_some() => {
                format!("snapshot {id}, NOT COUNTED: data missing on this copy")
            }
            _ if c.error.is_some() => "not read (see below)".to_string(),
            _ => "no complete snapshot".to_string(),
        };
        println!(
            "    {:<name_width$} {:<8} {:<medium_width$} {what}{}",
            copy_name(c),
            match c.location {
                Site::Onsite => "onsite",
                Site::Offsite => "offsite",
            },
            c.medium,
            if c.as_recorded {
                " (as recorded when the disk was last written)"
            } else {
                ""
            }
        );
    }
    for r in &e.reasons {
        println!("    - {r}");
    }
}

/// How `status` names a copy: the target, and for a disk pool the disk.
fn copy_name(c: &TargetCopy) -> String {
    match &c.disk {
        Some(d) => format!("{}/{d}", c.target),
        None => c.target.clone(),
    }
}

pub(super) async fn summary_cmd(a: SummaryArgs) -> Result<Outcome> {
    let config = a.config.load()?;
    let schedule = config.schedule(&a.schedule)?;
    let state = a.state.open(Some(&a.config))?;
    let summary =
        firesafe::schedule::summary::summary(&config, schedule, &state, Utc::now()).await?;
    println!("Subject: {}\n\n{}", summary.subject, summary.body);
    if a.send {
        firesafe::schedule::summary::send(schedule, &summary).await?;
        println!("sent to {}", schedule.alerts.email_to.join(", "));
    }
    Ok(Outcome::Success)
}
