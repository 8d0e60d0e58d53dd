//! What verification and restore drills record: the evidence the governors' report is built
//! from. Each record is appended as one JSON line to the state directory, and drill records are
//! also stored, sealed, in the repository (`drills/ID`), so the history survives the loss of the
//! server.
//!
//! ```text
//! STATE/verify.jsonl     one VerifyRecord per target per verification run
//! STATE/drills.jsonl     one DrillRecord per source per target per drill
//! STATE/coverage/T.json  when each object of target T was last read back (rotating reads)
//! ```

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::store::state::{StateDir, append_line, read_lines};

/// One finding of a verification: an object that is damaged, missing, or differs between
/// targets, and what it affects.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// The object key (`data/ab/ab12…`, `index/…`, `snapshots/…`).
    pub object: String,
    /// What is wrong, in one sentence.
    pub problem: String,
    /// `repaired from TARGET`, `not repaired: no healthy copy`, or empty when repair was not
    /// asked for.
    #[serde(default)]
    pub repair: String,
    /// Snapshots (short ids and source) and paths affected, when known.
    #[serde(default)]
    pub affects: Vec<String>,
}

/// One verification of one target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct VerifyRecord {
    pub schedule: String,
    pub target: String,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// Structure check: every snapshot's trees read, every referenced pack present.
    pub structure_checked: bool,
    /// Packs whose bytes were read back and verified this time, and their size.
    pub packs_read: u64,
    pub bytes_read: u64,
    /// All packs on the target and their size, at the time.
    pub packs_total: u64,
    pub bytes_total: u64,
    /// Share of the target's bytes read back within the last 30 and 90 days, 0.0–1.0, as of
    /// this run; and when every byte was last read within one period (a complete read).
    pub coverage_30d: f64,
    pub coverage_90d: f64,
    pub last_complete_read: Option<DateTime<Utc>>,
    /// Objects compared with the other targets' copies.
    pub compared: u64,
    pub findings: Vec<Finding>,
    /// `pass` (no findings, or all repaired), `fail` (findings left), `error` (could not run).
    pub result: CheckOutcome,
    /// Why it could not run, for `error`.
    #[serde(default)]
    pub error: String,
}

/// How a verification or a drill ended; written `pass`, `fail` or `error` in the records.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckOutcome {
    /// Nothing wrong was found (or everything found was repaired).
    Pass,
    /// It ran and found something wrong.
    Fail,
    /// It could not run.
    Error,
}

impl CheckOutcome {
    /// The word written in the records.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckOutcome::Pass => "pass",
            CheckOutcome::Fail => "fail",
            CheckOutcome::Error => "error",
        }
    }

    pub fn passed(self) -> bool {
        self == CheckOutcome::Pass
    }
}

impl std::str::FromStr for CheckOutcome {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<CheckOutcome, String> {
        [CheckOutcome::Pass, CheckOutcome::Fail, CheckOutcome::Error]
            .into_iter()
            .find(|o| o.as_str() == s)
            .ok_or_else(|| format!("\"{s}\" is not a result"))
    }
}

impl std::fmt::Display for CheckOutcome {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl PartialEq<&str> for CheckOutcome {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// What kind of restore drill.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DrillKind {
    /// A random sample of files, compared with the snapshot and the live share.
    #[default]
    Sample,
    /// A whole share, timed: gives the recovery time (RTO).
    Full,
    /// A whole share from the offsite target only, with the recovery key.
    SiteLoss,
}

/// A file whose restored bytes were not what they should be.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Mismatch {
    pub path: String,
    pub problem: String,
}

/// One drill of one source from one target.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DrillRecord {
    /// Random id, also the name of the drill's object in the repository.
    pub id: String,
    pub schedule: String,
    pub kind: DrillKind,
    pub source: String,
    pub target: String,
    /// The snapshot restored (full id) and when it was taken.
    pub snapshot: String,
    pub snapshot_taken: DateTime<Utc>,
    pub started: DateTime<Utc>,
    pub finished: DateTime<Utc>,
    /// The seed that chose the sample (sample drills), so the same sample can be drawn again.
    pub seed: Option<u64>,
    /// Files and bytes restored, and how long the restore itself took.
    pub files: u64,
    pub bytes: u64,
    pub restore_seconds: f64,
    /// Measured restore throughput, and the time a restore of the whole share (its size in the
    /// snapshot) would take at that rate: the recovery time from this copy.
    pub bytes_per_second: f64,
    pub share_bytes: u64,
    pub estimated_recovery_seconds: f64,
    /// The policy's recovery time objective, in hours, when the schedule sets one.
    pub rto_hours: Option<f64>,
    /// Files that differ from the snapshot's own hashes or could not be restored: failures.
    pub mismatches: Vec<Mismatch>,
    /// Files that restored correctly but differ from the live share because they changed since
    /// the snapshot: not failures, reported for information.
    pub changed_since: u64,
    /// Files compared with the live share and found identical.
    pub live_identical: u64,
    /// Which key opened the repository: `schedule key` or `recovery key (FILE)`.
    pub key: String,
    /// `pass` or `fail`.
    pub result: CheckOutcome,
    /// Why it failed, in one sentence, when it did.
    #[serde(default)]
    pub reason: String,
}

impl StateDir {
    pub fn append_verify(&self, record: &VerifyRecord) -> Result<()> {
        append_line(&self.path().join("verify.jsonl"), record)
    }

    pub fn verify_records(&self) -> Result<Vec<VerifyRecord>> {
        read_lines(&self.path().join("verify.jsonl"))
    }

    pub fn append_drill(&self, record: &DrillRecord) -> Result<()> {
        append_line(&self.path().join("drills.jsonl"), record)
    }

    pub fn drill_records(&self) -> Result<Vec<DrillRecord>> {
        read_lines(&self.path().join("drills.jsonl"))
    }
}
