//! The 3-2-1 rule, evaluated from what is really on each target.
//!
//! Pure: given the newest complete snapshot of a source on each target (found by reading the
//! targets, never assumed from configuration), the policy and the time now, it counts copies,
//! distinct media and offsite copies, and gives a verdict with its reasons in plain sentences.
//!
//! - A copy *counts* when its newest complete snapshot is younger than the policy's maximum age
//!   (the RPO).
//! - **OK**: the counting copies meet every minimum.
//! - **DEGRADED**: they do not, but they would if stale copies counted too: the copies exist and
//!   are only out of date (a missed night, a target that was down).
//! - **VIOLATED**: even stale copies do not meet the minimums: a copy, a medium or the offsite
//!   copy is missing altogether.
//!
//! When the policy says so, the live share counts as one copy, on its own medium (the file
//! server), on site.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

/// The policy a schedule sets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    pub min_copies: usize,
    pub min_media: usize,
    pub min_offsite: usize,
    /// The maximum age of the newest good copy (the RPO).
    pub max_age: Duration,
    /// Whether the live share counts as one of the copies.
    pub live_data_counts: bool,
}

impl Default for Policy {
    /// Three copies, two media, one off site, no copy older than 26 hours, live data counted.
    fn default() -> Self {
        Policy {
            min_copies: 3,
            min_media: 2,
            min_offsite: 1,
            max_age: Duration::hours(26),
            live_data_counts: true,
        }
    }
}

/// One target's copy of one source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Copy {
    pub target: String,
    pub medium: String,
    pub offsite: bool,
    /// When the newest complete snapshot there was taken; `None` when there is none (or the
    /// target could not be read).
    pub newest: Option<DateTime<Utc>>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Verdict {
    Ok,
    Degraded,
    Violated,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Ok => "OK",
            Verdict::Degraded => "DEGRADED",
            Verdict::Violated => "VIOLATED",
        })
    }
}

/// The counts and verdict for one source.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Evaluation {
    pub verdict: Verdict,
    /// Counting copies (fresh enough), including the live share when the policy counts it.
    pub copies: usize,
    pub media: usize,
    pub offsite: usize,
    pub live_data_counted: bool,
    /// Why the verdict is not OK, or what is amiss even though the policy is met (a stale or
    /// empty target beyond the minimums), one plain sentence each.
    pub reasons: Vec<String>,
}

/// Says how old something is, in the largest sensible unit (see [`crate::plan::words::age`]).
pub fn describe_age(age: Duration) -> String {
    crate::plan::words::age(age.num_seconds())
}

/// A duration for people (see [`crate::plan::words::duration`]).
pub fn describe_duration(seconds: f64) -> String {
    crate::plan::words::duration(seconds)
}

/// The reason given for a copy with no complete snapshot.
pub fn no_snapshot_reason(c: &Copy) -> String {
    format!(
        "{} ({}) holds no complete snapshot",
        c.target,
        if c.offsite { "offsite" } else { "onsite" }
    )
}

fn counts(policy: &Policy, copies: &[&Copy]) -> (usize, usize, usize) {
    let mut media: Vec<&str> = copies.iter().map(|c| c.medium.as_str()).collect();
    let mut n = copies.len();
    let offsite = copies.iter().filter(|c| c.offsite).count();
    if policy.live_data_counts {
        n += 1;
        media.push("live share (file server)");
    }
    media.sort_unstable();
    media.dedup();
    (n, media.len(), offsite)
}

/// Evaluates one source's copies against the policy at `now`.
pub fn evaluate(policy: &Policy, copies: &[Copy], now: DateTime<Utc>) -> Evaluation {
    let fresh: Vec<&Copy> = copies
        .iter()
        .filter(|c| c.newest.is_some_and(|t| now - t <= policy.max_age))
        .collect();
    let any: Vec<&Copy> = copies.iter().filter(|c| c.newest.is_some()).collect();
    let (n, media, offsite) = counts(policy, &fresh);
    let (n_any, media_any, offsite_any) = counts(policy, &any);
    let meets = |n: usize, m: usize, o: usize| {
        n >= policy.min_copies && m >= policy.min_media && o >= policy.min_offsite
    };

    let mut reasons = Vec::new();
    for c in copies {
        match c.newest {
            None => reasons.push(no_snapshot_reason(c)),
            Some(t) if now - t > policy.max_age => reasons.push(format!(
                "the {} copy on {} is {} old; the policy allows {}",
                if c.offsite { "offsite" } else { "onsite" },
                c.target,
                describe_age(now - t),
                describe_age(policy.max_age)
            )),
            Some(_) => {}
        }
    }
    if n < policy.min_copies {
        reasons.push(format!(
            "{n} up-to-date cop{} ({}); the policy asks for {}",
            if n == 1 { "y" } else { "ies" },
            if policy.live_data_counts {
                "counting the live share"
            } else {
                "not counting the live share"
            },
            policy.min_copies
        ));
    }
    if media < policy.min_media {
        reasons.push(format!(
            "up-to-date copies are on {media} kind{} of media; the policy asks for {}",
            if media == 1 { "" } else { "s" },
            policy.min_media
        ));
    }
    if offsite < policy.min_offsite {
        reasons.push(format!(
            "{offsite} up-to-date offsite cop{}; the policy asks for {}",
            if offsite == 1 { "y" } else { "ies" },
            policy.min_offsite
        ));
    }
    let verdict = if meets(n, media, offsite) {
        Verdict::Ok
    } else if meets(n_any, media_any, offsite_any) {
        Verdict::Degraded
    } else {
        Verdict::Violated
    };
    Evaluation {
        verdict,
        copies: n,
        media,
        offsite,
        live_data_counted: policy.live_data_counts,
        reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000, 0).unwrap()
    }

    fn copy(target: &str, medium: &str, offsite: bool, hours_old: Option<i64>) -> Copy {
        Copy {
            target: target.into(),
            medium: medium.into(),
            offsite,
            newest: hours_old.map(|h| now() - Duration::hours(h)),
        }
    }

    #[test]
    fn policy_table() {
        let p = Policy::default();
        let three_media = Policy {
            min_media: 3,
            ..Policy::default()
        };
        let no_live = Policy {
            live_data_counts: false,
            ..Policy::default()
        };
        // (policy, copies, verdict, a phrase the reasons must hold)
        let cases: Vec<(&Policy, Vec<Copy>, Verdict, &str)> = vec![
            (
                &p,
                vec![
                    copy("nas", "nas", false, Some(2)),
                    copy("cloud", "object-storage", true, Some(3)),
                ],
                Verdict::Ok,
                "",
            ),
            // Too few copies: only the NAS.
            (
                &p,
                vec![copy("nas", "nas", false, Some(2))],
                Verdict::Violated,
                "the policy asks for 3",
            ),
            // One medium only, though three copies.
            (
                &p,
                vec![
                    copy("nas", "nas", false, Some(1)),
                    copy("nas2", "nas", true, Some(1)),
                ],
                Verdict::Ok,
                "",
            ),
            (
                &three_media,
                vec![
                    copy("nas", "nas", false, Some(1)),
                    copy("nas2", "nas", true, Some(1)),
                ],
                Verdict::Violated,
                "2 kinds of media",
            ),
            // No offsite copy.
            (
                &p,
                vec![
                    copy("nas", "nas", false, Some(1)),
                    copy("usb", "removable-disk", false, Some(1)),
                ],
                Verdict::Violated,
                "0 up-to-date offsite copies",
            ),
            // A stale offsite copy: it exists, so the verdict is degraded, with the age in words.
            (
                &p,
                vec![
                    copy("nas", "nas", false, Some(2)),
                    copy("cloud", "object-storage", true, Some(72)),
                ],
                Verdict::Degraded,
                "the offsite copy on cloud is 3 days old; the policy allows 26 hours",
            ),
            // A target with nothing on it.
            (
                &p,
                vec![
                    copy("nas", "nas", false, Some(2)),
                    copy("cloud", "object-storage", true, None),
                ],
                Verdict::Violated,
                "cloud (offsite) holds no complete snapshot",
            ),
            // Live data not counted: two backup copies are not three.
            (
                &no_live,
                vec![
                    copy("nas", "nas", false, Some(2)),
                    copy("cloud", "object-storage", true, Some(3)),
                ],
                Verdict::Violated,
                "not counting the live share",
            ),
            (
                &no_live,
                vec![
                    copy("nas", "nas", false, Some(2)),
                    copy("cloud", "object-storage", true, Some(3)),
                    copy("usb", "removable-disk", true, Some(20)),
                ],
                Verdict::Ok,
                "",
            ),
        ];
        for (i, (policy, copies, verdict, phrase)) in cases.into_iter().enumerate() {
            let e = evaluate(policy, &copies, now());
            assert_eq!(e.verdict, verdict, "case {i}: {e:?}");
            if phrase.is_empty() {
                assert!(e.reasons.is_empty(), "case {i}: {e:?}");
            } else {
                assert!(
                    e.reasons.iter().any(|r| r.contains(phrase)),
                    "case {i}: {:?} lacks {phrase:?}",
                    e.reasons
                );
            }
        }
    }

    #[test]
    fn ages_read_naturally() {
        assert_eq!(describe_age(Duration::hours(26)), "26 hours");
        assert_eq!(describe_age(Duration::hours(1)), "1 hour");
        assert_eq!(describe_age(Duration::days(3)), "3 days");
        assert_eq!(describe_age(Duration::minutes(5)), "5 minutes");
    }
}
