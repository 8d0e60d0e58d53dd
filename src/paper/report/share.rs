//! One share of a schedule, with what the facts say about it: its 3-2-1 status now, its newest
//! copy, its drills in the period and the drill that measured its recovery time. The first page,
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
