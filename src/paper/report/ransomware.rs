//! Ransomware in the report: the first page's "Could ransomware or a break-in destroy every
//! copy?", answered from what the copies hold now (Object Lock retention read back from the
//! bucket, a rotated disk recorded off site), never from the settings alone; each suspect
//! snapshot as an incident (found, decided, restored), open until a technician decides; and, for
//! the appendix, what was read back and the raw signals behind each alarm.

use crate::config::Site;
use crate::format::snapshot::{Decision, Verdict};
use crate::paper::doc::{Block, Light};
use crate::paper::report::checks::Check;
use crate::paper::report::facts::{Guard, GuardState, ReportData, ScheduleData, SuspectIncident};
use crate::paper::report::words::{Clock, list};

/// What to do when no copy is out of the server's reach.
const WHAT_TO_DO: &str =
    "The technician should lock the offsite bucket (Object Lock) or rotate a USB disk off site.";

/// The first-page check: is there, for every schedule, a copy the nightly server cannot delete?
pub(super) fn check_immutable(d: &ReportData, c: &Clock) -> Check {
    let mut safe = Vec::new();
    let mut unsafe_ = Vec::new();
    for s in &d.schedules {
        match s
            .guards
            .iter()
            .find(|g| !matches!(g.state, GuardState::Not(_)))
        {
            Some(g) => safe.push(guard_words(d, s, g, c)),
            None => unsafe_.push(s),
        }
    }
    if unsafe_.is_empty() && !safe.is_empty() {
        return Check {
            light: Light::Green,
            headline: format!("No: {}.", safe.join("; ")),
            detail: "Ransomware on the server, or an intruder with its passwords, could damage the other copies but not this one.".into(),
        };
    }
    let names: Vec<&str> = unsafe_.iter().map(|s| s.name.as_str()).collect();
    let why: Vec<String> = unsafe_.iter().map(|s| why_not(s)).collect();
    Check {
        light: Light::Red,
        headline: if d.schedules.len() == 1 {
            "Yes: the server could delete every copy.".into()
        } else {
            format!(
                "Yes: the server could delete every copy of schedule {}.",
                list(&names)
            )
        },
        detail: format!("{} {WHAT_TO_DO}", why.join(" ")),
    }
}

/// "the offsite copy on cloud cannot be deleted before 12 March 2027 (Object Lock, read back
/// on 1 December 2026)".
fn guard_words(d: &ReportData, s: &ScheduleData, g: &Guard, c: &Clock) -> String {
    let site = match s.targets.iter().find(|t| t.name == g.target) {
        Some(t) if t.location == Site::Offsite => "offsite ",
        Some(_) => "onsite ",
        None => "",
    };
    match &g.state {
        GuardState::Locked { until, .. } => format!(
            "the {site}copy on {} cannot be deleted before {} (Object Lock, read back on {})",
            g.target,
            c.day(*until),
            c.day(d.generated)
        ),
        GuardState::DiskAway { disk, since } => format!(
            "disk {disk} of {} has been off site, out of the server's reach, since {}",
            g.target,
            c.day(*since)
        ),
        GuardState::Not(why) => why.clone(),
    }
}

/// Why a schedule has no copy out of the server's reach, in one or two sentences.
fn why_not(s: &ScheduleData) -> String {
    if s.guards.is_empty() {
        let names: Vec<&str> = s.targets.iter().map(|t| t.name.as_str()).collect();
        return format!(
            "{} {} the server writes to.",
            list(&names),
            if names.len() == 1 {
                "is a folder"
            } else {
                "are folders"
            }
        );
    }
    let parts: Vec<String> = s
        .guards
        .iter()
        .map(|g| {
            let why = match &g.state {
                GuardState::Not(w) => w.clone(),
                _ => String::new(),
            };
            match g.object_lock_days {
                Some(days) => format!("{}: object_lock_days = {days} is set, but {why}", g.target),
                None => format!("{}: {why}", g.target),
            }
        })
        .collect();
    format!("{}.", parts.join("; "))
}

/// The incidents of one schedule's suspect snapshots, each one plain sentence with its light.
pub(super) fn incident_risks(out: &mut Vec<(Light, String)>, s: &ScheduleData, c: &Clock) {
    for i in &s.suspects {
        out.push(incident(i, c));
    }
}

fn incident(i: &SuspectIncident, c: &Clock) -> (Light, String) {
    let found = format!(
        "Possible ransomware on the {} share: the backup of {} found {} (alarm score {} of 100; the alarm is at {}).",
        i.source,
        c.time(i.taken),
        i.suspect.headline.trim_end_matches('.'),
        i.suspect.score,
        i.suspect.threshold
    );
    let verdict = i
        .decisions
        .iter()
        .rev()
        .find(|d| d.verdict != Verdict::Lifted);
    let lifted = i
        .decisions
        .iter()
        .rev()
        .find(|d| d.verdict == Verdict::Lifted);
    let Some(v) = verdict else {
        return (
            Light::Red,
            format!(
                "{found} Nobody has decided yet whether it was an attack, so it is open. The technician should follow \"If you suspect ransomware\" on the recovery sheet (delete nothing, compare with the last clean backup, restore from it to a new folder) and record the decision with firesafe suspect confirm or accept."
            ),
        );
    };
    let decided = decided(v, c);
    if v.verdict == Verdict::Accepted {
        return (Light::Green, format!("{found} {decided} Nothing to do."));
    }
    let lifted = lifted.map_or(String::new(), |l| {
        format!(
            " {} lifted the hold on deleting older backups on {}.",
            l.who,
            c.day(l.time)
        )
    });
    let breach = "The school's policy counts an attack as a security breach: it should be reported as the policy says.";
    match &i.restored {
        Some(r) => (
            Light::Green,
            format!(
                "{found} {decided} On {} {} restored the share from the backup of {}, taken before the attack, to {}.{lifted} {breach}",
                c.day(r.started),
                r.user,
                c.time(r.snapshot_taken),
                if r.to.is_empty() {
                    "its folders".to_string()
                } else {
                    r.to.join(", ")
                }
            ),
        ),
        None => (
            Light::Amber,
            format!(
                "{found} {decided} No restore from the last clean backup is recorded since.{lifted} The technician should restore the share from {}@clean (to a new folder first) and check it. {breach}",
                i.source
            ),
        ),
    }
}

/// "On 13 November jo accepted it as a false alarm: \"the timetable export\"."
fn decided(v: &Decision, c: &Clock) -> String {
    let what = match v.verdict {
        Verdict::Accepted => "accepted it as a false alarm",
        _ => "confirmed it as an attack",
    };
    let note = if v.note.trim().is_empty() {
        String::new()
    } else {
        format!(": \"{}\"", v.note.trim())
    };
    format!("On {} {} {what}{note}.", c.day(v.time), v.who)
}

/// For the appendix: each S3 or pool target as read back, and each alarm's raw signals.
pub(super) fn appendix(b: &mut Vec<Block>, s: &ScheduleData, c: &Clock) {
    if !s.guards.is_empty() {
        b.push(Block::Subheading(
            "Copies the server cannot delete (read back now)".into(),
        ));
        let rows = s
            .guards
            .iter()
            .map(|g| {
                vec![
                    g.target.clone(),
                    g.object_lock_days
                        .map_or("not set".into(), |d| format!("{d} days")),
                    match &g.state {
                        GuardState::Locked { mode, until } => format!(
                            "yes: newest snapshot and index objects retained ({mode}) until {}",
                            c.time(*until)
                        ),
                        GuardState::DiskAway { disk, since } => {
                            format!(
                                "yes: disk {disk} recorded off site since {}",
                                c.time(*since)
                            )
                        }
                        GuardState::Not(why) => format!("no: {why}"),
                    },
                ]
            })
            .collect();
        b.push(Block::Table {
            widths: vec![0.2, 0.2, 0.6],
            header: vec![
                "Target".into(),
                "object_lock_days".into(),
                "Out of the server's reach".into(),
            ],
            rows,
        });
    }
    if s.suspects.is_empty() {
        return;
    }
    b.push(Block::Subheading(format!(
        "Suspect snapshots ({})",
        s.suspects.len()
    )));
    let mut items = Vec::new();
    for i in &s.suspects {
        let mut text = format!(
            "{} {} {}: score {} (threshold {}).",
            i.snapshot.short(),
            i.source,
            c.time(i.taken),
            i.suspect.score,
            i.suspect.threshold
        );
        for sig in &i.suspect.signals {
            text.push_str(&format!(" [{}] {} ({})", sig.kind, sig.reason, sig.count));
            if !sig.examples.is_empty() {
                text.push_str(&format!(": {}", sig.examples.join(", ")));
            }
            text.push('.');
        }
        for d in &i.decisions {
            text.push_str(&format!(
                " Decision {:?} by {} on {} at {}: {}.",
                d.verdict,
                d.who,
                d.host,
                c.time(d.time),
                d.note
            ));
        }
        if let Some(r) = &i.restored {
            text.push_str(&format!(
                " Restore {} by {} from {} ({}).",
                r.id, r.user, r.snapshot, r.result
            ));
        }
        items.push((None, text));
    }
    b.push(Block::Bullets(items));
}
