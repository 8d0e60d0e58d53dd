//! The six checks of the first page, one per question a governor may ask ("Was a restore
//! tested?"). Each is a traffic light with a one-line headline and a sentence of detail, judged
//! only from the facts: where there is no record the answer is red or amber, never assumed well.

use chrono::Duration;

use crate::paper::doc::Light;
use crate::paper::report::facts::{ReportData, ScheduleData, TargetInfo};
use crate::paper::report::share::{Share, shares};
use crate::paper::report::words::{Clock, describe_seconds, list};
use crate::plan::policy::{Verdict, describe_age};
use crate::store::records::{CheckOutcome, VerifyRecord};
use crate::store::state::{RunOutcome, RunRecord};

/// A traffic light with its headline and detail.
pub(super) struct Check {
    pub(super) light: Light,
    pub(super) headline: String,
    pub(super) detail: String,
}

/// The six questions of the first page, in order, each with the check that answers it.
pub(super) fn questions(d: &ReportData, c: &Clock) -> [(&'static str, Check); 6] {
    [
        (
            "Are there enough copies, in enough places?",
            check_copies(d),
        ),
        ("Is every share backed up?", check_newest(d, c)),
        ("Did the nightly backups work?", check_runs(d, c)),
        ("Was a restore tested?", check_drills(d, c)),
        ("How long would recovery take?", check_recovery(d)),
        ("Were the stored copies checked?", check_reads(d, c)),
    ]
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
    let count = |o: RunOutcome| runs.iter().filter(|r| r.outcome == o).count();
    let (complete, degraded, failed) = (
        count(RunOutcome::Complete),
        count(RunOutcome::Degraded),
        count(RunOutcome::Failed),
    );
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

fn check_reads(d: &ReportData, c: &Clock) -> Check {
    let all: Vec<(&TargetInfo, Option<&VerifyRecord>)> = d
        .schedules
        .iter()
        .flat_map(ScheduleData::latest_verifies)
        .collect();
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
