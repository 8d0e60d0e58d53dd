//! Suspect snapshots on one copy: which there are and what was decided about each, and a
//! technician's decision (accept, confirm, lift) made and stored as `decisions/ID`.
//!
//! A decision is built once ([`decide`]) from a catalog (of one copy, or the merged catalogs of
//! a schedule's copies), sealed once, and the same bytes are stored on each copy ([`record`]).

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::snapshot::{Decision, Signal, Verdict};
use crate::id::Id;
use crate::store::decisions::{self, Standing};
use crate::store::repo::Repository;
use crate::store::snapshot::Catalog;

/// One snapshot that is (or was) suspect, or that a technician decided about.
#[derive(Clone, Debug, Serialize)]
pub struct SuspectEntry {
    pub id: Id,
    pub short_id: String,
    pub source: String,
    pub taken: DateTime<Utc>,
    /// `SUSPECT` (undecided), `CONFIRMED`, `lifted`, `accepted` or `clean` (never flagged, no
    /// decision in force).
    pub standing: String,
    /// Whether prune holds the source because of it.
    pub holds: bool,
    pub score: Option<u32>,
    pub threshold: Option<u32>,
    pub headline: String,
    pub signals: Vec<Signal>,
    /// Every decision about it, oldest first.
    pub decisions: Vec<Decision>,
}

/// The snapshots the backup marked suspect or that a technician decided about, oldest first.
pub fn list(catalog: &Catalog) -> Vec<SuspectEntry> {
    catalog
        .snapshots
        .iter()
        .filter_map(|l| {
            let decided: Vec<Decision> = catalog
                .decisions
                .iter()
                .filter(|d| d.snapshot == l.id)
                .cloned()
                .collect();
            let suspect = l.snapshot.suspect.as_ref();
            if suspect.is_none() && decided.is_empty() {
                return None;
            }
            let standing = catalog.standing(l);
            Some(SuspectEntry {
                id: l.id,
                short_id: l.id.short(),
                source: l.snapshot.source.clone(),
                taken: l.snapshot.start,
                standing: standing.word().to_string(),
                holds: standing.holds(),
                score: suspect.map(|s| s.score),
                threshold: suspect.map(|s| s.threshold),
                headline: suspect.map(|s| s.headline.clone()).unwrap_or_default(),
                signals: suspect.map(|s| s.signals.clone()).unwrap_or_default(),
                decisions: decided,
            })
        })
        .collect()
}

/// The decision `verdict` about the snapshot `spec` names (an id or its first digits), by the
/// user running this process, checked against what was decided before: only a suspect snapshot
/// can be accepted, a snapshot already confirmed is not confirmed again, and only a confirmed
/// attack can be lifted. The note (why) must not be empty.
pub fn decide(catalog: &Catalog, spec: &str, verdict: Verdict, note: &str) -> Result<Decision> {
    let note = note.trim();
    if note.is_empty() {
        return Err(Error::Usage(
            "say why with --note \"...\": the decision is kept in the repository with your name"
                .into(),
        ));
    }
    let snap = catalog.resolve(spec, None)?;
    let id = snap.id.short();
    let standing = catalog.standing(snap);
    let refused = match (verdict, &standing) {
        (Verdict::Accepted, Standing::Clean) => Some(format!(
            "snapshot {id} is not suspect; there is nothing to accept"
        )),
        (Verdict::Accepted, Standing::Accepted(d)) => Some(format!(
            "snapshot {id} was already accepted by {} on {}",
            d.who,
            d.time.format("%Y-%m-%d %H:%M UTC")
        )),
        (Verdict::Confirmed, Standing::Confirmed(d)) => Some(format!(
            "snapshot {id} was already confirmed as an attack by {} on {}",
            d.who,
            d.time.format("%Y-%m-%d %H:%M UTC")
        )),
        (Verdict::Lifted, Standing::Confirmed(_)) => None,
        (Verdict::Lifted, _) => Some(format!(
            "snapshot {id} is not a confirmed attack ({}); only a confirmed attack's hold is lifted (`firesafe suspect confirm {id}` first, or `accept` for a false alarm)",
            standing.word()
        )),
        _ => None,
    };
    if let Some(why) = refused {
        return Err(Error::Usage(why));
    }
    Ok(Decision {
        snapshot: snap.id,
        source: snap.snapshot.source.clone(),
        verdict,
        who: crate::store::audit::who().0,
        host: crate::store::repo::hostname(),
        // Later than any decision before it, so that it is the one in force.
        time: latest_after(catalog, snap.id),
        note: note.to_string(),
        taken: Some(snap.snapshot.start),
    })
}

/// Now, or just after the latest decision about `snapshot` if the clock says otherwise.
fn latest_after(catalog: &Catalog, snapshot: Id) -> DateTime<Utc> {
    let now = Utc::now();
    catalog
        .decisions
        .iter()
        .filter(|d| d.snapshot == snapshot)
        .map(|d| d.time)
        .max()
        .map_or(now, |t| now.max(t + chrono::Duration::milliseconds(1)))
}

/// Stores a decision's sealed bytes (made once by [`decisions::seal`]) on one copy.
pub async fn record(repo: &Repository, id: Id, bytes: bytes::Bytes) -> Result<()> {
    decisions::put(repo, id, bytes).await
}
