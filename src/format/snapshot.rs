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
    pub bytes_read: u64,
    /// Blobs this run added to the repository.
    pub blobs_added: u64,
    /// Plaintext bytes of those blobs.
    pub bytes_added: u64,
    /// Bytes those blobs take in packs (after compression).
    pub bytes_stored: u64,
    pub packs_added: u64,
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
}

/// A snapshot with its id.
#[derive(Clone, Debug)]
pub struct Listed {
    pub id: Id,
    pub snapshot: Snapshot,
}
