//! What is wrong with the copies now, for governors: one sentence per copy and cause (not one
//! per reason the status gives), naming the shares it affects and who should do what for that
//! cause. The status's own reasons, with their paths and object names, are the technician's
//! and stay in the appendix.

use crate::config::Site;
use crate::paper::doc::Light;
use crate::paper::report::words::list;
use crate::plan::policy::Verdict;
use crate::schedule::status::{ScheduleStatus, TargetCopy};

/// Why a copy does not count now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
    /// Nothing is mounted where the copy should be (an empty directory, or the server's own
    /// disk under a NAS or disk target).
    NotMounted,
    /// The target could not be read (unreachable, refused, another repository).
    Unreadable,
    /// Objects the copy's newest backup needs are not there.
    DataMissing,
    /// The target holds no complete backup of the share.
    NoBackup,
    /// Its newest backup is older than the policy allows.
    OutOfDate,
}

/// One copy's problem, with every share it affects.
struct Trouble<'a> {
    copy: &'a TargetCopy,
    cause: Cause,
    shares: Vec<&'a str>,
    violated: bool,
}

fn cause(c: &TargetCopy, st: &ScheduleStatus) -> Option<Cause> {
    let max_age = chrono::Duration::hours(i64::from(st.max_age_hours));
    if let Some(e) = &c.error {
        return Some(match e.contains(crate::config::targets::MISSING) {
            true => Cause::NotMounted,
            false => Cause::Unreadable,
        });
    }
    if c.missing.is_some() {
        return Some(Cause::DataMissing);
    }
    match c.taken {
        None => Some(Cause::NoBackup),
        Some(t) if st.checked_at - t > max_age => Some(Cause::OutOfDate),
        Some(_) => None,
    }
}

/// The problems of every copy now, in the order of the schedule's targets.
fn troubles(st: &ScheduleStatus) -> Vec<Trouble<'_>> {
    let mut out: Vec<Trouble> = Vec::new();
    for src in &st.sources {
        let violated = src.evaluation.verdict == Verdict::Violated;
        for c in &src.copies {
            let Some(cause) = cause(c, st) else { continue };
            let same = |t: &&mut Trouble| {
                t.cause == cause && t.copy.target == c.target && t.copy.disk == c.disk
            };
            match out.iter_mut().find(|t| same(t)) {
                Some(t) => {
                    t.shares.push(&src.source);
                    t.violated |= violated;
                }
                None => out.push(Trouble {
                    copy: c,
                    cause,
                    shares: vec![&src.source],
                    violated,
                }),
            }
        }
    }
    out
}

/// "The nas copy (on site)", "The offsite copy on disk B (off site)".
fn copy_words(c: &TargetCopy) -> String {
    let place = match c.location {
        Site::Onsite => "on site",
        Site::Offsite => "off site",
    };
    match &c.disk {
        Some(d) => format!("The {} copy on disk {d} ({place})", c.target),
        None => format!("The {} copy ({place})", c.target),
    }
}

fn storage_words(medium: &str) -> &'static str {
    match medium {
        "nas" => "NAS share",
        "removable-disk" => "disk",
        _ => "storage",
    }
}

impl Trouble<'_> {
    fn sentence(&self, st: &ScheduleStatus) -> String {
        let copy = copy_words(self.copy);
        let shares = list(&self.shares);
        let n = &st.schedule;
        let storage = storage_words(&self.copy.medium);
        match self.cause {
            Cause::NotMounted => format!(
                "{copy} was not found: its {storage} looks not mounted, so it does not count for {shares}. The technician should mount the {storage} (nothing was written in its place), then check with firesafe status {n}."
            ),
            Cause::Unreadable => format!(
                "{copy} could not be read when this report was made, so it does not count for {shares}. The technician should find out why (the reason is in the appendix, under Copies now), fix it and check with firesafe status {n}."
            ),
            Cause::DataMissing => format!(
                "Part of {} is missing: the newest backup of {shares} there could not be restored in full, so it does not count. The technician should repair it from another copy (firesafe repair {n}).",
                lower_first(&copy)
            ),
            Cause::NoBackup => format!(
                "{copy} holds no complete backup of {shares}. The technician should bring it up to date (firesafe run {n}) and find out why it has none."
            ),
            Cause::OutOfDate => format!(
                "{copy} of {shares} is older than the policy allows ({} hours), so it does not count. The technician should bring it up to date (firesafe run {n}) and find out why it fell behind.",
                st.max_age_hours
            ),
        }
    }
}

fn lower_first(s: &str) -> String {
    let mut c = s.chars();
    match c.next() {
        Some(f) => f.to_lowercase().chain(c).collect(),
        None => String::new(),
    }
}

/// Every problem with the copies now, one plain sentence each with its light (red when a share
/// it affects is VIOLATED), then shares short of the policy for no reason found in a copy (too
/// few targets configured), then copies whose keys differ.
pub(super) fn sentences(st: &ScheduleStatus) -> Vec<(Light, String)> {
    let troubles = troubles(st);
    let mut out: Vec<(Light, String)> = troubles
        .iter()
        .map(|t| {
            let light = if t.violated { Light::Red } else { Light::Amber };
            (light, t.sentence(st))
        })
        .collect();
    let found: Vec<&str> = troubles.iter().flat_map(|t| t.shares.clone()).collect();
    let short: Vec<&str> = st
        .sources
        .iter()
        .filter(|s| s.evaluation.verdict != Verdict::Ok && !found.contains(&s.source.as_str()))
        .filter(|s| st.key_differences.is_empty() || s.evaluation.verdict == Verdict::Violated)
        .map(|s| s.source.as_str())
        .collect();
    if !short.is_empty() {
        out.push((
            Light::Red,
            format!(
                "{} {} fewer copies than the school's rule of {} copies on {} kinds of storage with {} away from the school, although every copy was read. The technician should add the missing copy to the schedule (schedules/{}.toml).",
                list(&short),
                if short.len() == 1 { "has" } else { "have" },
                st.min_copies,
                st.min_media,
                st.min_offsite,
                st.schedule
            ),
        ));
    }
    if !st.key_differences.is_empty() {
        out.push((
            Light::Amber,
            format!(
                "The copies of {0} do not all hold the same keys, so if one copy were lost, a key the school counts on might not open the others. The technician should carry the keys to every copy (firesafe sync {0}) and check them with firesafe key list --schedule {0}.",
                st.schedule
            ),
        ));
    }
    out
}
