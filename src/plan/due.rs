//! What was due and what was done: the backup runs, verifications and drills a schedule's cron
//! times called for in a period, matched with the times they were really done.
//!
//! The rule: every time of the timetable (the one the daemon runs by, in the schedule's time
//! zone, DST-correct) within the period is a *slot*. A slot is done by the first completion at or
//! after it and before the next slot; a slot whose next slot has come without one is *missed*; a
//! slot whose next slot has not come yet is *open* (neither done nor missed); a slot not done that
//! fell before the records begin is *unknown* (nothing can be said about it, and it is not
//! counted). Separately, any stretch longer than the allowed age between completions (or from the
//! start of what is known, or to the end of the period) is a *gap*, with its dates and the
//! completion that ended it, if one did.
//!
//! Pure: the period, "now" and the completion times are passed in.

use chrono::{DateTime, Duration, Utc};

use crate::plan::timetable::Timetable;

/// What became of one due time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SlotState {
    /// Done at this time (the first completion in the slot's window).
    Done(DateTime<Utc>),
    /// The next due time came and nothing was done.
    Missed,
    /// Its window has not closed yet.
    Open,
    /// Not done, and due before the records begin.
    Unknown,
}

/// One due time and its window `[at, until)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Slot {
    pub at: DateTime<Utc>,
    pub until: DateTime<Utc>,
    pub state: SlotState,
}

/// Consecutive missed slots: how many, the first and last, and the completion that ended them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Streak {
    pub count: usize,
    pub first: DateTime<Utc>,
    pub last: DateTime<Utc>,
    pub ended_by: Option<DateTime<Utc>>,
}

/// The slots of a period, with their counts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Due {
    pub slots: Vec<Slot>,
    /// Slots that count: done, missed or open (not unknown).
    pub due: usize,
    pub done: usize,
    pub missed: usize,
    pub open: usize,
    /// The longest run of consecutive missed slots (the first of equals).
    pub longest_streak: Option<Streak>,
}

/// The period asked about, and what is known.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Period {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// When the question is asked: nothing after it is due.
    pub now: DateTime<Utc>,
    /// When the records begin, if they do; `None` when there are none at all.
    pub known_from: Option<DateTime<Utc>>,
}

impl Period {
    /// The end of what can be judged: the end of the period, or now if that is earlier.
    pub fn end(&self) -> DateTime<Utc> {
        self.to.min(self.now)
    }

    /// Whether the records begin after the period starts (or there are none).
    pub fn starts_before_records(&self) -> bool {
        self.known_from.is_none_or(|k| k > self.from)
    }
}

/// The slots of `table` in the period, matched with `done` (completion times, any order; those
/// outside the period count too, for the windows that cross its edges).
pub fn due(table: &Timetable, p: &Period, done: &[DateTime<Utc>]) -> Due {
    let mut done: Vec<DateTime<Utc>> = done.to_vec();
    done.sort_unstable();
    let end = p.end();
    let mut slots = Vec::new();
    let mut next = table.next_after(p.from - Duration::seconds(1));
    while let Some(at) = next.filter(|t| *t <= end) {
        let until = table.next_after(at).unwrap_or(DateTime::<Utc>::MAX_UTC);
        let first = done.iter().find(|t| **t >= at && **t < until).copied();
        let state = match first {
            Some(t) => SlotState::Done(t),
            None if p.known_from.is_some_and(|k| at < k) => SlotState::Unknown,
            None if until <= p.now => SlotState::Missed,
            None => SlotState::Open,
        };
        slots.push(Slot { at, until, state });
        next = Some(until).filter(|u| *u != DateTime::<Utc>::MAX_UTC);
    }
    let count = |f: fn(&SlotState) -> bool| slots.iter().filter(|s| f(&s.state)).count();
    let done_n = count(|s| matches!(s, SlotState::Done(_)));
    let missed = count(|s| *s == SlotState::Missed);
    let open = count(|s| *s == SlotState::Open);
    let longest_streak = longest_streak(&slots, &done);
    Due {
        due: done_n + missed + open,
        done: done_n,
        missed,
        open,
        longest_streak,
        slots,
    }
}

fn longest_streak(slots: &[Slot], done: &[DateTime<Utc>]) -> Option<Streak> {
    let mut best: Option<Streak> = None;
    let mut run: Option<Streak> = None;
    for s in slots.iter().chain(std::iter::once(&Slot {
        at: DateTime::<Utc>::MAX_UTC,
        until: DateTime::<Utc>::MAX_UTC,
        state: SlotState::Open,
    })) {
        if s.state == SlotState::Missed {
            run = Some(match run {
                Some(r) => Streak { last: s.at, ..r },
                None => Streak {
                    count: 0,
                    first: s.at,
                    last: s.at,
                    ended_by: None,
                },
            });
            if let Some(r) = &mut run {
                r.count += 1;
            }
        } else if let Some(mut r) = run.take() {
            r.ended_by = done.iter().find(|t| **t > r.last).copied();
            if best.is_none_or(|b| r.count > b.count) {
                best = Some(r);
            }
        }
    }
    best
}

/// A stretch longer than allowed without a completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Gap {
    /// The last completion before it, or the start of what is known.
    pub from: DateTime<Utc>,
    /// The completion that ended it, or the end of the period when none has (yet).
    pub to: DateTime<Utc>,
    /// The completion that ended it, which may come after the period; `None` while it lasts.
    pub ended_by: Option<DateTime<Utc>>,
}

impl Gap {
    pub fn length(&self) -> Duration {
        self.to - self.from
    }
}

/// Every stretch in the period longer than `max_age` between completions, oldest first. The
/// first is measured from the last completion before the period, or else from the later of the
/// period's start and the records' start; the last runs to the end of the period.
pub fn gaps(p: &Period, done: &[DateTime<Utc>], max_age: Duration) -> Vec<Gap> {
    let mut done: Vec<DateTime<Utc>> = done.to_vec();
    done.sort_unstable();
    let end = p.end();
    let Some(known) = p.known_from else {
        return vec![Gap {
            from: p.from,
            to: end,
            ended_by: None,
        }];
    };
    let mut prev = done
        .iter()
        .rev()
        .find(|t| **t <= p.from)
        .copied()
        .unwrap_or(p.from.max(known));
    let start = prev;
    let mut out = Vec::new();
    for &t in done.iter().filter(|t| **t > start && **t <= end) {
        if t - prev > max_age {
            out.push(Gap {
                from: prev,
                to: t,
                ended_by: Some(t),
            });
        }
        prev = t;
    }
    if end - prev > max_age {
        out.push(Gap {
            from: prev,
            to: end,
            ended_by: done.iter().find(|t| **t > end).copied(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use std::str::FromStr;

    fn london(expr: &str) -> Timetable {
        Timetable::new(
            crate::plan::cron::cron_schedule(expr).unwrap(),
            chrono_tz::Tz::from_str("Europe/London").unwrap(),
        )
    }

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Midnight in London on a day of 2026.
    fn day(m: u32, d: u32) -> DateTime<Utc> {
        chrono_tz::Europe::London
            .with_ymd_and_hms(2026, m, d, 0, 0, 0)
            .unwrap()
            .with_timezone(&Utc)
    }

    /// The autumn term: 1 September to the end of 28 November 2026 (89 nights), asked on 1
    /// December; records from 1 August.
    fn term() -> Period {
        Period {
            from: day(9, 1),
            to: day(11, 29) - Duration::seconds(1),
            now: day(12, 1) + Duration::hours(9),
            known_from: Some(day(8, 1)),
        }
    }

    /// Nightly runs finishing 20 minutes after 02:00 London time from 1 August to 30 November,
    /// except on the nights given (as (month, day)).
    fn nightly_except(skip: &[(u32, u32)]) -> Vec<DateTime<Utc>> {
        let t = london("0 2 * * *");
        let mut out = Vec::new();
        let mut at = day(8, 1);
        while let Some(n) = t.next_after(at).filter(|n| *n < day(12, 1)) {
            let local = n.with_timezone(&chrono_tz::Europe::London);
            use chrono::Datelike;
            if !skip.contains(&(local.month(), local.day())) {
                out.push(n + Duration::minutes(20));
            }
            at = n;
        }
        out
    }

    #[test]
    fn a_clean_term_has_every_night_done_across_the_clock_change() {
        let t = london("0 2 * * *");
        let d = due(&t, &term(), &nightly_except(&[]));
        assert_eq!((d.due, d.done, d.missed, d.open), (89, 89, 0, 0));
        assert_eq!(d.longest_streak, None);
        // 02:00 BST before the clocks go back on 25 October, 02:00 GMT after: once each night.
        let around: Vec<DateTime<Utc>> = d
            .slots
            .iter()
            .map(|s| s.at)
            .filter(|a| *a >= utc("2026-10-24T00:00:00Z") && *a < utc("2026-10-27T00:00:00Z"))
            .collect();
        assert_eq!(
            around,
            [
                utc("2026-10-24T01:00:00Z"),
                utc("2026-10-25T02:00:00Z"),
                utc("2026-10-26T02:00:00Z")
            ]
        );
        assert!(gaps(&term(), &nightly_except(&[]), Duration::hours(26)).is_empty());
    }

    #[test]
    fn thirty_dead_nights_are_one_streak_and_one_gap_with_dates() {
        // Dead from 11 October to 9 November (across the clock change), and one other night.
        let mut skip: Vec<(u32, u32)> = (11..=31).map(|d| (10, d)).collect();
        skip.extend((1..=9).map(|d| (11, d)));
        skip.push((9, 15));
        let done = nightly_except(&skip);
        let t = london("0 2 * * *");
        let d = due(&t, &term(), &done);
        assert_eq!((d.due, d.done, d.missed), (89, 58, 31));
        let s = d.longest_streak.unwrap();
        assert_eq!(s.count, 30);
        assert_eq!(s.first, utc("2026-10-11T01:00:00Z")); // 02:00 BST
        assert_eq!(s.last, utc("2026-11-09T02:00:00Z")); // 02:00 GMT
        assert_eq!(s.ended_by, Some(utc("2026-11-10T02:20:00Z")));
        let g = gaps(&term(), &done, Duration::hours(26));
        assert_eq!(g.len(), 2, "{g:?}");
        assert_eq!(g[0].from, utc("2026-09-14T01:20:00Z"));
        assert_eq!(g[0].ended_by, Some(utc("2026-09-16T01:20:00Z")));
        assert_eq!(g[1].from, utc("2026-10-10T01:20:00Z"));
        assert_eq!(g[1].to, utc("2026-11-10T02:20:00Z"));
        assert_eq!(g[1].length().num_days(), 31);
    }

    #[test]
    fn weekly_drills_missing_for_eight_weeks() {
        // Sunday 06:00 drills; none from 4 October to 22 November (8 Sundays).
        let t = london("0 6 * * 0");
        let mut at = day(8, 1);
        let mut done = Vec::new();
        while let Some(n) = t.next_after(at).filter(|n| *n < day(12, 1)) {
            if n < day(10, 4) || n > day(11, 23) {
                done.push(n + Duration::minutes(3));
            }
            at = n;
        }
        let d = due(&t, &term(), &done);
        // Sundays from 6 September to 22 November: 12.
        assert_eq!((d.due, d.done, d.missed), (12, 4, 8));
        let s = d.longest_streak.unwrap();
        assert_eq!((s.count, s.first), (8, utc("2026-10-04T05:00:00Z")));
        assert_eq!(s.last, utc("2026-11-22T06:00:00Z"));
    }

    #[test]
    fn records_that_begin_late_leave_earlier_slots_unknown() {
        // Records begin at 11:49 on 1 December; the period is the 90 days before.
        let now = utc("2026-12-01T11:49:00Z");
        let p = Period {
            from: now - Duration::days(90),
            to: now,
            now,
            known_from: Some(now),
        };
        assert!(p.starts_before_records());
        let t = london("0 2 * * *");
        // Nothing before the first record is due, not even the night whose window holds it...
        let d = due(&t, &p, &[]);
        assert_eq!((d.due, d.done, d.missed, d.open), (0, 0, 0, 0));
        // ...unless that record completed it.
        let d = due(&t, &p, &[now]);
        assert_eq!((d.due, d.done), (1, 1));
        assert!(
            d.slots[..d.slots.len() - 1]
                .iter()
                .all(|s| s.state == SlotState::Unknown)
        );
        // No gap is claimed before the records begin.
        assert!(gaps(&p, &[now], Duration::hours(26)).is_empty());
        // No records at all: the whole period is one open gap.
        let none = Period {
            known_from: None,
            ..p
        };
        assert_eq!(gaps(&none, &[], Duration::hours(26)).len(), 1);
    }

    #[test]
    fn a_gap_at_the_end_of_the_period_is_open_until_a_completion() {
        let p = term();
        let done = nightly_except(&(20..=30).map(|d| (11, d)).collect::<Vec<_>>());
        let g = gaps(&p, &done, Duration::hours(26));
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].to, p.to);
        assert_eq!(g[0].ended_by, None);
        let d = due(&london("0 2 * * *"), &p, &done);
        assert_eq!(d.longest_streak.unwrap().ended_by, None);
        assert_eq!(d.missed, 9); // 20 to 28 November
    }
}
