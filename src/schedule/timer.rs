//! The daemon's clock: one way to find when any of several timetables next fires and to sleep
//! until then, shared by the backup runs ([`crate::schedule::daemon`]), verifications and drills
//! ([`crate::schedule::checks`]) and weekly summaries ([`crate::schedule::summary`]).
//!
//! Each job remembers the last time it was handled; the next time of a job is the first time of
//! its timetable after that (or after now, when times that passed during a long job are to be
//! skipped). Several jobs due at the same instant are handed out together, in key order.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

use chrono::{DateTime, Utc};
use tokio::sync::Notify;

use crate::plan::timetable::Timetable;

/// What to do with times that passed while a job was running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Passed {
    /// Skip them: the next time is the first one after now.
    Skip,
    /// Hand each out once, late.
    Late,
}

/// The next times of a set of jobs, each with its own timetable.
pub struct Ticker<K> {
    tables: BTreeMap<K, Timetable>,
    last: BTreeMap<K, DateTime<Utc>>,
    passed: Passed,
}

impl<K: Ord + Clone> Ticker<K> {
    /// A ticker whose jobs were all last handled at `from`.
    pub fn new(tables: BTreeMap<K, Timetable>, from: DateTime<Utc>, passed: Passed) -> Self {
        let last = tables.keys().map(|k| (k.clone(), from)).collect();
        Ticker {
            tables,
            last,
            passed,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    pub fn tables(&self) -> &BTreeMap<K, Timetable> {
        &self.tables
    }

    /// Records that `key` was handled for its time `at`.
    pub fn handled(&mut self, key: &K, at: DateTime<Utc>) {
        self.last.insert(key.clone(), at);
    }

    /// The next instant any job is due after its last handled time, and the jobs due then;
    /// `None` when no timetable has a time to come.
    pub fn next(&self, now: DateTime<Utc>) -> Option<(DateTime<Utc>, Vec<K>)> {
        let due: Vec<(DateTime<Utc>, &K)> = self
            .tables
            .iter()
            .filter_map(|(k, t)| {
                let after = match self.passed {
                    Passed::Skip => self.last[k].max(now),
                    Passed::Late => self.last[k],
                };
                t.next_after(after).map(|at| (at, k))
            })
            .collect();
        let at = due.iter().map(|(at, _)| *at).min()?;
        let keys = due
            .into_iter()
            .filter(|(t, _)| *t == at)
            .map(|(_, k)| k.clone())
            .collect();
        Some((at, keys))
    }

    /// Sleeps until the next time and returns it with the jobs due then, marked handled.
    /// `None` when there is no time to come, when `cancel` is set, or when `wake` is notified
    /// first (the caller then looks at `cancel` and asks again).
    pub async fn wait(
        &mut self,
        cancel: &AtomicBool,
        wake: Option<&Notify>,
        what: &str,
    ) -> Option<Woken<K>> {
        let now = Utc::now();
        let (at, keys) = self.next(now)?;
        tracing::info!(at = %at, "next {what}");
        let sleep = tokio::time::sleep((at - now).to_std().unwrap_or_default());
        match wake {
            Some(wake) => tokio::select! {
                _ = sleep => {}
                _ = wake.notified() => return Some(Woken::Early),
            },
            None => sleep.await,
        }
        if cancel.load(Ordering::Relaxed) {
            return None;
        }
        for k in &keys {
            self.handled(k, at);
        }
        Some(Woken::Due(at, keys))
    }
}

/// Why [`Ticker::wait`] returned.
pub enum Woken<K> {
    /// These jobs are due at this time.
    Due(DateTime<Utc>, Vec<K>),
    /// Woken before the time; nothing is due yet.
    Early,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        chrono::NaiveDate::from_ymd_opt(2026, 1, 5)
            .unwrap()
            .and_hms_opt(h, m, 0)
            .unwrap()
            .and_utc()
    }

    fn table(expr: &str) -> Timetable {
        Timetable::new(
            crate::plan::cron::cron_schedule(expr).unwrap(),
            chrono_tz::UTC,
        )
    }

    #[test]
    fn jobs_due_together_come_together_and_in_order() {
        let tables = BTreeMap::from([
            ("a", table("0 2 * * *")),
            ("b", table("0 2 * * *")),
            ("c", table("30 2 * * *")),
        ]);
        let mut t = Ticker::new(tables, at(1, 0), Passed::Late);
        assert_eq!(t.next(at(1, 0)), Some((at(2, 0), vec!["a", "b"])));
        t.handled(&"a", at(2, 0));
        t.handled(&"b", at(2, 0));
        assert_eq!(t.next(at(2, 0)), Some((at(2, 30), vec!["c"])));
    }

    #[test]
    fn passed_times_are_skipped_or_handed_out_late() {
        let tables = BTreeMap::from([("a", table("0 * * * *"))]);
        // Last handled at 01:00; it is now 04:10 after a long job.
        let late = Ticker::new(tables.clone(), at(1, 0), Passed::Late);
        assert_eq!(late.next(at(4, 10)).unwrap().0, at(2, 0));
        let skip = Ticker::new(tables, at(1, 0), Passed::Skip);
        assert_eq!(skip.next(at(4, 10)).unwrap().0, at(5, 0));
    }
}
