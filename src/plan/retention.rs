//! Retention: which snapshots of each source a schedule keeps. Pure: the snapshots and the time
//! zone are passed in, and the result is a decision per snapshot, table-tested below.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Datelike, Timelike, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use crate::format::snapshot::Listed;
use crate::id::Id;

/// How many snapshots of one source to keep; a snapshot is kept if any rule keeps it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Retention {
    pub last: u32,
    pub hourly: u32,
    pub daily: u32,
    pub weekly: u32,
    pub monthly: u32,
    pub yearly: u32,
}

/// One snapshot's fate.
#[derive(Clone, Debug, Serialize)]
pub struct Decision {
    pub id: Id,
    pub source: String,
    pub start: DateTime<Utc>,
    /// Why it is kept (`last`, `daily`, `newest`, ...); empty when it is forgotten.
    pub reasons: Vec<String>,
}

/// Chooses the snapshots to keep. `snapshots` may be in any order and of several sources;
/// each source is judged on its own. Returns (kept, forgotten).
pub fn select(
    snapshots: &[&Listed],
    retention: &Retention,
    timezone: Tz,
    forgotten_marks: &HashSet<Id>,
) -> (Vec<Decision>, Vec<Decision>) {
    let mut by_source: HashMap<&str, Vec<&Listed>> = HashMap::new();
    for s in snapshots {
        by_source
            .entry(s.snapshot.source.as_str())
            .or_default()
            .push(s);
    }
    let mut kept = Vec::new();
    let mut forgotten = Vec::new();
    let mut sources: Vec<&str> = by_source.keys().copied().collect();
    sources.sort_unstable();
    for source in sources {
        let mut list = by_source.remove(source).unwrap_or_default();
        // Newest first.
        list.sort_by_key(|l| std::cmp::Reverse((l.snapshot.start, l.id)));
        let mut reasons: Vec<Vec<String>> = vec![Vec::new(); list.len()];
        reasons[0].push("newest".into());
        if let Some(i) = list.iter().position(|l| !l.snapshot.partial) {
            reasons[i].push("newest complete".into());
        }
        type Bucket = fn(DateTime<Tz>) -> (i32, u32, u32, u32);
        let rules: [(&str, u32, Bucket); 6] = [
            ("last", retention.last, |_| (0, 0, 0, 0)),
            ("hourly", retention.hourly, |t| {
                (t.year(), t.ordinal(), t.hour(), 0)
            }),
            ("daily", retention.daily, |t| (t.year(), t.ordinal(), 0, 0)),
            ("weekly", retention.weekly, |t| {
                let w = t.iso_week();
                (w.year(), w.week(), 0, 0)
            }),
            ("monthly", retention.monthly, |t| {
                (t.year(), t.month(), 0, 0)
            }),
            ("yearly", retention.yearly, |t| (t.year(), 0, 0, 0)),
        ];
        for (name, count, bucket) in rules {
            let mut taken = 0;
            let mut last = None;
            for (i, l) in list.iter().enumerate() {
                if taken >= count {
                    break;
                }
                let b = bucket(l.snapshot.start.with_timezone(&timezone));
                if name == "last" || last != Some(b) {
                    reasons[i].push(name.to_string());
                    taken += 1;
                    last = Some(b);
                }
            }
        }
        for (l, mut why) in list.into_iter().zip(reasons) {
            // A snapshot another target's prune forgot goes here too, unless it is the newest.
            if forgotten_marks.contains(&l.id) {
                why.retain(|r| r.starts_with("newest"));
            }
            let d = Decision {
                id: l.id,
                source: l.snapshot.source.clone(),
                start: l.snapshot.start,
                reasons: why,
            };
            if d.reasons.is_empty() {
                forgotten.push(d);
            } else {
                kept.push(d);
            }
        }
    }
    (kept, forgotten)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::snapshot::{Snapshot, SnapshotStats};

    fn snap(source: &str, start: &str, partial: bool) -> Listed {
        Listed {
            id: Id::random(),
            snapshot: Snapshot {
                source: source.into(),
                host: "h".into(),
                paths: vec![],
                tags: vec![],
                start: start.parse().expect("time"),
                end: start.parse().expect("time"),
                program_version: "t".into(),
                parent: None,
                tree: Id::random(),
                partial,
                warnings: vec![],
                stats: SnapshotStats::default(),
                suspect: None,
            },
        }
    }

    fn kept_starts(list: &[Listed], r: Retention) -> Vec<String> {
        let refs: Vec<&Listed> = list.iter().collect();
        let (kept, _) = select(&refs, &r, chrono_tz::Europe::London, &HashSet::new());
        let mut out: Vec<String> = kept.iter().map(|d| d.start.to_rfc3339()).collect();
        out.sort();
        out
    }

    #[test]
    fn daily_keeps_the_newest_of_each_local_day() {
        // 23:30 UTC on 2026-07-01 is 00:30 on 2 July in London (BST).
        let list = vec![
            snap("a", "2026-07-01T08:00:00Z", false),
            snap("a", "2026-07-01T20:00:00Z", false),
            snap("a", "2026-07-01T23:30:00Z", false),
            snap("a", "2026-07-02T20:00:00Z", false),
            snap("a", "2026-07-03T20:00:00Z", false),
        ];
        let r = Retention {
            daily: 2,
            ..Retention::default()
        };
        assert_eq!(
            kept_starts(&list, r),
            vec!["2026-07-02T20:00:00+00:00", "2026-07-03T20:00:00+00:00"]
        );
        let r = Retention {
            daily: 3,
            ..Retention::default()
        };
        assert_eq!(
            kept_starts(&list, r),
            vec![
                "2026-07-01T20:00:00+00:00",
                "2026-07-02T20:00:00+00:00",
                "2026-07-03T20:00:00+00:00"
            ]
        );
    }

    #[test]
    fn the_newest_complete_snapshot_is_always_kept() {
        let list = vec![
            snap("a", "2026-01-01T02:00:00Z", false),
            snap("a", "2026-01-02T02:00:00Z", true),
            snap("a", "2026-01-03T02:00:00Z", true),
        ];
        // Even a retention that keeps nothing keeps the newest and the newest complete.
        let kept = kept_starts(&list, Retention::default());
        assert_eq!(
            kept,
            vec!["2026-01-01T02:00:00+00:00", "2026-01-03T02:00:00+00:00"]
        );
    }

    #[test]
    fn sources_are_judged_separately_and_marks_forget() {
        let list = [
            snap("a", "2026-01-01T02:00:00Z", false),
            snap("a", "2026-01-02T02:00:00Z", false),
            snap("b", "2026-01-01T03:00:00Z", false),
        ];
        let refs: Vec<&Listed> = list.iter().collect();
        let r = Retention {
            last: 5,
            ..Retention::default()
        };
        let marks: HashSet<Id> = [list[0].id, list[2].id].into_iter().collect();
        let (kept, forgotten) = select(&refs, &r, chrono_tz::UTC, &marks);
        // b's only snapshot is its newest: kept despite the mark. a's older one goes.
        assert_eq!(kept.len(), 2);
        assert_eq!(forgotten.len(), 1);
        assert_eq!(forgotten[0].id, list[0].id);
    }

    #[test]
    fn weekly_monthly_yearly_count_distinct_periods() {
        let list = vec![
            snap("a", "2025-12-30T02:00:00Z", false),
            snap("a", "2026-01-05T02:00:00Z", false),
            snap("a", "2026-01-06T02:00:00Z", false),
            snap("a", "2026-02-01T02:00:00Z", false),
        ];
        let r = Retention {
            monthly: 2,
            ..Retention::default()
        };
        assert_eq!(
            kept_starts(&list, r),
            vec!["2026-01-06T02:00:00+00:00", "2026-02-01T02:00:00+00:00"]
        );
        let r = Retention {
            yearly: 2,
            ..Retention::default()
        };
        assert_eq!(
            kept_starts(&list, r),
            vec!["2025-12-30T02:00:00+00:00", "2026-02-01T02:00:00+00:00"]
        );
        // 2025-12-30 and 2026-01-05 are in ISO weeks 2026-W01 and 2026-W02.
        let r = Retention {
            weekly: 3,
            ..Retention::default()
        };
        assert_eq!(
            kept_starts(&list, r),
            vec![
                "2025-12-30T02:00:00+00:00",
                "2026-01-06T02:00:00+00:00",
                "2026-02-01T02:00:00+00:00"
            ]
        );
    }
}
