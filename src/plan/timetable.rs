//! When a schedule runs: cron times read in the schedule's own time zone.
//!
//! Schools run on local time, and the clocks change twice a year. Times are found as local
//! wall-clock times first (the cron expression is evaluated on a naive calendar) and then placed
//! in the time zone, so that:
//!
//! - a time that does not exist on the day the clocks go forward (01:30 in London on the last
//!   Sunday of March) runs at the first moment after the gap (02:00 BST), once;
//! - a time that happens twice on the day the clocks go back (01:30 in October) runs once, at its
//!   first occurrence (01:30 BST).
//!
//! Pure: the time is always passed in.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;

/// A cron expression in a time zone.
#[derive(Clone, Debug)]
pub struct Timetable {
    cron: cron::Schedule,
    tz: Tz,
}

impl Timetable {
    pub fn new(cron: cron::Schedule, tz: Tz) -> Timetable {
        Timetable { cron, tz }
    }

    /// The first run strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        // Walk local wall-clock times from a little before `after` (a gap can move a time later
        // than its wall-clock reading) and keep the first that lands after it.
        let local_after = after.with_timezone(&self.tz).naive_local() - Duration::hours(3);
        let start = Utc.from_utc_datetime(&local_after);
        self.cron
            .after(&start)
            .take(10_000)
            .map(|naive_as_utc| self.place(naive_as_utc.naive_utc()))
            .find(|t| *t > after)
    }

    /// The latest run at or before `now`, looking back at most `horizon`.
    pub fn last_at_or_before(
        &self,
        now: DateTime<Utc>,
        horizon: Duration,
    ) -> Option<DateTime<Utc>> {
        let mut t = self.next_after(now - horizon)?;
        if t > now {
            return None;
        }
        while let Some(next) = self.next_after(t) {
            if next > now {
                break;
            }
            t = next;
        }
        Some(t)
    }

    /// Places a wall-clock time in the time zone, by the rules above.
    fn place(&self, local: NaiveDateTime) -> DateTime<Utc> {
        match self.tz.from_local_datetime(&local) {
            LocalResult::Single(t) => t.with_timezone(&Utc),
            LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
            LocalResult::None => {
                // In a gap: the first minute that exists after it.
                let mut probe = local;
                loop {
                    probe += Duration::minutes(1);
                    if let Some(t) = self.tz.from_local_datetime(&probe).earliest() {
                        return t.with_timezone(&Utc);
                    }
                }
            }
        }
    }
}

/// Whether a run was missed: a scheduled time fell after the last one handled and not after now.
pub fn missed(
    timetable: &Timetable,
    last_scheduled: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
) -> Option<DateTime<Utc>> {
    let last = last_scheduled?;
    timetable.next_after(last).filter(|t| *t <= now).map(|_| {
        timetable
            .last_at_or_before(now, now - last)
            .expect("a time between last and now exists")
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn london(expr: &str) -> Timetable {
        Timetable::new(
            crate::plan::cron::cron_schedule(expr).unwrap(),
            Tz::from_str("Europe/London").unwrap(),
        )
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn runs(t: &Timetable, from: &str, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        let mut at = utc(from);
        for _ in 0..n {
            at = t.next_after(at).unwrap();
            out.push(at.to_rfc3339());
        }
        out
    }

    #[test]
    fn nightly_at_two_across_both_clock_changes() {
        // 2026: clocks go forward on 29 March, back on 25 October.
        let t = london("0 2 * * *");
        assert_eq!(
            runs(&t, "2026-03-27T12:00:00Z", 4),
            [
                "2026-03-28T02:00:00+00:00", // GMT
                "2026-03-29T01:00:00+00:00", // 02:00 BST, the first night of summer time
                "2026-03-30T01:00:00+00:00",
                "2026-03-31T01:00:00+00:00",
            ]
        );
        assert_eq!(
            runs(&t, "2026-10-23T12:00:00Z", 4),
            [
                "2026-10-24T01:00:00+00:00", // 02:00 BST
                "2026-10-25T02:00:00+00:00", // 02:00 GMT: after the change, once
                "2026-10-26T02:00:00+00:00",
                "2026-10-27T02:00:00+00:00",
            ]
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_runs_once_after_it() {
        let t = london("30 1 * * *");
        assert_eq!(
            runs(&t, "2026-03-28T00:00:00Z", 3),
            [
                "2026-03-28T01:30:00+00:00",
                "2026-03-29T01:00:00+00:00", // 01:30 does not exist: 02:00 BST, once
                "2026-03-30T00:30:00+00:00", // 01:30 BST
            ]
        );
    }

    #[test]
    fn a_time_that_happens_twice_in_autumn_runs_once() {
        let t = london("30 1 * * *");
        assert_eq!(
            runs(&t, "2026-10-24T12:00:00Z", 2),
            [
                "2026-10-25T00:30:00+00:00", // the first 01:30 (BST); not again at 01:30 GMT
                "2026-10-26T01:30:00+00:00",
            ]
        );
        // Every hour through the autumn night: 01:xx appears once.
        let hourly = london("30 * * * *");
        let night = runs(&hourly, "2026-10-24T22:00:00Z", 5);
        assert_eq!(
            night,
            [
                "2026-10-24T22:30:00+00:00", // 23:30 BST
                "2026-10-24T23:30:00+00:00", // 00:30 BST
                "2026-10-25T00:30:00+00:00", // 01:30 BST
                "2026-10-25T02:30:00+00:00", // 02:30 GMT (01:30 GMT is the repeat; skipped)
                "2026-10-25T03:30:00+00:00",
            ]
        );
    }

    #[test]
    fn catch_up_after_downtime_runs_once() {
        let t = london("0 2 * * *");
        let last = utc("2026-11-20T02:00:00Z");
        // Off for three nights: one catch-up run, for the latest missed time.
        assert_eq!(
            missed(&t, Some(last), utc("2026-11-23T09:00:00Z")),
            Some(utc("2026-11-23T02:00:00Z"))
        );
        // Nothing missed.
        assert_eq!(missed(&t, Some(last), utc("2026-11-21T01:59:00Z")), None);
        // Never run: nothing to catch up.
        assert_eq!(missed(&t, None, utc("2026-11-23T09:00:00Z")), None);
    }
}
