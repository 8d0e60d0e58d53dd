//! How the report puts things into words: dates and times in the schedule's time zone, how long
//! something took, lists of names and counts of points. Every section writes them the same way
//! because they all come from here.

use chrono::{DateTime, Utc};

/// Dates and times as the report prints them, in the schedule's time zone.
pub(super) struct Clock {
    pub(super) tz: chrono_tz::Tz,
}

impl Clock {
    pub(super) fn day(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz).format("%-d %B %Y").to_string()
    }

    /// "11 October": a day within the report's period.
    pub(super) fn day_month(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz).format("%-d %B").to_string()
    }

    pub(super) fn time(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.tz)
            .format("%-d %b %Y %H:%M")
            .to_string()
    }
}

/// How long something takes, in words: "40 seconds", "12 minutes", "3.5 hours".
///
/// Not [`crate::plan::policy::describe_duration`], which the `drill` command prints ("3 hours 20
/// minutes", "under a minute"): the report's recorded text (tests/snapshots/report.txt) gives one
/// number per duration and counts seconds, so that wording would change it.
pub fn describe_seconds(s: f64) -> String {
    if s < 1.5 {
        "1 second".into()
    } else if s < 90.0 {
        format!("{} seconds", s.round())
    } else if s < 5400.0 {
        format!("{} minutes", (s / 60.0).round())
    } else {
        format!("{:.1} hours", s / 3600.0)
    }
}

/// "curriculum", "curriculum and admin", "curriculum, admin and staff".
pub(super) fn list(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// "1 point", "3 points".
pub(super) fn points(n: usize) -> String {
    if n == 1 {
        "1 point".into()
    } else {
        format!("{n} points")
    }
}
