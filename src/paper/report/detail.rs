//! "Each share in detail": for every share, a table of what was measured in the period (backup
//! success rate, with the runs the schedule made due and were missed, the longest gap between complete backups, the newest copy, restore drills and
//! the recovery time), then a chart of its storage growth with a sentence summing it up.

use crate::paper::doc::{Block, Chart, Series, bytes};
use crate::paper::report::expected::{Expected, streak_words};
use crate::paper::report::facts::{GrowthPoint, ReportData, ScheduleData};
use crate::paper::report::share::Share;
use crate::paper::report::words::{Clock, describe_seconds};
use crate::plan::policy::describe_age;
use crate::store::records::{CheckOutcome, DrillKind};
use crate::store::state::{RunOutcome, RunRecord};

/// The section: its heading, then every share of every schedule.
pub(super) fn section(b: &mut Vec<Block>, d: &ReportData, c: &Clock) {
    b.push(Block::Heading("Each share in detail".into()));
    for sched in &d.schedules {
        for name in &sched.sources {
            share_detail(b, d, c, sched, name);
        }
    }
}

fn share_detail(b: &mut Vec<Block>, d: &ReportData, c: &Clock, s: &ScheduleData, name: &str) {
    let share = Share { schedule: s, name };
    b.push(Block::Subheading(format!("Share: {name}")));
    let [rate, gap, newest] = backups_measured(d, c, &share);
    let [drill_text, rto] = restores_measured(d, c, &share);
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
            vec!["Recovery time (RTO), measured or estimated".into(), rto],
        ],
    });
    growth(b, d, c, s, name);
}

/// The success rate of the schedule's runs, the longest gap between complete backups (the
/// RPO achieved) and the age of the newest copy now.
fn backups_measured(d: &ReportData, c: &Clock, share: &Share) -> [String; 3] {
    let s = share.schedule;
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
    let due = Expected::of(d, s).runs;
    let rate = if due.missed > 0 {
        format!(
            "{rate} By the schedule, {} of {} due runs were missed{}.",
            due.missed,
            due.due,
            streak_words(&due, c)
        )
    } else {
        rate
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
    [rate, gap, newest]
}

/// The share's restore drills in the period, and the recovery time the latest one measured.
fn restores_measured(d: &ReportData, c: &Clock, share: &Share) -> [String; 2] {
    let name = share.name;
    let drills = share.drills();
    let drill_text = if drills.is_empty() {
        format!(
            "No restore drill of {name} was recorded between {} and {}.",
            c.day(d.from),
            c.day(d.to)
        )
    } else {
        format!(
            "{}: {} passed, {} failed. Latest: {}.",
            crate::plan::words::count_s(drills.len() as u64, "drill"),
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
            "{} about {} for the whole share ({}) at {}/s, from the {} drill on {}{}.",
            if r.kind == DrillKind::Sample {
                "Estimated, not measured:"
            } else {
                "Measured:"
            },
            describe_seconds(r.estimated_recovery_seconds),
            bytes(r.share_bytes as f64),
            bytes(r.bytes_per_second),
            match r.kind {
                DrillKind::Sample => "sample",
                DrillKind::Full => "full",
                DrillKind::SiteLoss => "site-loss",
            },
            c.day(r.finished),
            match share.schedule.rto_hours.or(r.rto_hours) {
                Some(h) => format!("; target {h} hours"),
                None => "; no target set".into(),
            }
        ),
        None => "Not measured: no restore drill measured it in this period.".into(),
    };
    [drill_text, rto]
}

/// The chart of what the share's backups take and of the share's size over the period, and a
/// sentence with the first and last figures.
fn growth(b: &mut Vec<Block>, d: &ReportData, c: &Clock, s: &ScheduleData, name: &str) {
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
