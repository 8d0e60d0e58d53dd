//! What each schedule's cron times said should have happened in the period, matched with what
//! the records show happened (by [`crate::plan::due`]): the backup runs, verifications and drills
//! that were due, done and missed, and the gaps between complete backups longer than the policy
//! allows. The first page and the risks count these, not merely what was recorded.

use chrono::Duration;

use crate::paper::report::facts::{ReportData, ScheduleData};
use crate::paper::report::words::Clock;
use crate::plan::due::{Due, Gap, Period, due, gaps};

/// What was due for one schedule in the period, and what became of it.
pub(super) struct Expected {
    pub(super) period: Period,
    pub(super) runs: Due,
    pub(super) gaps: Vec<Gap>,
    /// `None` when the schedule has no `[drill]` (or `[verify]`) time.
    pub(super) drills: Option<Due>,
    pub(super) verifies: Option<Due>,
}

impl Expected {
    pub(super) fn of(d: &ReportData, s: &ScheduleData) -> Expected {
        let period = Period {
            from: d.from,
            to: d.to,
            now: d.generated,
            known_from: s.evidence.begin,
        };
        let e = &s.evidence;
        Expected {
            runs: due(&s.times.backup, &period, &e.complete_runs),
            gaps: gaps(
                &period,
                &e.complete_runs,
                Duration::hours(i64::from(s.max_age_hours)),
            ),
            drills: s.times.drill.as_ref().map(|t| due(t, &period, &e.drills)),
            verifies: s
                .times
                .verify
                .as_ref()
                .map(|t| due(t, &period, &e.verifies)),
            period,
        }
    }

    /// "firesafe's records begin on 1 December 2026: nothing before that date can be shown.",
    /// when they begin after the period starts.
    pub(super) fn records_begin(&self, s: &ScheduleData, c: &Clock, many: bool) -> Option<String> {
        self.records_begin_words(s, c, many, true)
    }

    /// The same, short, for a light: "The records begin on 1 December 2026."
    pub(super) fn counted_from(&self, s: &ScheduleData, c: &Clock, many: bool) -> Option<String> {
        self.records_begin_words(s, c, many, false)
    }

    /// The start of what can be judged: the later of the period's start and the records'.
    pub(super) fn known_start(&self) -> chrono::DateTime<chrono::Utc> {
        self.period
            .known_from
            .map_or(self.period.from, |k| k.max(self.period.from))
    }

    fn records_begin_words(
        &self,
        s: &ScheduleData,
        c: &Clock,
        many: bool,
        full: bool,
    ) -> Option<String> {
        if !self.period.starts_before_records() {
            return None;
        }
        let of = if many {
            format!(" of schedule {}", s.name)
        } else {
            String::new()
        };
        Some(match self.period.known_from {
            Some(k) if !full => format!("The records{of} begin on {}.", c.day(k)),
            None if !full => format!("firesafe holds no records{of}."),
            Some(k) => format!(
                "firesafe's records{of} begin on {}: nothing before that date can be shown.",
                c.day(k)
            ),
            None => format!(
                "firesafe holds no records{of} at all: nothing in this period can be shown."
            ),
        })
    }
}

/// The expectations of every schedule, in the order of the report.
pub(super) fn all(d: &ReportData) -> Vec<(&ScheduleData, Expected)> {
    d.schedules
        .iter()
        .map(|s| (s, Expected::of(d, s)))
        .collect()
}

/// "30 in a row, from 11 October to 9 November", for a streak of more than one; empty otherwise.
pub(super) fn streak_words(due: &Due, c: &Clock) -> String {
    match &due.longest_streak {
        Some(s) if s.count > 1 => format!(
            ", {} in a row from {} to {}",
            s.count,
            c.day_month(s.first),
            c.day_month(s.last)
        ),
        _ => String::new(),
    }
}

/// "1 was", "8 were".
pub(super) fn was_were(n: usize) -> String {
    if n == 1 {
        "1 was".into()
    } else {
        format!("{n} were")
    }
}
