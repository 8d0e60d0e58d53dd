//! The "Incidents and risks" section: every incident of the period and every risk open now, each
//! one plain sentence with its light, the most serious first.
//!
//! An incident is open until later evidence resolves it: a complete run resolves runs that
//! failed or left a copy out of date (the one run brings every target up to date), a passing
//! drill of the share resolves a failed drill, a passing verification of the target (which
//! includes a repair) resolves a failed or broken one, a completion ends a gap, and a
//! technician's decision resolves a suspect snapshot (`ransomware.rs`). A resolved
//! incident is listed as OK with the date and "Nothing to do."; an open one says who should do
//! what. Governors read plain words: the error messages stay in the technician's appendix.

use chrono::{DateTime, Utc};

use crate::paper::doc::{Block, Light};
use crate::paper::report::expected::Expected;
use crate::paper::report::facts::{ReportData, ScheduleData};
use crate::paper::report::share::Share;
use crate::paper::report::words::{Clock, describe_seconds};
use crate::plan::due::Due;
use crate::plan::policy::describe_age;
use crate::store::records::{CheckOutcome, DrillKind};
use crate::store::state::RunOutcome;

/// The section: its heading, a line saying how many items, and the items.
pub(super) fn section(b: &mut Vec<Block>, d: &ReportData, c: &Clock) {
    b.push(Block::Heading("Incidents and open risks".into()));
    let r = risks(d, c);
    if r.is_empty() {
        b.push(Block::Para(
            "No incident was recorded in this period, and no risk is open.".into(),
        ));
    } else {
        let open = r.iter().filter(|(l, _)| *l != Light::Green).count();
        b.push(Block::Para(format!(
            "{open} open, {} resolved, the most serious first. Each open item says who should do what, and should be resolved or accepted by the governors. The error messages behind them are in the technician's appendix.",
            r.len() - open
        )));
        b.push(Block::Bullets(
            r.into_iter().map(|(l, t)| (Some(l), t)).collect(),
        ));
    }
}

/// The incidents and open risks, each in one plain sentence, worst first.
fn risks(d: &ReportData, c: &Clock) -> Vec<(Light, String)> {
    let mut out = Vec::new();
    let period = format!("between {} and {}", c.day(d.from), c.day(d.to));
    for s in &d.schedules {
        if s.status.is_err() {
            out.push((
                Light::Red,
                format!(
                    "The copies of schedule {} could not be checked (the reason is in the appendix). The technician should find out why and fix it.",
                    s.name
                ),
            ));
        }
        let e = Expected::of(d, s);
        gap_risks(&mut out, s, &e, c);
        run_risks(&mut out, s, c);
        status_risks(&mut out, s);
        missed_risks(&mut out, s, e.drills.as_ref(), "restore drill", "drill", c);
        missed_risks(
            &mut out,
            s,
            e.verifies.as_ref(),
            "verification",
            "verify",
            c,
        );
        verify_risks(&mut out, s, c, &period);
        drill_risks(&mut out, s, c, &period);
        crate::paper::report::ransomware::incident_risks(&mut out, s, c);
    }
    out.sort_by_key(|r| std::cmp::Reverse(r.0));
    out
}

/// Bad events in a row, and the good event that ended them (`None` while they last).
type Episode = (Vec<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Runs of consecutive bad events, each with the first good event after it (which resolved it).
fn episodes(bad: &[DateTime<Utc>], good: &[DateTime<Utc>]) -> Vec<Episode> {
    let mut bad = bad.to_vec();
    bad.sort_unstable();
    let mut out: Vec<Episode> = Vec::new();
    for t in bad {
        let ended = |e: &Episode| e.1.is_some_and(|g| g < t);
        match out.last_mut() {
            Some(e) if !ended(e) => e.0.push(t),
            _ => out.push((vec![t], None)),
        }
        let last = out.last_mut().expect("pushed");
        last.1 = good.iter().filter(|g| **g > t).min().copied();
    }
    out
}

/// "on 12 November", "on 10 November and 11 November", "on 5 days from 10 to 14 November".
fn on_days(times: &[DateTime<Utc>], c: &Clock) -> String {
    let mut days: Vec<String> = Vec::new();
    for t in times {
        let d = c.day_month(*t);
        if !days.contains(&d) {
            days.push(d);
        }
    }
    match days.len() {
        0 => String::new(),
        1..=3 => format!(
            "on {}",
            crate::paper::report::words::list(&days.iter().map(String::as_str).collect::<Vec<_>>())
        ),
        n => format!("on {n} days from {} to {}", days[0], days[n - 1]),
    }
}

/// Stretches longer than the policy allows without a complete backup.
fn gap_risks(out: &mut Vec<(Light, String)>, s: &ScheduleData, e: &Expected, c: &Clock) {
    for g in &e.gaps {
        match g.ended_by {
            Some(end) => out.push((
                Light::Green,
                format!(
                    "No complete {} backup was made for {}, from {} to {} (the policy allows {} hours). Resolved on {}, when a complete backup was made. Nothing to do.",
                    s.name,
                    describe_age(g.length()),
                    c.day_month(g.from),
                    c.day_month(g.to),
                    s.max_age_hours,
                    c.day(end)
                ),
            )),
            None => out.push((
                Light::Red,
                format!(
                    "No complete {} backup has been made since {} ({}; the policy allows {} hours). The technician should find out why today (systemctl status firesafe) and run the backup (firesafe run {}).",
                    s.name,
                    c.time(g.from),
                    describe_age(g.length()),
                    s.max_age_hours,
                    s.name
                ),
            )),
        }
    }
}

/// What a run that was not complete was about: the targets and shares its message names, or
/// the whole run.
fn run_subjects(s: &ScheduleData, message: &str) -> Vec<String> {
    let named: Vec<String> = message
        .split("; ")
        .filter_map(|item| item.split_once(':').map(|(n, _)| n.trim()))
        .filter(|n| s.targets.iter().any(|t| t.name == *n) || s.sources.iter().any(|x| x == n))
        .map(str::to_string)
        .collect();
    if named.is_empty() {
        vec![String::new()]
    } else {
        named
    }
}

/// Runs that were not complete, grouped by what they left out of date, each group resolved by
/// the next complete run.
fn run_risks(out: &mut Vec<(Light, String)>, s: &ScheduleData, c: &Clock) {
    // What went wrong and with what (a target, a share, or "" for the whole run), and when.
    type Group = ((RunOutcome, String), Vec<DateTime<Utc>>);
    let mut groups: Vec<Group> = Vec::new();
    for r in s.runs.iter().filter(|r| r.outcome != RunOutcome::Complete) {
        for subject in run_subjects(s, &r.message) {
            let key = (r.outcome, subject);
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, v)) => v.push(r.started),
                None => groups.push((key, vec![r.started])),
            }
        }
    }
    let name = &s.name;
    for ((outcome, subject), times) in groups {
        for (when, ended) in episodes(&times, &s.evidence.complete_runs) {
            let days = on_days(&when, c);
            let what = if s.targets.iter().any(|t| t.name == subject) {
                format!("The {subject} copy could not be updated {days}")
            } else if !subject.is_empty() {
                format!("The backup of the {subject} share was incomplete {days}")
            } else {
                match outcome {
                    RunOutcome::Failed => format!("The {name} backup failed {days}"),
                    RunOutcome::Interrupted => format!("The {name} backup was interrupted {days}"),
                    _ => format!("The {name} backup left a copy out of date {days}"),
                }
            };
            out.push(match ended {
                Some(t) => (
                    Light::Green,
                    format!("{what}; a complete backup followed on {}. Nothing to do.", c.day(t)),
                ),
                None => (
                    if outcome == RunOutcome::Failed {
                        Light::Red
                    } else {
                        Light::Amber
                    },
                    format!("{what}, and no complete backup has followed. The technician should read why in the appendix (Runs), fix it and run the backup again (firesafe run {name})."),
                ),
            });
        }
    }
}

/// What the 3-2-1 status says is amiss now, and the disk rotation's warnings.
fn status_risks(out: &mut Vec<(Light, String)>, s: &ScheduleData) {
    let Ok(st) = &s.status else {
        return;
    };
    out.extend(crate::paper::report::trouble::sentences(st));
    for p in &st.media {
        if let Some(w) = &p.warning {
            out.push((
                Light::Amber,
                format!(
                    "Disk rotation ({}): {w}. Whoever rotates the disks should swap them as planned.",
                    p.target
                ),
            ));
        }
    }
}

/// Scheduled drills or verifications that did not happen: the longest run of them, resolved
/// when one ran again.
fn missed_risks(
    out: &mut Vec<(Light, String)>,
    s: &ScheduleData,
    due: Option<&Due>,
    what: &str,
    command: &str,
    c: &Clock,
) {
    let Some(streak) = due.and_then(|x| x.longest_streak) else {
        return;
    };
    let missed = due.map_or(0, |x| x.missed);
    let when = if streak.count == 1 {
        format!(
            "A scheduled {what} of {} was missed on {}",
            s.name,
            c.day_month(streak.first)
        )
    } else {
        format!(
            "{} scheduled {what}s of {} were missed in a row, from {} to {}",
            streak.count,
            s.name,
            c.day_month(streak.first),
            c.day_month(streak.last)
        )
    };
    let others = if missed > streak.count {
        format!(" ({missed} missed in all)")
    } else {
        String::new()
    };
    out.push(match streak.ended_by {
        Some(t) => (
            Light::Green,
            format!("{when}{others}; one ran again on {}. Nothing to do.", c.day(t)),
        ),
        None => (
            Light::Amber,
            format!(
                "{when}{others}, and none has run since. The technician should check that they run at their times (firesafe status {0}) and run one now (firesafe {command} {0}).",
                s.name
            ),
        ),
    });
}

/// Verifications that failed or could not run, each resolved by a later passing one of the
/// target; then targets not (fully) read back.
fn verify_risks(out: &mut Vec<(Light, String)>, s: &ScheduleData, c: &Clock, period: &str) {
    for t in &s.targets {
        let passed: Vec<DateTime<Utc>> = s
            .evidence
            .passed_verifies
            .iter()
            .filter(|(n, _)| *n == t.name)
            .map(|(_, at)| *at)
            .collect();
        for result in [CheckOutcome::Fail, CheckOutcome::Error] {
            let bad: Vec<DateTime<Utc>> = s
                .verifies
                .iter()
                .filter(|v| v.target == t.name && v.result == result)
                .map(|v| v.started)
                .collect();
            for (when, ended) in episodes(&bad, &passed) {
                let what = match result {
                    CheckOutcome::Fail => format!(
                        "Checking {} found damage that was not repaired {}",
                        t.name,
                        on_days(&when, c)
                    ),
                    _ => format!("Checking {} could not run {}", t.name, on_days(&when, c)),
                };
                out.push(match ended {
                    Some(at) => (
                        Light::Green,
                        format!("{what}; a later check on {} found it sound. Nothing to do.", c.day(at)),
                    ),
                    None => (
                        if result == CheckOutcome::Fail { Light::Red } else { Light::Amber },
                        format!("{what}, and no check has passed since. The technician should see the appendix (Verifications) for what is affected or why, repair it from a good copy or fix the cause, and check again (firesafe verify {}).", s.name),
                    ),
                });
            }
        }
    }
    for (t, v) in s.latest_verifies() {
        match v {
            None => out.push((
                Light::Amber,
                format!(
                    "The data on {} was not read back {period}. The technician should run verification (firesafe verify {}).",
                    t.name, s.name
                ),
            )),
            Some(v) if v.coverage_90d < 0.999 => out.push((
                Light::Amber,
                format!(
                    "Only {:.0}% of the data on {} was read back in the 90 days to {}. The technician should let verification continue, or raise [verify] read_percent.",
                    v.coverage_90d * 100.0,
                    t.name,
                    c.day(v.finished)
                ),
            )),
            Some(_) => {}
        }
    }
}

/// Per share: no drill, failed drills (resolved by a later pass), and a recovery slower than
/// the target, marked measured or estimated.
fn drill_risks(out: &mut Vec<(Light, String)>, s: &ScheduleData, c: &Clock, period: &str) {
    for name in &s.sources {
        let share = Share { schedule: s, name };
        let drills = share.drills();
        if drills.is_empty() {
            out.push((
                Light::Red,
                format!(
                    "No restore drill of {name} was recorded {period}. The technician should run one (firesafe drill {}).",
                    s.name
                ),
            ));
        }
        let failed: Vec<DateTime<Utc>> = drills
            .iter()
            .filter(|x| x.result != CheckOutcome::Pass)
            .map(|x| x.started)
            .collect();
        let passed: Vec<DateTime<Utc>> = s
            .evidence
            .passed_drills
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, t)| *t)
            .collect();
        for (when, ended) in episodes(&failed, &passed) {
            let what = format!("The restore drill of {name} failed {}", on_days(&when, c));
            out.push(match ended {
                Some(t) => (
                    Light::Green,
                    format!("{what}; a later drill on {} passed. Nothing to do.", c.day(t)),
                ),
                None => (
                    Light::Red,
                    format!("{what}: restored files were not what was backed up, and no drill has passed since. The technician should find out why (the appendix lists the drill) and repeat it (firesafe drill {}).", s.name),
                ),
            });
        }
        if let Some(r) = share.recovery()
            && let Some(h) = s.rto_hours.or(r.rto_hours)
            && r.estimated_recovery_seconds > h * 3600.0
        {
            let measured = r.kind != DrillKind::Sample;
            let who = if measured {
                "The technician should propose how to restore it faster, or the governors should accept a longer target.".to_string()
            } else {
                format!(
                    "The technician should run a full drill to measure it (firesafe drill {} --full).",
                    s.name
                )
            };
            out.push((
                if measured { Light::Red } else { Light::Amber },
                format!(
                    "Restoring {name} would take about {} ({}), longer than the target of {h} hours. {who}",
                    describe_seconds(r.estimated_recovery_seconds),
                    if measured {
                        "measured by a full drill"
                    } else {
                        "estimated from a sample, not measured"
                    },
                ),
            ));
        }
    }
}
