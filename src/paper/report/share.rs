//! One share of a schedule, with what the facts say about it: its 3-2-1 status now, its newest
//! copy, what its copies counted as, its drills in the period and the drill that measured its
//! recovery time. The first page,
//! the risks and the detail pages all ask these questions, so they are answered once here.

use chrono::{DateTime, Utc};

use crate::paper::report::facts::{ReportData, ScheduleData};
use crate::schedule::status::SourceStatus;
use crate::store::records::{CheckOutcome, DrillKind, DrillRecord};

/// A share of a schedule, with what is known about it.
pub(super) struct Share<'a> {
    pub(super) schedule: &'a ScheduleData,
    pub(super) name: &'a str,
}

impl<'a> Share<'a> {
    pub(super) fn status(&self) -> Option<&'a SourceStatus> {
        self.schedule
            .status
            .as_ref()
            .ok()?
            .sources
            .iter()
            .find(|s| s.source == self.name)
    }

    /// The newest complete copy on any target, as read now.
    pub(super) fn newest(&self) -> Option<DateTime<Utc>> {
        self.status()?.copies.iter().filter_map(|c| c.taken).max()
    }

    /// What the 3-2-1 count found for this share, in words: "3 copies (the live share on the
    /// file server, which the policy counts; nas, on site; offsite, off site), on 3 kinds of
    /// storage, 1 off site". Only copies young enough to count are named.
    pub(super) fn counted(&self) -> Option<String> {
        let st = self.schedule.status.as_ref().ok()?;
        let src = self.status()?;
        let max_age = chrono::Duration::hours(i64::from(st.max_age_hours));
        let mut named: Vec<String> = Vec::new();
        if src.evaluation.live_data_counted {
            named.push("the live share on the file server, which the policy counts".into());
        }
        for c in &src.copies {
            if c.taken.is_some_and(|t| st.checked_at - t <= max_age) {
                named.push(format!(
                    "{}, {}",
                    c.target,
                    match c.location {
                        crate::config::Site::Onsite => "on site",
                        crate::config::Site::Offsite => "off site",
                    }
                ));
            }
        }
        let e = &src.evaluation;
        Some(format!(
            "{} cop{} ({}), on {} kind{} of storage, {} off site",
            e.copies,
            if e.copies == 1 { "y" } else { "ies" },
            if named.is_empty() {
                "none up to date".to_string()
            } else {
                named.join("; ")
            },
            e.media,
            if e.media == 1 { "" } else { "s" },
            e.offsite
        ))
    }

    pub(super) fn drills(&self) -> Vec<&'a DrillRecord> {
        self.schedule
            .drills
            .iter()
            .filter(|d| d.source == self.name)
            .collect()
    }

    /// The latest drill that measured a recovery time: a full one if there is one.
    pub(super) fn recovery(&self) -> Option<&'a DrillRecord> {
        let measured: Vec<&DrillRecord> = self
            .drills()
            .into_iter()
            .filter(|d| d.estimated_recovery_seconds > 0.0 && d.result == CheckOutcome::Pass)
            .collect();
        measured
            .iter()
            .rev()
            .find(|d| d.kind != DrillKind::Sample)
            .or(measured.last())
            .copied()
    }
}

/// Every share of every schedule, in the order the schedules list them.
pub(super) fn shares(d: &ReportData) -> Vec<Share<'_>> {
    d.schedules
        .iter()
        .flat_map(|s| {
            s.sources.iter().map(move |n| Share {
                schedule: s,
                name: n,
            })
        })
        .collect()
}
