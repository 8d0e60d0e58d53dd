//! The checks of the first page, one per question a governor may ask ("Was a restore
//! tested?"). Each is a traffic light with a one-line headline and a sentence of detail, judged
//! only from the facts: where there is no record the answer is red or amber, never assumed well;
//! runs, drills and verifications are counted against what the schedules made due, not only
//! against what was recorded; and every ATTENTION and ACTION NEEDED says who should do what.
//! This file answers the first three (copies, backups, runs); `proof.rs` the other three;
//! `summary.rs` asks them in order.

use chrono::Duration;

use crate::paper::doc::Light;
use crate::paper::report::expected::{self, streak_words};
use crate::paper::report::facts::ReportData;
use crate::paper::report::share::{Share, shares};
use crate::paper::report::words::{Clock, list};
use crate::plan::policy::{Verdict, describe_age};
use crate::store::state::{RunOutcome, RunRecord};

/// A traffic light with its headline and detail.
pub(super) struct Check {
    pub(super) light: Light,
    pub(super) headline: String,
    pub(super) detail: String,
}

pub(super) fn check_copies(d: &ReportData) -> Check {
    if let Some(s) = d.schedules.iter().find(|s| s.status.is_err()) {
        return Check {
            light: Light::Red,
            headline: "The backup copies could not be checked.".into(),
            detail: format!(
                "Schedule {}: {} The technician should find out why the copies cannot be read and fix it.",
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
    let counted = counted_words(&all);
    if bad.is_empty() {
        return Check {
            light: Light::Green,
            headline: format!("Every share meets the school's rule of {rule}."),
            detail: format!(
                "Counted on {} by reading every copy, not the settings: {counted}",
                Clock { tz: d.timezone }.time(d.generated)
            ),
        };
    }
    let violated = bad.iter().any(|s| {
        s.status()
            .is_none_or(|x| x.evaluation.verdict == Verdict::Violated)
    });
    let names: Vec<&str> = bad.iter().map(|s| s.name).collect();
    let problems: Vec<String> = d
        .schedules
        .iter()
        .filter_map(|s| s.status.as_ref().ok())
        .flat_map(crate::paper::report::trouble::sentences)
        .map(|(_, t)| t)
        .collect();
    let why = match problems.len() {
        0 => format!(
            "The technician should bring the missing or old copies up to date (firesafe run {}) and find out why they fell behind.",
            d.schedules[0].name
        ),
        1 => problems[0].clone(),
        2 => format!(
            "{} (1 more problem is listed under Incidents and open risks.)",
            problems[0]
        ),
        n => format!(
            "{} ({} more problems are listed under Incidents and open risks.)",
            problems[0],
            n - 1
        ),
    };
    Check {
        light: if violated { Light::Red } else { Light::Amber },
        headline: format!(
            "{} of {} shares do not meet the rule of {rule}: {}.",
            bad.len(),
            all.len(),
            list(&names)
        ),
        detail: format!("Counted now: {counted} {why}"),
    }
}

/// What was counted for each share, shares counted alike said once: "curriculum, admin and
/// staff: 3 copies (the live share on the file server, which the policy counts as a copy; nas,
/// on site; offsite, off site), on 2 kinds of storage, 1 away from the school."
fn counted_words(all: &[Share]) -> String {
    let mut groups: Vec<(Vec<&str>, String)> = Vec::new();
    for s in all {
        let Some(w) = s.counted() else { continue };
        match groups.iter_mut().find(|(_, g)| *g == w) {
            Some((names, _)) => names.push(s.name),
            None => groups.push((vec![s.name], w)),
        }
    }
    groups
        .iter()
        .map(|(names, w)| format!("{}: {w}.", list(names)))
        .collect::<Vec<_>>()
        .join(" ")
}

pub(super) fn check_newest(d: &ReportData, c: &Clock) -> Check {
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
    let who = format!(
        "The technician should run the backup now (firesafe run {}) and find out why it stopped.",
        d.schedules[0].name
    );
    if !never.is_empty() {
        Check {
            light: Light::Red,
            headline: format!("No backup copy of {} was found.", list(&never)),
            detail: format!("Every target was read; none holds a complete backup of it. {who}"),
        }
    } else if !late.is_empty() {
        Check {
            light: Light::Red,
            headline: "Some shares have not been backed up recently.".into(),
            detail: format!("{}. {who}", late.join("; ")),
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

/// The backup runs against what the schedules' cron times made due: missed runs, the longest
/// run of them, and whether firesafe's records cover the whole period.
pub(super) fn check_runs(d: &ReportData, c: &Clock) -> Check {
    let runs: Vec<&RunRecord> = d.schedules.iter().flat_map(|s| &s.runs).collect();
    let count = |o: RunOutcome| runs.iter().filter(|r| r.outcome == o).count();
    let (complete, degraded, failed) = (
        count(RunOutcome::Complete),
        count(RunOutcome::Degraded),
        count(RunOutcome::Failed),
    );
    let other = runs.len() - complete - degraded - failed;
    let period = format!("between {} and {}", c.day(d.from), c.day(d.to));
    let exp = expected::all(d);
    let many = exp.len() > 1;
    let begins: Vec<String> = exp
        .iter()
        .filter_map(|(s, e)| e.counted_from(s, c, many))
        .collect();
    let begins = begins.join(" ");
    let mut who = format!(
        "The technician should check that the firesafe service is running (systemctl status firesafe) and that the server is on at {}.",
        if many { "the scheduled times" } else { "night" }
    );
    if runs.is_empty() {
        return Check {
            light: Light::Red,
            headline: format!("No backup run was recorded {period}."),
            detail: format!("{begins} {who}").trim().into(),
        };
    }
    let missed: Vec<String> = exp
        .iter()
        .filter(|(_, e)| e.runs.missed > 0)
        .map(|(s, e)| {
            format!(
                "{} of {} {} runs {} missed{}",
                e.runs.missed,
                e.runs.due,
                s.name,
                if e.runs.missed == 1 { "was" } else { "were" },
                streak_words(&e.runs, c)
            )
        })
        .collect();
    let known = exp
        .iter()
        .map(|(_, e)| e.known_start())
        .min()
        .unwrap_or(d.from);
    let due_period = if c.day(known) == c.day(d.to) {
        format!("on {}", c.day(known))
    } else {
        format!("between {} and {}", c.day(known), c.day(d.to))
    };
    let due: usize = exp.iter().map(|(_, e)| e.runs.due).sum();
    let open_gap = exp
        .iter()
        .any(|(_, e)| e.gaps.iter().any(|g| g.ended_by.is_none()));
    let long_streak = exp.iter().any(|(_, e)| {
        e.runs.longest_streak.is_some_and(|s| s.count >= 3) || e.runs.missed * 10 > e.runs.due
    });
    let none = |n: usize| {
        if n == 0 {
            "none".to_string()
        } else {
            n.to_string()
        }
    };
    let recorded = format!(
        "Recorded: {}, {complete} complete; left a copy out of date: {}; failed: {}{}.",
        crate::plan::words::count_s(runs.len() as u64, "run"),
        none(degraded),
        none(failed),
        if other > 0 {
            format!("; interrupted: {other}")
        } else {
            String::new()
        }
    );
    let names: Vec<&str> = exp.iter().map(|(s, _)| s.name.as_str()).collect();
    let headline = if !missed.is_empty() {
        format!("{}.", missed.join("; "))
    } else if due == 0 {
        format!("No {} run was due {due_period}.", list(&names))
    } else if due == 1 {
        format!(
            "The one {} run due {due_period} was done and complete.",
            list(&names)
        )
    } else {
        format!(
            "All {due} {} runs due {due_period} were done and complete.",
            list(&names)
        )
    };
    let light = if complete == 0 || open_gap || long_streak {
        Light::Red
    } else if !missed.is_empty() || !begins.is_empty() {
        Light::Amber
    } else {
        Light::Green
    };
    // Runs that took place but were not complete: the service ran, and what went wrong is in
    // the risks (a copy not mounted, a target down), not a stopped service.
    let incomplete = runs.len() - complete;
    if incomplete > 0 && runs.len() >= due {
        who = format!(
            "The runs took place, but {incomplete} of them {} not complete: the technician should read why under Incidents and open risks, fix it and run the backup again (firesafe run {}).",
            if incomplete == 1 { "was" } else { "were" },
            d.schedules[0].name
        );
    } else if incomplete > 0 {
        who = format!(
            "{who} Of the runs that took place, {incomplete} {} not complete: why is under Incidents and open risks.",
            if incomplete == 1 { "was" } else { "were" }
        );
    }
    let who = match light {
        Light::Green => String::new(),
        _ if missed.is_empty() && complete > 0 => {
            "Governors should read the report as covering only that time.".into()
        }
        _ if !open_gap && !missed.is_empty() => format!(
            "The backups have since caught up. The technician should find out why runs were missed, and make sure a stopped service is noticed (firesafe status {}; alerts in the schedule's [alerts]).",
            d.schedules[0].name
        ),
        _ => who,
    };
    Check {
        light,
        headline,
        detail: [begins, recorded, who]
            .into_iter()
            .filter(|x| !x.is_empty())
            .collect::<Vec<_>>()
            .join(" "),
    }
}
