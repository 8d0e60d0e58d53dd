//! The technician's appendix: every record the report is built from, schedule by schedule (the
//! policy, the targets as configured, the copies read now, and every run, drill and
//! verification of the period), so that each sentence of the report can be traced to a record.

use crate::config::Site;
use crate::paper::doc::{Block, bytes};
use crate::paper::report::facts::{ReportData, ScheduleData};
use crate::paper::report::words::{Clock, describe_seconds};
use crate::store::records::CheckOutcome;

/// The appendix: its heading and a part per schedule.
pub(super) fn section(b: &mut Vec<Block>, d: &ReportData, c: &Clock) {
    b.push(Block::Heading("Technician's appendix".into()));
    b.push(Block::Para(format!(
        "Every record from the state directory ({}) for {} to {} (times in {}), and the targets as configured.",
        d.state_dir,
        c.day(d.from),
        c.day(d.to),
        d.timezone
    )));
    for s in &d.schedules {
        b.push(Block::Subheading(format!(
            "Schedule {}: {}",
            s.name, s.description
        )));
        if let Ok(st) = &s.status {
            b.push(Block::Para(format!(
                "Policy: {} copies, {} media, {} offsite; newest copy at most {} hours old; the live share {}; recovery time target {}.",
                st.min_copies,
                st.min_media,
                st.min_offsite,
                st.max_age_hours,
                if st.live_data_counts { "counts as a copy" } else { "does not count as a copy" },
                s.rto_hours.map_or("not set".into(), |h| format!("{h} hours"))
            )));
        }
        b.push(targets(s));
        copies(b, s, c);
        runs(b, s, c);
        drills(b, s, c);
        verifies(b, s, c);
        crate::paper::report::ransomware::appendix(b, s, c);
        b.push(Block::Note(
            match (&s.storage.read_from, &s.storage.error) {
                (Some(t), _) => format!("Snapshot statistics were read from target {t}."),
                (None, Some(e)) => format!("Snapshot statistics could not be read: {e}."),
                _ => String::new(),
            },
        ));
    }
}

/// The schedule's targets as configured.
fn targets(s: &ScheduleData) -> Block {
    Block::Table {
        widths: vec![0.13, 0.11, 0.16, 0.35, 0.25],
        header: vec![
            "Target".into(),
            "Where".into(),
            "Medium".into(),
            "Location".into(),
            "Description".into(),
        ],
        rows: s
            .targets
            .iter()
            .map(|t| {
                vec![
                    t.name.clone(),
                    match t.location {
                        Site::Onsite => "on site".into(),
                        Site::Offsite => "off site".into(),
                    },
                    t.medium.clone(),
                    match &t.endpoint {
                        Some(e) => format!("{} ({e})", t.place),
                        None => t.place.clone(),
                    },
                    t.description.clone(),
                ]
            })
            .collect(),
    }
}

/// Every share's copy on every target, as read now (nothing when the status could not be read).
fn copies(b: &mut Vec<Block>, s: &ScheduleData, c: &Clock) {
    let Ok(st) = &s.status else {
        return;
    };
    let mut rows = Vec::new();
    for src in &st.sources {
        for cp in &src.copies {
            rows.push(vec![
                src.source.clone(),
                match &cp.disk {
                    Some(disk) => format!("{} disk {disk}", cp.target),
                    None => cp.target.clone(),
                },
                cp.snapshot.clone().unwrap_or_else(|| "none".into()),
                cp.taken.map_or("-".into(), |t| c.time(t)),
                cp.error
                    .clone()
                    .or_else(|| cp.missing.clone())
                    .unwrap_or_else(|| {
                        if cp.as_recorded {
                            "as recorded when the disk was last written".into()
                        } else {
                            "read now".into()
                        }
                    }),
            ]);
        }
    }
    b.push(Block::Subheading("Copies now".into()));
    b.push(Block::Table {
        widths: vec![0.14, 0.16, 0.14, 0.2, 0.36],
        header: vec![
            "Share".into(),
            "Target".into(),
            "Snapshot".into(),
            "Taken".into(),
            "Note".into(),
        ],
        rows,
    });
}

/// The runs of the period.
fn runs(b: &mut Vec<Block>, s: &ScheduleData, c: &Clock) {
    b.push(Block::Subheading(format!("Runs ({})", s.runs.len())));
    if s.runs.is_empty() {
        b.push(Block::Para("No run was recorded in the period.".into()));
        return;
    }
    b.push(Block::Table {
        widths: vec![0.22, 0.12, 0.12, 0.54],
        header: vec![
            "Started".into(),
            "Took".into(),
            "Outcome".into(),
            "Message".into(),
        ],
        rows: s
            .runs
            .iter()
            .map(|r| {
                vec![
                    c.time(r.started),
                    describe_seconds((r.finished - r.started).num_milliseconds() as f64 / 1000.0),
                    r.outcome.to_string(),
                    r.message.clone(),
                ]
            })
            .collect(),
    });
}

/// The restore drills of the period.
fn drills(b: &mut Vec<Block>, s: &ScheduleData, c: &Clock) {
    b.push(Block::Subheading(format!(
        "Restore drills ({})",
        s.drills.len()
    )));
    if s.drills.is_empty() {
        b.push(Block::Para(
            "No restore drill was recorded in the period.".into(),
        ));
        return;
    }
    b.push(Block::Table {
        widths: vec![0.17, 0.11, 0.1, 0.08, 0.16, 0.14, 0.08, 0.16],
        header: vec![
            "Started".into(),
            "Share".into(),
            "Target".into(),
            "Kind".into(),
            "Restored".into(),
            "Est. recovery".into(),
            "Result".into(),
            "Snapshot".into(),
        ],
        rows: s
            .drills
            .iter()
            .map(|r| {
                vec![
                    c.time(r.started),
                    r.source.clone(),
                    r.target.clone(),
                    format!("{:?}", r.kind).to_lowercase(),
                    format!(
                        "{} files, {} in {}",
                        r.files,
                        bytes(r.bytes as f64),
                        describe_seconds(r.restore_seconds)
                    ),
                    describe_seconds(r.estimated_recovery_seconds),
                    if r.result == CheckOutcome::Pass {
                        "pass".into()
                    } else {
                        format!("FAIL: {}", r.reason)
                    },
                    r.snapshot.chars().take(8).collect(),
                ]
            })
            .collect(),
    });
}

/// The verifications of the period.
fn verifies(b: &mut Vec<Block>, s: &ScheduleData, c: &Clock) {
    b.push(Block::Subheading(format!(
        "Verifications ({})",
        s.verifies.len()
    )));
    if s.verifies.is_empty() {
        b.push(Block::Para(
            "No verification was recorded in the period.".into(),
        ));
        return;
    }
    b.push(Block::Table {
        widths: vec![0.18, 0.11, 0.2, 0.17, 0.1, 0.24],
        header: vec![
            "Started".into(),
            "Target".into(),
            "Read back".into(),
            "Coverage 30/90 days".into(),
            "Result".into(),
            "Findings".into(),
        ],
        rows: s
            .verifies
            .iter()
            .map(|v| {
                vec![
                    c.time(v.started),
                    v.target.clone(),
                    format!(
                        "{} of {} packs, {} of {}",
                        v.packs_read,
                        v.packs_total,
                        bytes(v.bytes_read as f64),
                        bytes(v.bytes_total as f64)
                    ),
                    format!(
                        "{:.0}% / {:.0}%",
                        v.coverage_30d * 100.0,
                        v.coverage_90d * 100.0
                    ),
                    v.result.to_string(),
                    if v.result == CheckOutcome::Error {
                        v.error.clone()
                    } else {
                        v.findings
                            .iter()
                            .map(|f| format!("{}: {} {}", f.object, f.problem, f.repair))
                            .collect::<Vec<_>>()
                            .join("; ")
                    },
                ]
            })
            .collect(),
    });
}
