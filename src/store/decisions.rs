//! Technicians' decisions about suspect snapshots: sealed `decisions/ID` objects (ID = the hash
//! of the stored bytes, like `drills/ID`), and what they make of each snapshot.
//!
//! A snapshot's standing is its latest decision: accepted, it is clean again; confirmed, it stays
//! suspect and prune holds its source; lifted, it stays suspect but the hold ends. A suspect
//! snapshot with no decision is suspect and holds its source.

use crate::error::{Error, Result};
use crate::format::snapshot::{Decision, Listed, Verdict};
use crate::id::Id;
use crate::store::repo::{DECISIONS, Repository};

/// What a snapshot counts as, once the decisions about it are read.
#[derive(Clone, Debug, PartialEq)]
pub enum Standing {
    /// Not suspect, and nobody confirmed an attack in it.
    Clean,
    /// Suspect, and a technician accepted it as a false alarm: clean.
    Accepted(Decision),
    /// Suspect, and nobody has decided yet: its source is held from pruning.
    Suspect,
    /// A confirmed attack: suspect, and its source is held until the hold is lifted.
    Confirmed(Decision),
    /// A confirmed attack whose hold was lifted: still suspect, never a restore point.
    Lifted(Decision),
}

impl Standing {
    /// Whether the snapshot counts as clean (a restore point for `SOURCE@clean`).
    pub fn is_clean(&self) -> bool {
        matches!(self, Standing::Clean | Standing::Accepted(_))
    }

    /// Whether it holds its source's snapshots from pruning.
    pub fn holds(&self) -> bool {
        matches!(self, Standing::Suspect | Standing::Confirmed(_))
    }

    /// One word for listings: `clean`, `accepted`, `SUSPECT`, `CONFIRMED`, `lifted`.
    pub fn word(&self) -> &'static str {
        match self {
            Standing::Clean => "clean",
            Standing::Accepted(_) => "accepted",
            Standing::Suspect => "SUSPECT",
            Standing::Confirmed(_) => "CONFIRMED",
            Standing::Lifted(_) => "lifted",
        }
    }
}

/// The standing of `snapshot` given every decision read (of any snapshot, in any order): its
/// latest decision, or whether the backup marked it suspect.
pub fn standing(snapshot: &Listed, decisions: &[Decision]) -> Standing {
    match latest(snapshot.id, decisions) {
        Some(d) => match d.verdict {
            Verdict::Accepted => Standing::Accepted(d.clone()),
            Verdict::Confirmed => Standing::Confirmed(d.clone()),
            Verdict::Lifted => Standing::Lifted(d.clone()),
        },
        None if snapshot.snapshot.suspect.is_some() => Standing::Suspect,
        None => Standing::Clean,
    }
}

/// The decision in force about `snapshot`: the latest by time (ties by note), if any.
pub fn latest(snapshot: Id, decisions: &[Decision]) -> Option<&Decision> {
    decisions
        .iter()
        .filter(|d| d.snapshot == snapshot)
        .max_by(|a, b| (a.time, &a.note).cmp(&(b.time, &b.note)))
}

/// Every decision in a repository, oldest first, and the objects that could not be read.
pub async fn load(repo: &Repository) -> Result<(Vec<Decision>, Vec<(String, Error)>)> {
    let loaded = repo
        .load_all_sealed::<Decision>("decision", DECISIONS)
        .await?;
    let mut decisions: Vec<Decision> = loaded.read.into_iter().map(|(_, d)| d).collect();
    let damaged = loaded.damaged;
    decisions.sort_by_key(|d| (d.time, d.snapshot));
    Ok((decisions, damaged))
}

/// Seals a decision once, so that the same bytes (one `decisions/ID`) go to every copy.
pub fn seal(repo: &Repository, decision: &Decision) -> (Id, bytes::Bytes) {
    repo.seal_value(decision)
}

/// Stores sealed decision bytes made by [`seal`] (on this copy or another of the repository).
pub async fn put(repo: &Repository, id: Id, bytes: bytes::Bytes) -> Result<()> {
    repo.target()
        .put_new(&format!("{DECISIONS}/{id}"), bytes)
        .await?;
    Ok(())
}

/// Stores one decision on one copy; returns its id.
pub async fn save(repo: &Repository, decision: &Decision) -> Result<Id> {
    repo.save_sealed(DECISIONS, decision).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::snapshot::{Snapshot, SnapshotStats, Suspect};

    fn listed(n: u8, suspect: bool) -> Listed {
        Listed {
            id: Id([n; 32]),
            snapshot: Snapshot {
                source: "admin".into(),
                host: "h".into(),
                paths: vec![],
                tags: vec![],
                start: "2026-11-20T02:00:00Z".parse().expect("time"),
                end: "2026-11-20T02:00:00Z".parse().expect("time"),
                program_version: "0".into(),
                parent: None,
                tree: Id([0; 32]),
                partial: false,
                warnings: vec![],
                stats: SnapshotStats::default(),
                suspect: suspect.then(Suspect::default),
            },
        }
    }

    fn decided(n: u8, verdict: Verdict, time: &str) -> Decision {
        Decision {
            snapshot: Id([n; 32]),
            source: "admin".into(),
            verdict,
            who: "tech".into(),
            host: "h".into(),
            time: time.parse().expect("time"),
            note: "n".into(),
            taken: None,
        }
    }

    #[test]
    fn the_latest_decision_is_what_counts() {
        let s = listed(1, true);
        assert_eq!(standing(&s, &[]), Standing::Suspect);
        assert!(standing(&s, &[]).holds());
        assert_eq!(standing(&listed(2, false), &[]), Standing::Clean);
        let confirmed = decided(1, Verdict::Confirmed, "2026-11-20T09:00:00Z");
        let lifted = decided(1, Verdict::Lifted, "2026-11-27T09:00:00Z");
        let other = decided(2, Verdict::Accepted, "2026-11-28T09:00:00Z");
        let st = standing(&s, &[lifted.clone(), confirmed.clone(), other]);
        assert_eq!(st, Standing::Lifted(lifted));
        assert!(!st.holds() && !st.is_clean());
        let st = standing(&s, std::slice::from_ref(&confirmed));
        assert!(st.holds() && !st.is_clean());
        let accepted = decided(1, Verdict::Accepted, "2026-11-20T10:00:00Z");
        let st = standing(&s, &[confirmed, accepted]);
        assert!(st.is_clean() && !st.holds());
    }
}
