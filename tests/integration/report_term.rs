//! The governors' report over a simulated autumn term, with the shipped schedule (nightly at
//! 02:00, verification at 04:30, a drill every Sunday at 06:00, Europe/London, so the clocks go
//! back inside the term): the history, drill and verification records of the term are written
//! straight into the state directory, and the report is built for a fixed period and "now".
//! A clean term is OK; a term with the nightly service dead for 30 nights and no drill for 8
//! weeks is ACTION NEEDED and ATTENTION with the counts and dates; a period that starts before
//! the first record says so on page 1. Page 1 (and the risks) read as in tests/snapshots/.

use std::path::Path;

use chrono::{DateTime, Datelike, Duration, TimeZone, Utc};
use chrono_tz::Europe::London;
use firesafe::store::records::{DrillKind, DrillRecord, VerifyRecord};
use firesafe::store::state::{RunOutcome, RunRecord, StateDir};

use crate::report::{assert_snapshot, example_with_site};
use crate::support::*;

/// Local midnight in London on a day of 2026.
fn day(m: u32, d: u32) -> DateTime<Utc> {
    London
        .with_ymd_and_hms(2026, m, d, 0, 0, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// A local time in London on a day of 2026.
fn at(m: u32, d: u32, h: u32, min: u32) -> DateTime<Utc> {
    London
        .with_ymd_and_hms(2026, m, d, h, min, 0)
        .unwrap()
        .with_timezone(&Utc)
}

/// Every day from 25 August to 30 November 2026, as (month, day).
fn days() -> Vec<(u32, u32)> {
    let mut out = Vec::new();
    let mut d = chrono::NaiveDate::from_ymd_opt(2026, 8, 25).unwrap();
    while d <= chrono::NaiveDate::from_ymd_opt(2026, 11, 30).unwrap() {
        out.push((d.month(), d.day()));
        d = d.succ_opt().unwrap();
    }
    out
}

fn run(m: u32, d: u32, outcome: RunOutcome, message: &str) -> RunRecord {
    let slot = at(m, d, 2, 0);
    RunRecord {
        schedule: "nightly".into(),
        scheduled_for: Some(slot),
        started: slot + Duration::seconds(5),
        finished: slot + Duration::minutes(20),
        outcome,
        message: message.into(),
        problems: vec![],
    }
}

fn drill(source: &str, kind: DrillKind, started: DateTime<Utc>) -> DrillRecord {
    DrillRecord {
        id: format!("{:016x}", rand::random::<u64>()),
        schedule: "nightly".into(),
        kind,
        source: source.into(),
        target: "offsite".into(),
        snapshot: "0".repeat(64),
        snapshot_taken: started - Duration::hours(4),
        started,
        finished: started + Duration::minutes(2),
        seed: None,
        files: 20,
        bytes: 4_000_000,
        restore_seconds: 2.0,
        bytes_per_second: 2_000_000.0,
        share_bytes: 2_400_000_000,
        estimated_recovery_seconds: 1_200.0,
        rto_hours: Some(8.0),
        mismatches: Vec::new(),
        changed_since: 0,
        live_identical: 20,
        key: "schedule key".into(),
        result: "pass".parse().unwrap(),
        reason: String::new(),
    }
}

fn verify(target: &str, started: DateTime<Utc>) -> VerifyRecord {
    VerifyRecord {
        schedule: "nightly".into(),
        target: target.into(),
        started,
        finished: started + Duration::minutes(3),
        structure_checked: true,
        packs_read: 3,
        bytes_read: 3_000_000,
        packs_total: 60,
        bytes_total: 60_000_000,
        coverage_30d: 1.0,
        coverage_90d: 1.0,
        last_complete_read: Some(started),
        compared: 60,
        findings: Vec::new(),
        result: "pass".parse().unwrap(),
        error: String::new(),
    }
}

/// Writes a term of records: every night a run and a verification of both targets, every
/// Sunday a sample drill of each share, and (when `full`) a full drill of each on 6 September;
/// except on the nights `dead` (the server was off: nothing at all), the Sundays in `no_drill`,
/// and the nights in `offsite_down` (the run could not reach the offsite copy).
fn write_term(
    state: &StateDir,
    dead: &[(u32, u32)],
    no_drill: &[(u32, u32)],
    offsite_down: &[(u32, u32)],
    full: bool,
) {
    for (m, d) in days() {
        if dead.contains(&(m, d)) {
            continue;
        }
        let r = if offsite_down.contains(&(m, d)) {
            run(
                m,
                d,
                RunOutcome::Degraded,
                "offsite: repository directory /mnt/offsite does not exist; check the path, and that the disk or share holding it is mounted",
            )
        } else {
            run(
                m,
                d,
                RunOutcome::Complete,
                "every source backed up to every target",
            )
        };
        state.record(&r).expect("record run");
        for t in ["nas", "offsite"] {
            state
                .append_verify(&verify(t, at(m, d, 4, 30)))
                .expect("verify");
        }
        let sunday = at(m, d, 6, 0).with_timezone(&London).weekday() == chrono::Weekday::Sun;
        if sunday && !no_drill.contains(&(m, d)) {
            for s in ["curriculum", "admin", "staff"] {
                state
                    .append_drill(&drill(s, DrillKind::Sample, at(m, d, 6, 0)))
                    .expect("drill");
            }
        }
        if full && (m, d) == (9, 6) {
            for s in ["curriculum", "admin", "staff"] {
                state
                    .append_drill(&drill(s, DrillKind::Full, at(m, d, 7, 0)))
                    .expect("drill");
            }
        }
    }
}

/// The report's text for the period, built as `firesafe report` builds it, asked on 1 December
/// 2026 at 09:00, or two minutes after now if that is later: the copies on the targets are made
/// when the test runs and must not look old, and the report's own time must never fall in the
/// same minute as theirs, or the redaction below would depend on the clock.
fn report(dir: &Path, state: &StateDir, from: DateTime<Utc>, to: DateTime<Utc>) -> String {
    let config = firesafe::config::Config::load(dir).expect("config");
    let now = at(12, 1, 9, 0).max(Utc::now() + Duration::minutes(2));
    let data = block_on(firesafe::paper::report::gather(
        &config,
        state,
        &firesafe::paper::report::ReportOptions {
            schedules: vec!["nightly".into()],
            from,
            to,
            now,
        },
    ))
    .expect("gather");
    let mut text = firesafe::paper::report::build(&data).text();
    // The copies on the targets are real, made when the test ran: their times are redacted.
    if let Ok(st) = &data.schedules[0].status {
        for c in st.sources.iter().flat_map(|s| &s.copies) {
            if let Some(t) = c.taken {
                let shown = t
                    .with_timezone(&London)
                    .format("%-d %b %Y %H:%M")
                    .to_string();
                text = text.replace(&shown, "(when the test ran)");
            }
        }
    }
    let shown = now
        .with_timezone(&London)
        .format("%-d %b %Y %H:%M")
        .to_string();
    let produced = now.with_timezone(&London).format("%-d %B %Y").to_string();
    text.replace(&shown, "(now)")
        .replace(&produced, "(today)")
        .replace(&dir.display().to_string(), "DIR")
}

/// Page 1 and the risks: everything before the detail of each share.
fn front(text: &str) -> &str {
    &text[..text
        .find("== Each share in detail ==")
        .expect("detail heading")]
}

/// One page-1 question's line and its answer, as text.
fn answer<'a>(text: &'a str, question: &str) -> &'a str {
    let at = text
        .find(question)
        .unwrap_or_else(|| panic!("{question}:\n{text}"));
    let start = text[..at].rfind('\n').map_or(0, |i| i + 1);
    let end = text[at..].find("\n[").map_or(text.len(), |i| at + i);
    &text[start..end]
}

fn term_period() -> (DateTime<Utc>, DateTime<Utc>) {
    (day(9, 1), day(11, 29) - Duration::seconds(1))
}

#[test]
fn a_clean_term_is_ok() {
    let dir = example_with_site();
    let state = StateDir::open(&dir.path().join("state")).expect("state");
    write_term(&state, &[], &[], &[], true);
    let (from, to) = term_period();
    let text = report(dir.path(), &state, from, to);
    let page1 = front(&text);
    for (q, want) in [
        (
            "[OK] Are there enough copies",
            "the live share on the file server, which the policy counts",
        ),
        (
            "[OK] Did the nightly backups work?",
            "All 89 nightly runs due between 1 September 2026 and 28 November 2026 were done and complete.",
        ),
        (
            "[OK] Was a restore tested?",
            "A restore of every share was tested and passed.",
        ),
        (
            "[OK] How long would recovery take?",
            "measured by a full restore drill",
        ),
        ("[OK] Were the stored copies checked?", ""),
        // The example's copies are folders the server writes to: the one point left.
        (
            "[ACTION NEEDED] Could ransomware or a break-in destroy every copy?",
            "Yes: the server could delete every copy.",
        ),
    ] {
        assert!(answer(page1, q).contains(want), "{q}: {want}\n{page1}");
    }
    assert!(
        page1.contains("[ACTION NEEDED] Overall: 1 point needs action."),
        "{page1}"
    );
    assert!(!page1.contains("records begin"), "{page1}");
    assert_snapshot("report_term_clean.txt", page1);
}

#[test]
fn a_dead_service_and_missing_drills_are_counted_against_the_schedule() {
    let dir = example_with_site();
    let state = StateDir::open(&dir.path().join("state")).expect("state");
    // The nightly service dead from 11 October to 9 November (30 nights, across the clock
    // change); the offsite copy unreachable on 15 September; no drill on the 8 Sundays from 4
    // October to 22 November (they resume on 29 November, after the period).
    let mut dead: Vec<(u32, u32)> = (11..=31).map(|d| (10, d)).collect();
    dead.extend((1..=9).map(|d| (11, d)));
    let no_drill = [
        (10, 4),
        (10, 11),
        (10, 18),
        (10, 25),
        (11, 1),
        (11, 8),
        (11, 15),
        (11, 22),
    ];
    write_term(&state, &dead, &no_drill, &[(9, 15)], true);
    let (from, to) = term_period();
    let text = report(dir.path(), &state, from, to);
    let page1 = front(&text);
    let runs = answer(page1, "Did the nightly backups work?");
    assert!(runs.starts_with("[ACTION NEEDED]"), "{runs}");
    assert!(
        runs.contains(
            "31 of 89 nightly runs were missed, 30 in a row from 11 October to 9 November."
        ),
        "{runs}"
    );
    assert!(runs.contains("The technician should"), "{runs}");
    let drills = answer(page1, "Was a restore tested?");
    assert!(drills.starts_with("[ATTENTION]"), "{drills}");
    assert!(
        drills.contains("4 of 12 scheduled restore drills were done; 8 were missed, 8 in a row from 4 October to 22 November."),
        "{drills}"
    );
    let risks = &page1[page1.find("== Incidents").expect("risks")..];
    for want in [
        "No complete nightly backup was made for 31 days, from 10 October to 10 November (the policy allows 26 hours). Resolved on 10 November 2026",
        "The offsite copy could not be updated on 15 September; a complete backup followed on 16 September 2026. Nothing to do.",
        "8 scheduled restore drills of nightly were missed in a row, from 4 October to 22 November; one ran again on 29 November 2026. Nothing to do.",
    ] {
        assert!(risks.contains(want), "the risks lack {want:?}:\n{risks}");
    }
    // Each share's detail counts the missed runs too.
    assert!(
        text.contains("By the schedule, 31 of 89 due runs were missed, 30 in a row from 11 October to 9 November."),
        "{text}"
    );
    // The technician's words stay in the appendix.
    assert!(!page1.contains("does not exist"), "{page1}");
    assert!(text.contains("/mnt/offsite does not exist"), "{text}");
    assert_snapshot("report_term_dead.txt", page1);
}

#[test]
fn a_period_before_the_first_record_says_so_on_page_one() {
    let dir = example_with_site();
    let state = StateDir::open(&dir.path().join("state")).expect("state");
    write_term(&state, &[], &[], &[], true);
    // The records begin on 25 August; the period starts on 1 August.
    let text = report(dir.path(), &state, day(8, 1), term_period().1);
    let page1 = front(&text);
    let first = &page1[..page1.find("-- The seven questions --").expect("questions")];
    assert!(
        first.contains(
            "firesafe's records begin on 25 August 2026: nothing before that date can be shown."
        ),
        "{first}"
    );
    for q in [
        "Did the nightly backups work?",
        "Was a restore tested?",
        "Were the stored copies checked?",
    ] {
        let a = answer(page1, q);
        assert!(!a.starts_with("[OK]"), "{a}");
        assert!(a.contains("The records begin on 25 August 2026."), "{a}");
    }
    assert_snapshot("report_term_late_records.txt", page1);
}

#[test]
fn a_recovery_time_from_samples_is_estimated_not_ok() {
    let dir = example_with_site();
    let state = StateDir::open(&dir.path().join("state")).expect("state");
    write_term(&state, &[], &[], &[], false);
    let (from, to) = term_period();
    let text = report(dir.path(), &state, from, to);
    let rto = answer(front(&text), "How long would recovery take?");
    assert!(rto.starts_with("[ATTENTION]"), "{rto}");
    assert!(
        rto.contains("is only an estimate from a sample drill")
            && rto.contains("estimated from a sample of files, not measured")
            && rto.contains("firesafe drill nightly --full"),
        "{rto}"
    );
    assert!(
        text.contains("Estimated, not measured: about 20 minutes"),
        "{text}"
    );
}
