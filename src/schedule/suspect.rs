//! `suspect list|accept|confirm|lift --schedule NAME`: the decisions of every copy of a
//! schedule's repository read together, and a new decision written to every copy that opens:
//! the same sealed bytes (one `decisions/ID`) everywhere. A copy that is down is named; the next
//! run or sync carries the decision there (see [`crate::ops::replicate`]).

use crate::config::targets::open_schedule_repos;
use crate::config::{Config, ScheduleSpec};
use crate::error::Result;
use crate::format::crypto::Unlock;
use crate::format::snapshot::{Decision, Verdict};
use crate::id::Id;
use crate::ops::suspect::{self, SuspectEntry};
use crate::store::repo::Repository;
use crate::store::snapshot::Catalog;

/// What a decision with `--schedule` did.
#[derive(Debug)]
pub struct Decided {
    /// The `decisions/ID` written.
    pub id: Id,
    pub decision: Decision,
    /// The copies it was written to.
    pub done: Vec<String>,
    /// The copies not written, each a sentence naming the target and why.
    pub not_reached: Vec<String>,
}

/// The copies that open, their catalogs merged, and the targets not used.
async fn merged(
    config: &Config,
    schedule: &ScheduleSpec,
    unlock: &Unlock,
) -> Result<(Vec<Repository>, Catalog, Vec<String>)> {
    let (repos, notes) = open_schedule_repos(config, schedule, unlock).await?;
    let catalog = Catalog::load_all(&repos).await?;
    Ok((repos, catalog, notes))
}

/// The suspect snapshots and decisions of every copy, read together; and the targets not read.
pub async fn list(
    config: &Config,
    schedule: &ScheduleSpec,
    unlock: &Unlock,
) -> Result<(Vec<SuspectEntry>, Vec<String>)> {
    let (_, catalog, notes) = merged(config, schedule, unlock).await?;
    Ok((suspect::list(&catalog), notes))
}

/// Decides about the snapshot `spec` names, from what every copy holds, and writes the same
/// decision to every copy that opens.
pub async fn decide(
    config: &Config,
    schedule: &ScheduleSpec,
    unlock: &Unlock,
    spec: &str,
    verdict: Verdict,
    note: &str,
) -> Result<Decided> {
    let (repos, catalog, mut not_reached) = merged(config, schedule, unlock).await?;
    let decision = suspect::decide(&catalog, spec, verdict, note)?;
    let (id, bytes) = crate::store::decisions::seal(&repos[0], &decision);
    let mut done = Vec::new();
    for repo in &repos {
        let name = repo.target().name().to_string();
        match suspect::record(repo, id, bytes.clone()).await {
            Ok(()) => done.push(name),
            Err(e) => not_reached.push(format!("target \"{name}\" not changed: {e}")),
        }
    }
    Ok(Decided {
        id,
        decision,
        done,
        not_reached,
    })
}
