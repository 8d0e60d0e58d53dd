//! The restore audit trail: who restored what, from which snapshot, to where, and how it went.
//!
//! Every restore (not a dry run, which writes nothing) is appended as one JSON line to
//! `STATE/audit.jsonl` and stored, sealed, in the repository as `audit/ID` (on every copy the
//! restore opened, the same bytes under the same name), so the trail survives the loss of the
//! server and travels with the repository when it is replicated.

use chrono::{DateTime, Utc};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::store::blobs::CopiesUsed;
use crate::store::repo::{AUDIT, Repository};
use crate::store::state::StateDir;

/// One restore, as audited.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// Random; also in the state directory's line, so the two can be matched.
    pub id: String,
    /// Who ran it: `$SUDO_USER` when run through sudo, else `$USER`; and the real uid.
    pub user: String,
    pub uid: u32,
    pub host: String,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// The snapshot (full id), its source and when it was taken.
    pub snapshot: String,
    pub source: String,
    pub snapshot_taken: DateTime<Utc>,
    /// Paths inside the snapshot; empty for the whole snapshot.
    pub paths: Vec<String>,
    /// Where it was restored to (the live directories, for an in-place restore).
    pub to: Vec<String>,
    pub in_place: bool,
    pub files: u64,
    pub bytes: u64,
    /// Files already there with the snapshot's content, left alone.
    pub unchanged: u64,
    /// Files that differ from the snapshot and were left alone.
    pub skipped: u64,
    /// Replaced files kept aside.
    pub kept: u64,
    /// Files that could not be restored.
    pub failed: u64,
    /// `complete`, `incomplete` (some files not restored or skipped) or `failed` (stopped).
    pub result: String,
    /// Why it stopped, for `failed`.
    #[serde(default)]
    pub error: String,
    /// Which copies the data came from.
    pub copies: CopiesUsed,
}

/// Who is running this process: `$SUDO_USER` (the person behind sudo) or `$USER`, and the real
/// uid.
pub fn who() -> (String, u32) {
    let uid = nix::unistd::getuid().as_raw();
    let name = ["SUDO_USER", "USER", "LOGNAME"]
        .iter()
        .find_map(|v| std::env::var(v).ok().filter(|s| !s.is_empty()))
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::getuid())
                .ok()
                .flatten()
                .map(|u| u.name)
        })
        .unwrap_or_else(|| format!("uid {uid}"));
    (name, uid)
}

/// A new random record id.
pub fn new_id() -> String {
    format!("{:016x}", rand::random::<u64>())
}

impl StateDir {
    /// Appends a restore to `STATE/audit.jsonl`.
    pub fn append_audit(&self, record: &AuditRecord) -> Result<()> {
        crate::store::state::append_line(&self.path().join("audit.jsonl"), record)
    }

    /// Every audited restore, oldest first; a torn line is skipped.
    pub fn audit_records(&self) -> Result<Vec<AuditRecord>> {
        crate::store::state::read_lines(&self.path().join("audit.jsonl"))
    }
}

/// Stores a record, sealed once, as `audit/ID` on every copy given; returns the copies it could
/// not be stored on, with why.
pub async fn store(copies: &[&Repository], record: &AuditRecord) -> Vec<(String, Error)> {
    let Some(first) = copies.first() else {
        return Vec::new();
    };
    let (id, bytes) = first.seal_value(record);
    let key = format!("{AUDIT}/{id}");
    let mut failed = Vec::new();
    for repo in copies {
        if let Err(e) = repo.target().put_new(&key, bytes.clone()).await {
            failed.push((repo.target().name().to_string(), e));
        }
    }
    failed
}

/// Every audit record in a repository, oldest first, and the objects that could not be read.
pub async fn load(repo: &Repository) -> Result<(Vec<AuditRecord>, Vec<(String, Error)>)> {
    let keys: Vec<String> = repo
        .target()
        .list(AUDIT)
        .await?
        .into_iter()
        .map(|l| l.key)
        .collect();
    let results: Vec<(String, Result<AuditRecord>)> = futures::stream::iter(keys)
        .map(|key| async move {
            let r = repo.load_sealed::<AuditRecord>("audit record", &key).await;
            (key, r)
        })
        .buffer_unordered(8)
        .collect()
        .await;
    let mut records = Vec::new();
    let mut damaged = Vec::new();
    for (key, r) in results {
        match r {
            Ok(rec) => records.push(rec),
            Err(e @ Error::Target { .. }) => return Err(e),
            Err(e) => damaged.push((key, e)),
        }
    }
    records.sort_by(|a, b| (a.started, &a.id).cmp(&(b.started, &b.id)));
    Ok((records, damaged))
}
