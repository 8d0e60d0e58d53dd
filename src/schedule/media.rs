//! Removable-disk pools: which disk of a rotation is attached, what each disk held when it was
//! last written, and the rotation log of disks going off site and coming back.
//!
//! A `kind = "path"` target with `pool = ["FIRESAFE-A", "UUID=..."]` is a set of disks the
//! technician rotates, each mounted at the target's `path` while attached and each holding its
//! own full copy of the repository (a run copies to the attached disk whatever it lacks). Before
//! anything reads or writes the target, the disk mounted there is identified:
//!
//! - the mount whose mount point is the longest prefix of `path` is found in the mount table, and
//!   its source device is compared (as a canonical path) with the devices that the pool's entries
//!   name in `/dev/disk/by-label` and `/dev/disk/by-uuid`;
//! - a disk of the pool: the target is that disk;
//! - another disk mounted at `path` itself: refused, by name (firesafe never writes to a disk it
//!   does not know, so a pupil's memory stick is never filled or mistaken for a backup);
//! - otherwise no disk is attached, and `path` is only a directory on another filesystem: the
//!   target is "not attached" and is left alone.
//!
//! For tests and for systems without udev, `FIRESAFE_DISK_DIR` names the directory holding
//! `by-label/` and `by-uuid/` (default `/dev/disk`) and `FIRESAFE_MOUNTINFO` the mount table
//! (default `/proc/self/mountinfo`).
//!
//! What is remembered lives in the state directory:
//!
//! ```text
//! STATE/media/TARGET.json     per disk: first and last written by a run, and the newest
//!                             snapshot of each source on it then
//! STATE/media/rotation.jsonl  one JSON line per move: a disk going off site or coming back
//! ```
//!
//! Where a disk is comes from the rotation log, corrected by what is seen: the attached disk is
//! on site whatever the log says, and a disk written by a run after it was recorded going off
//! site evidently came back. A disk recorded off site holds a copy as of when it was last
//! written; `firesafe status` counts the most recently written one as the offsite copy, marked
//! "as recorded", because it cannot be read.

use std::collections::BTreeMap;
use std::path::PathBuf;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};

use crate::config::{Config, Site, TargetSpec};
use crate::error::{Error, Result};
use crate::store::state::StateDir;

/// The newest complete snapshot of one source on a disk, when it was last written.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Held {
    pub source: String,
    /// Short snapshot id.
    pub snapshot: String,
    pub taken: DateTime<Utc>,
}

/// What is remembered about one disk's writes.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DiskRecord {
    pub first_written: Option<DateTime<Utc>>,
    pub last_written: Option<DateTime<Utc>>,
    /// As of `last_written`, one entry per source.
    #[serde(default)]
    pub snapshots: Vec<Held>,
}

/// One entry of the rotation log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Move {
    pub target: String,
    pub disk: String,
    /// Where the disk went.
    pub to: Site,
    /// When it moved (earlier than `recorded` when the move was back-dated with `--at`).
    pub at: DateTime<Utc>,
    pub recorded: DateTime<Utc>,
    pub who: String,
    pub host: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

fn media_dir(state: &StateDir) -> Result<PathBuf> {
    let dir = state.path().join("media");
    crate::store::state::private_dir(&dir, 0o700)?;
    Ok(dir)
}

/// The write records of a pool target's disks, by pool entry.
pub fn records(state: &StateDir, target: &str) -> Result<BTreeMap<String, DiskRecord>> {
    crate::store::state::read_json(
        &state.path().join("media").join(format!("{target}.json")),
        "is not a valid media record (move it aside to start afresh)",
    )
}

/// Records that a run wrote to `disk` of `target` at `at`, which then held `held` (the newest
/// snapshot of each of the run's sources; other sources' entries are kept).
pub fn record_written(
    state: &StateDir,
    target: &str,
    disk: &str,
    held: Vec<Held>,
    at: DateTime<Utc>,
) -> Result<()> {
    let mut all = records(state, target)?;
    let r = all.entry(disk.to_string()).or_default();
    r.first_written.get_or_insert(at);
    r.last_written = Some(at);
    r.snapshots
        .retain(|h| !held.iter().any(|n| n.source == h.source));
    r.snapshots.extend(held);
    r.snapshots.sort_by(|a, b| a.source.cmp(&b.source));
    crate::store::state::write_json(&media_dir(state)?.join(format!("{target}.json")), &all)
}

/// The whole rotation log, in the order recorded.
pub fn log(state: &StateDir) -> Result<Vec<Move>> {
    crate::store::state::read_lines(&state.path().join("media").join("rotation.jsonl"))
}

/// Checks that `target` is a pool target of the configuration and `disk` one of its disks;
/// returns the target.
pub fn pool_target<'a>(
    config: &'a Config,
    target: &str,
    disk: Option<&str>,
) -> Result<&'a TargetSpec> {
    let Some(spec) = config.targets.get(target) else {
        let pools: Vec<&str> = config
            .targets
            .values()
            .filter(|t| !t.pool.is_empty())
            .map(|t| t.name.as_str())
            .collect();
        return Err(Error::Usage(format!(
            "there is no target \"{target}\" (no targets/{target}.toml); targets with a disk pool: {}",
            if pools.is_empty() {
                "none".to_string()
            } else {
                pools.join(", ")
            }
        )));
    };
    if spec.pool.is_empty() {
        return Err(Error::Usage(format!(
            "target \"{target}\" has no disk pool; add `pool = [\"LABEL\", ...]` to targets/{target}.toml to rotate disks"
        )));
    }
    if let Some(d) = disk
        && !spec.pool.iter().any(|p| p == d)
    {
        return Err(Error::Usage(format!(
            "\"{d}\" is not a disk of target \"{target}\"; its pool is {}",
            spec.pool.join(", ")
        )));
    }
    Ok(spec)
}

/// Who is at the keyboard: the user behind sudo, else the user.
pub fn who() -> String {
    std::env::var("SUDO_USER")
        .ok()
        .filter(|u| !u.is_empty())
        .or_else(|| std::env::var("USER").ok().filter(|u| !u.is_empty()))
        .unwrap_or_else(|| "unknown".to_string())
}

/// Appends a move to the rotation log.
pub fn record_move(state: &StateDir, m: &Move) -> Result<()> {
    crate::store::state::append_line(&media_dir(state)?.join("rotation.jsonl"), m)
}

/// Reads a time given on the command line: RFC 3339 (`2026-03-02T08:00:00Z`), or a local
/// `YYYY-MM-DD HH:MM` or `YYYY-MM-DD` (noon). A time in the future is refused.
pub fn parse_time(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>> {
    use chrono::{NaiveDate, NaiveDateTime, TimeZone};
    let bad = || {
        Error::Usage(format!(
            "--at \"{text}\" is not a time; write it as 2026-03-02, \"2026-03-02 08:30\" (local time) or 2026-03-02T08:30:00Z"
        ))
    };
    let t = if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        t.with_timezone(&Utc)
    } else {
        let naive = NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M")
            .or_else(|_| NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M"))
            .or_else(|_| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .map(|d| d.and_hms_opt(12, 0, 0).expect("noon"))
            })
            .map_err(|_| bad())?;
        chrono::Local
            .from_local_datetime(&naive)
            .earliest()
            .ok_or_else(bad)?
            .with_timezone(&Utc)
    };
    if t > now + Duration::minutes(5) {
        return Err(Error::Usage(format!(
            "--at {text} is in the future; give the time the disk really moved"
        )));
    }
    Ok(t)
}

/// Where a disk is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Place {
    /// Mounted at the target's path now (so on site).
    Attached,
    Onsite,
    Offsite,
}

impl std::fmt::Display for Place {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Place::Attached => "attached",
            Place::Onsite => "onsite",
            Place::Offsite => "offsite",
        })
    }
}

/// One disk of a pool, as seen and as recorded.
#[derive(Clone, Debug, Serialize)]
pub struct DiskStatus {
    pub disk: String,
    pub place: Place,
    /// Set when the place is not what the log says: the disk was written after it was recorded
    /// going off site, or it is attached though recorded off site.
    pub unrecorded_return: bool,
    pub first_written: Option<DateTime<Utc>>,
    pub last_written: Option<DateTime<Utc>>,
    /// The newest snapshot of each source on the disk, as of `last_written`.
    pub snapshots: Vec<Held>,
    /// The last recorded move.
    pub last_moved: Option<DateTime<Utc>>,
}

/// A pool target's disks, which is attached, and whether rotation is overdue.
#[derive(Clone, Debug, Serialize)]
pub struct PoolStatus {
    pub target: String,
    pub rotate_days: Option<u32>,
    /// The disk attached now, if one of the pool is.
    pub attached: Option<String>,
    /// Why no disk of the pool is usable now, if none is.
    pub attach_error: Option<String>,
    pub disks: Vec<DiskStatus>,
    /// When a disk of the pool last went off site, by the rotation log.
    pub last_offsite: Option<DateTime<Utc>>,
    /// The disk whose copy counts as the offsite copy: the most recently written disk that is
    /// off site.
    pub offsite_copy: Option<String>,
    /// "rotation overdue: ..." when it is.
    pub warning: Option<String>,
}

impl PoolStatus {
    /// The offsite copy of a source, as recorded: disk and snapshot.
    pub fn offsite_held(&self, source: &str) -> Option<(&str, &Held)> {
        let name = self.offsite_copy.as_deref()?;
        let d = self.disks.iter().find(|d| d.disk == name)?;
        d.snapshots
            .iter()
            .find(|h| h.source == source)
            .map(|h| (name, h))
    }
}

fn days(n: u32) -> String {
    format!("{n} day{}", if n == 1 { "" } else { "s" })
}

/// Puts together what is seen (`attached`: the result of [`crate::store::target::disk::attached`]) and what is recorded
/// about a pool target's disks, at `now`.
///
/// Rotation is overdue when `rotate_days` is set and no disk of the pool has gone off site
/// within that many days (counted from the first write to any disk when none ever has).
pub fn pool_status(
    spec: &TargetSpec,
    attached: &Result<Option<String>>,
    records: &BTreeMap<String, DiskRecord>,
    moves: &[Move],
    now: DateTime<Utc>,
) -> PoolStatus {
    let attached_disk = attached.as_ref().ok().cloned().flatten();
    let mine: Vec<&Move> = moves.iter().filter(|m| m.target == spec.name).collect();
    let mut disks = Vec::new();
    for disk in &spec.pool {
        let record = records.get(disk).cloned().unwrap_or_default();
        // The latest move by when it happened; of two at one time, the one recorded later.
        let last = mine
            .iter()
            .enumerate()
            .filter(|(_, m)| &m.disk == disk)
            .max_by_key(|(i, m)| (m.at, *i))
            .map(|(_, m)| *m);
        let recorded_offsite = last.is_some_and(|m| m.to == Site::Offsite);
        let written_since = last.zip(record.last_written).is_some_and(|(m, w)| w > m.at);
        let (place, unrecorded_return) = if attached_disk.as_deref() == Some(disk.as_str()) {
            (Place::Attached, recorded_offsite)
        } else if recorded_offsite && !written_since {
            (Place::Offsite, false)
        } else {
            (Place::Onsite, recorded_offsite)
        };
        disks.push(DiskStatus {
            disk: disk.clone(),
            place,
            unrecorded_return,
            first_written: record.first_written,
            last_written: record.last_written,
            snapshots: record.snapshots,
            last_moved: last.map(|m| m.at),
        });
    }
    let last_offsite = mine
        .iter()
        .filter(|m| m.to == Site::Offsite && spec.pool.contains(&m.disk))
        .map(|m| m.at)
        .max();
    let offsite_copy = disks
        .iter()
        .filter(|d| d.place == Place::Offsite && d.last_written.is_some())
        .max_by_key(|d| d.last_written)
        .map(|d| d.disk.clone());
    let warning = spec.rotate_days.and_then(|r| {
        let first_write = disks.iter().filter_map(|d| d.first_written).min();
        let since = last_offsite.or(first_write)?;
        let age = (now - since).num_days();
        (now - since > Duration::days(i64::from(r))).then(|| match last_offsite {
            Some(_) => format!(
                "{}: rotation overdue: no disk has gone off site in {age} days; the policy says every {}",
                spec.name,
                days(r)
            ),
            None => format!(
                "{}: rotation overdue: no disk has gone off site since the pool was first written {age} days ago; the policy says every {}",
                spec.name,
                days(r)
            ),
        })
    });
    PoolStatus {
        target: spec.name.clone(),
        rotate_days: spec.rotate_days,
        attached: attached_disk,
        attach_error: attached.as_ref().err().map(|e| e.to_string()),
        disks,
        last_offsite,
        offsite_copy,
        warning,
    }
}

/// The status of every pool target in `names` (the targets of a schedule, or all): the attached
/// disk is identified now, the rest comes from the records in `state` (none without one).
pub fn pools(
    config: &Config,
    names: &[String],
    state: Option<&StateDir>,
    now: DateTime<Utc>,
) -> Result<Vec<PoolStatus>> {
    let moves = match state {
        Some(s) => log(s)?,
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for name in names {
        let Some(spec) = config.targets.get(name) else {
            continue;
        };
        if spec.pool.is_empty() {
            continue;
        }
        let Some(path) = &spec.path else { continue };
        let attached = crate::store::target::disk::attached(&spec.name, &spec.pool, path);
        let records = match state {
            Some(s) => records(s, name)?,
            None => BTreeMap::new(),
        };
        out.push(pool_status(spec, &attached, &records, &moves, now));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> TargetSpec {
        toml::from_str::<TargetSpec>(
            "kind = \"path\"\nlocation = \"offsite\"\nmedium = \"removable-disk\"\npath = \"/m\"\npool = [\"A\", \"B\"]\nrotate_days = 7\n",
        )
        .map(|mut t| {
            t.name = "usb".into();
            t
        })
        .unwrap()
    }

    fn at(day: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + day * 86_400, 0).unwrap()
    }

    fn moved(disk: &str, to: Site, day: i64) -> Move {
        Move {
            target: "usb".into(),
            disk: disk.into(),
            to,
            at: at(day),
            recorded: at(day),
            who: "tech".into(),
            host: "server".into(),
            note: None,
        }
    }

    fn written(day: i64) -> DiskRecord {
        DiskRecord {
            first_written: Some(at(0)),
            last_written: Some(at(day)),
            snapshots: vec![Held {
                source: "admin".into(),
                snapshot: format!("snap{day}"),
                taken: at(day),
            }],
        }
    }

    #[test]
    fn the_offsite_disk_and_an_overdue_rotation() {
        let spec = spec();
        let records =
            BTreeMap::from([("A".to_string(), written(1)), ("B".to_string(), written(3))]);
        let moves = vec![moved("A", Site::Offsite, 2)];
        let s = pool_status(&spec, &Ok(Some("B".into())), &records, &moves, at(5));
        assert_eq!(s.disks[0].place, Place::Offsite);
        assert_eq!(s.disks[1].place, Place::Attached);
        assert_eq!(s.offsite_held("admin").unwrap().1.snapshot, "snap1");
        assert!(s.warning.is_none());
        let s = pool_status(&spec, &Ok(Some("B".into())), &records, &moves, at(10));
        assert!(
            s.warning.as_deref().unwrap().contains("rotation overdue: no disk has gone off site in 8 days; the policy says every 7 days"),
            "{:?}",
            s.warning
        );
        // A written after it went off site: it came back without being recorded.
        let records = BTreeMap::from([("A".to_string(), written(4))]);
        let s = pool_status(&spec, &Ok(None), &records, &moves, at(5));
        assert_eq!(s.disks[0].place, Place::Onsite);
        assert!(s.disks[0].unrecorded_return);
        assert!(s.offsite_copy.is_none());
        // A back-dated return recorded later still counts by when it happened.
        let moves = vec![moved("A", Site::Offsite, 2), moved("A", Site::Onsite, 1)];
        let s = pool_status(&spec, &Ok(None), &BTreeMap::new(), &moves, at(3));
        assert_eq!(s.disks[0].place, Place::Offsite);
    }
}
