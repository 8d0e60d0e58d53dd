//! Snapshot manifests: what was backed up, from where, when, and how it went.
//!
//! A snapshot is the school policy's "clearly marked stating what they are and when they were
//! taken": it names its source (the share label), the host and paths it read, the start and end
//! of the run, tags, the program version and its parent, and carries the run's statistics and
//! warnings. This is the data only; reading and writing them is [`crate::store::snapshot`].

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::Id;

/// A file or directory that could not be read during a backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    pub path: String,
    pub message: String,
}

/// Counts for one backup run.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotStats {
    pub files: u64,
    pub dirs: u64,
    pub others: u64,
    /// Total size of the files in the snapshot.
    pub bytes: u64,
    /// Files read because they were new or changed since the parent.
    pub files_new: u64,
    pub files_changed: u64,
    /// Files recorded from the parent without reading them.
    pub files_unchanged: u64,
    /// Files of the parent snapshot missing from this one.
    #[serde(default)]
    pub files_removed: u64,
    /// New files whose content is a removed file's (moved or renamed).
    #[serde(default)]
    pub files_moved: u64,
    pub bytes_read: u64,
    /// Blobs this run added to the repository.
    pub blobs_added: u64,
    /// Plaintext bytes of those blobs.
    pub bytes_added: u64,
    /// Bytes those blobs take in packs (after compression).
    pub bytes_stored: u64,
    pub packs_added: u64,
}

/// What a source name may be, in words for an error message.
pub const PLAIN_NAME_RULE: &str =
    "use letters, digits, '-', '_' and '.', starting with a letter or digit (at most 64)";

/// Whether `name` may name a source (see [`PLAIN_NAME_RULE`]). Snapshots are kept, pruned and
/// restored by their source name, and `restore` makes a directory of it, so it is a plain
/// word: no separators, no control characters, nothing a terminal would act on.
pub fn is_plain_name(name: &str) -> bool {
    name.len() <= 64
        && name
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphanumeric())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// One snapshot, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    /// The share label (`curriculum`, `admin`, ...).
    pub source: String,
    pub host: String,
    /// The paths read, as given (absolute).
    pub paths: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub program_version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent: Option<Id>,
    /// The root tree: one entry per backed-up path, named by its last component.
    pub tree: Id,
    /// True when some files could not be read (see `warnings`).
    pub partial: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<Warning>,
    pub stats: SnapshotStats,
    /// Set when the backup saw signs of ransomware in what changed since the parent snapshot:
    /// the snapshot is kept as evidence, and is not clean until a technician accepts it (a
    /// `decisions/ID` record, see [`Decision`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suspect: Option<Suspect>,
}

/// Why a snapshot is suspect: its score against the schedule's threshold, and each signal in
/// plain words with counts and example paths.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Suspect {
    /// 0-100: how strongly the signals together point at an attack.
    pub score: u32,
    /// The threshold the score reached (from the schedule's `[ransomware]` table).
    pub threshold: u32,
    /// One short subject line for alerts: "4,312 of 9,870 files changed, 2,105 renamed to .locked".
    pub headline: String,
    pub signals: Vec<Signal>,
}

/// One signal that counted towards a suspect snapshot.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Signal {
    /// `changed`, `removed`, `renamed`, `new-extensions`, `ransom-extension`, `ransom-note`,
    /// `content-changed-character`.
    pub kind: String,
    /// The plain sentence: "2,105 files were renamed to the extension .locked".
    pub reason: String,
    /// How many files it concerns.
    pub count: u64,
    /// Up to a few example paths (as stored in the snapshot, `/admin/...`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub examples: Vec<String>,
}

/// A technician's decision about a suspect snapshot, sealed in the repository as
/// `decisions/ID` (replicated like drills and audit records).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// The snapshot decided on (its full id).
    pub snapshot: Id,
    pub source: String,
    pub verdict: Verdict,
    /// Who decided (the login name), on which machine, when, and why.
    pub who: String,
    pub host: String,
    pub time: DateTime<Utc>,
    pub note: String,
    /// When the snapshot decided on was taken, so that the incident it starts is known after
    /// prune has forgotten the snapshot (absent in decisions made before this field existed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken: Option<DateTime<Utc>>,
}

/// What the technician decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// A false alarm: the snapshot counts as clean again.
    Accepted,
    /// A real attack: the snapshot stays suspect, and prune keeps holding the source's older
    /// snapshots until the hold is lifted.
    Confirmed,
    /// After a confirmed attack: the technician lifts the hold on pruning (the snapshot stays
    /// suspect, never a restore point).
    Lifted,
}

/// A snapshot with its id.
#[derive(Clone, Debug)]
pub struct Listed {
    pub id: Id,
    pub snapshot: Snapshot,
}
