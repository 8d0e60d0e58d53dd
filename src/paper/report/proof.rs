//! The three checks of the first page that ask for proof that the backups work: was a restore
//! tested, how long would recovery take, were the stored copies read back. Drills and
//! verifications are counted against the schedule's `[drill]` and `[verify]` times; a recovery
//! time is *measured* only by a full drill, and one estimated from a sample never gets the light
//! of a measured one.

use crate::paper::doc::Light;
use crate::paper::report::checks::Check;
use crate::paper::report::expected::{self, streak_words};
use crate::paper::report::facts::{ReportData, ScheduleData, TargetInfo};
use crate::paper::report::share::{Share, shares};
use crate::paper::report::words::{Clock, describe_seconds, list};
use crate::plan::due::Due;
use crate::plan::words::count_s;
use crate::store::records::{CheckOutcome, DrillKind, VerifyRecord};

/// Makes a check at least ATTENTION when what was due was not all done, or when the records
/// begin after the period starts, and says so (`what` is "restore drills", "verifications").
fn against_due(
    mut k: Check,
    d: &ReportData,
    c: &Clock,
    what: &str,
    due: fn(&expected::Expected) -> Option<&Due>,
    who: &str,
) -> Check {
    let exp = expected::all(d);
    let many = exp.len() > 1;
    let mut said = Vec::new();
    for (s, e) in &exp {
        if let Some(b) = e.counted_from(s, c, many) {
            said.push(b);
        }
        if let Some(x) = due(e).filter(|x| x.missed > 0) {
            said.push(format!(
                "{} of {} scheduled {what}{} were done; {} missed{}.",
                x.done,
                x.due,
                if many {
                    format!(" of {}", s.name)
                } else {
                    String::new()
                },
                expected::was_were(x.missed),
                streak_words(x, c)
            ));
        }
    }
    if said.is_empty() {
        return k;
    }
    let missed = exp
        .iter()
        .any(|(_, e)| due(e).is_some_and(|x| x.missed > 0));
    let who = if missed {
        who.to_string()
    } else {
        "Governors should read the report as covering only that time.".into()
    };
    if k.light == Light::Green {
        let first = said.remove(0);
        k.detail = format!("{} {} {}", said.join(" "), k.headline, who)
            .trim()
            .to_string();
        k.headline = first;
        k.light = Light::Amber;
    } else {
        k.detail = format!("{} {}", k.detail, said.join(" "));
    }
    k
}

pub(super) fn check_drills(d: &ReportData, c: &Clock) -> Check {
    let name = &d.schedules[0].name;
    let k = drills_recorded(d, c);
    against_due(
        k,
        d,
        c,
        "restore drills",
        |e| e.drills.as_ref(),
        &format!(
            "The technician should check that the drills run at their times (firesafe status {name}) and run one now (firesafe drill {name})."
        ),
    )
}

fn drills_recorded(d: &ReportData, c: &Clock) -> Check {
    let all = shares(d);
    let name = &d.schedules[0].name;
    let period = format!("between {} and {}", c.day(d.from), c.day(d.to));
    let drilled: Vec<&Share> = all.iter().filter(|s| !s.drills().is_empty()).collect();
    if drilled.is_empty() {
        return Check {
            light: Light::Red,
            headline: format!("No restore drill was recorded {period}."),
            detail: format!(
                "Nothing shows that the backups can be restored. The technician should run a restore drill (firesafe drill {name})."
            ),
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
    let count = count_s(
        drilled.iter().map(|s| s.drills().len() as u64).sum(),
        "restore drill",
    );
    if !failed.is_empty() {
        Check {
            light: Light::Red,
            headline: format!("The latest restore drill of {} failed.", list(&failed)),
            detail: "Some restored files were not what was backed up. The technician should find out why (the appendix lists the files) and repeat the drill; see the risks below.".into(),
        }
    } else if !missing.is_empty() {
        Check {
            light: Light::Amber,
            headline: format!(
                "No restore drill of {} was recorded {period}.",
                list(&missing)
            ),
            detail: format!(
                "{count} of the other shares passed. The technician should run a drill of every share (firesafe drill {name})."
            ),
        }
    } else {
        Check {
            light: Light::Green,
            headline: "A restore of every share was tested and passed.".into(),
            detail: format!(
                "{count} {period}; the latest on {}.",
                latest.map_or(String::new(), |t| c.time(t))
            ),
        }
    }
}

/// The slowest share's recovery time, marked measured (a full drill) or estimated (from a
/// sample); an estimate is never OK, and never as red as a measurement.
pub(super) fn check_recovery(d: &ReportData) -> Check {
    let all = shares(d);
    let name = &d.schedules[0].name;
    let full = format!(
        "The technician should run a full drill (firesafe drill {name} --full) to measure it."
    );
    let mut unmeasured = Vec::new();
    // (share, seconds, target, measured by a full drill)
    let mut known: Vec<(&str, f64, Option<f64>, bool)> = Vec::new();
    for s in &all {
        match s.recovery() {
            None => unmeasured.push(s.name),
            Some(r) => known.push((
                s.name,
                r.estimated_recovery_seconds,
                s.schedule.rto_hours.or(r.rto_hours),
                r.kind != DrillKind::Sample,
            )),
        }
    }
    let over = |measured: bool| -> Vec<String> {
        known
            .iter()
            .filter(|k| k.3 == measured && k.2.is_some_and(|h| k.1 > h * 3600.0))
            .map(|k| {
                format!(
                    "{} would take about {} ({}; target: {} hours)",
                    k.0,
                    describe_seconds(k.1),
                    if measured { "measured" } else { "estimated" },
                    k.2.unwrap_or_default()
                )
            })
            .collect()
    };
    let measured_over = over(true);
    if !measured_over.is_empty() {
        return Check {
            light: Light::Red,
            headline: "Recovery would take longer than the target.".into(),
            detail: format!(
                "{}. The technician should propose a faster way to restore, or the governors accept a longer target.",
                measured_over.join("; ")
            ),
        };
    }
    if known.is_empty() {
        return Check {
            light: Light::Amber,
            headline: "The recovery time was not measured.".into(),
            detail: format!(
                "Only a restore drill can measure it, and none was recorded in this period. {full}"
            ),
        };
    }
    let slowest = known
        .iter()
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .expect("one share known");
    let longest = format!(
        "The slowest share ({}) would take about {} to restore, {} ({}).",
        slowest.0,
        describe_seconds(slowest.1),
        if slowest.3 {
            "measured by a full restore drill"
        } else {
            "estimated from a sample of files, not measured"
        },
        slowest
            .2
            .map_or("no target set".into(), |h| format!("target: {h} hours"))
    );
    let estimated: Vec<&str> = known.iter().filter(|k| !k.3).map(|k| k.0).collect();
    let estimated_over = over(false);
    let amber = |headline: String, detail: String| Check {
        light: Light::Amber,
        headline,
        detail,
    };
    if !estimated_over.is_empty() {
        amber(
            "Recovery may take longer than the target (estimated, not measured).".into(),
            format!("{}. {full}", estimated_over.join("; ")),
        )
    } else if !unmeasured.is_empty() {
        amber(
            format!(
                "The recovery time of {} was not measured.",
                list(&unmeasured)
            ),
            format!("{longest} {full}"),
        )
    } else if !estimated.is_empty() {
        amber(
            format!(
                "The recovery time of {} is only an estimate from a sample drill.",
                list(&estimated)
            ),
            format!("{longest} {full}"),
        )
    } else if known.iter().any(|k| k.2.is_none()) {
        amber(
            "No recovery time target is set, so it cannot be judged.".into(),
            format!(
                "{longest} The technician should set rto_hours in the schedule's [policy], with the governors' agreement."
            ),
        )
    } else {
        Check {
            light: Light::Green,
            headline: "Every share could be recovered within the target time, as measured by full restore drills.".into(),
            detail: longest,
        }
    }
}

pub(super) fn check_reads(d: &ReportData, c: &Clock) -> Check {
    let name = &d.schedules[0].name;
    let k = reads_recorded(d, c);
    against_due(
        k,
        d,
        c,
        "verifications",
        |e| e.verifies.as_ref(),
        &format!(
            "The technician should check that verification runs at its times (firesafe status {name}) and run it now (firesafe verify {name})."
        ),
    )
}

fn reads_recorded(d: &ReportData, c: &Clock) -> Check {
    let name = &d.schedules[0].name;
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
            detail: format!(
                "Without reading the data back, damage to a copy would go unnoticed. The technician should schedule verification ([verify] in the schedule) and run it (firesafe verify {name})."
            ),
        }
    } else if !failing.is_empty() {
        Check {
            light: Light::Red,
            headline: format!("The latest check of {} found damage or could not run.", list(&failing)),
            detail: "The technician should repair it from a good copy or fix what stopped the check; see the risks below for what is affected.".into(),
        }
    } else if !never.is_empty() {
        Check {
            light: Light::Amber,
            headline: format!("The data on {} was not read back {period}.", list(&never)),
            detail: format!(
                "The other copies were read back and found sound. The technician should run verification of every target (firesafe verify {name})."
            ),
        }
    } else if !partial.is_empty() {
        Check {
            light: Light::Amber,
            headline: "Not all of every copy was read back in the last 90 days.".into(),
            detail: format!(
                "Read back so far: {}. The technician should let verification continue, or raise [verify] read_percent.",
                partial.join(", ")
            ),
        }
    } else {
        Check {
            light: Light::Green,
            headline: "Every copy's data was read back and checked in the last 90 days.".into(),
            detail: "No damage was found.".into(),
        }
    }
}
