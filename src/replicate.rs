//! Replication: bring one target up to date with another by copying the objects it lacks.
//!
//! Every target of a schedule holds the same logical repository, object for object: objects are
//! encrypted once and are named by the hash of their bytes, so a copy is exact and checkable.
//! Objects are copied in the order a backup writes them (keys, packs, index objects, snapshots,
//! then `config` for a new target), so the receiving target is valid at every instant, and a
//! snapshot appears there only once everything it references is there. Content-addressed objects
//! are checked against their names before they are written, so damage is never copied.

use std::collections::HashSet;

use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};
use crate::id::Id;
use crate::repo::{CONFIG, DATA, INDEX, KEYS, Repository, SNAPSHOTS};
use crate::target::{Put, Target};

/// What a replication copied.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReplicateReport {
    pub copied: u64,
    pub bytes: u64,
    /// Objects skipped because the source copy is damaged (the receiving target lacks them).
    pub damaged: Vec<String>,
}

/// Copies to `to` every object of `from` that `to` lacks.
pub async fn replicate(from: &Target, to: &Target) -> Result<ReplicateReport> {
    let source_config = Repository::read_config(from).await?;
    let has_config = match Repository::read_config(to).await {
        Ok(c) if c.id == source_config.id => true,
        Ok(c) => {
            return Err(Error::Usage(format!(
                "target \"{}\" holds a different repository ({}) from target \"{}\" ({}); refusing to mix them",
                to.name(),
                c.id.short(),
                from.name(),
                source_config.id.short()
            )));
        }
        Err(Error::NotARepository { .. }) => false,
        Err(e) => return Err(e),
    };
    let mut report = ReplicateReport::default();
    for dir in [KEYS, DATA, INDEX, SNAPSHOTS] {
        let have: HashSet<String> = to.list(dir).await?.into_iter().map(|l| l.key).collect();
        let missing: Vec<String> = from
            .list(dir)
            .await?
            .into_iter()
            .map(|l| l.key)
            .filter(|k| !have.contains(k))
            .collect();
        let results: Vec<(String, Copied)> = futures::stream::iter(missing)
            .map(|key| async move {
                let bytes = from.get(&key).await?;
                let named = key.rsplit('/').next().and_then(|n| n.parse::<Id>().ok());
                if named.is_some_and(|id| Id::of_object(&bytes) != id) {
                    return Ok((key, Copied::Damaged));
                }
                let len = bytes.len() as u64;
                let copied = match to.put_new(&key, bytes).await? {
                    Put::Created => Copied::Created(len),
                    Put::Existed => Copied::Existed,
                };
                Ok::<_, Error>((key, copied))
            })
            .buffer_unordered(4)
            .try_collect()
            .await?;
        for (key, copied) in results {
            match copied {
                Copied::Created(len) => {
                    report.copied += 1;
                    report.bytes += len;
                }
                Copied::Existed => {}
                Copied::Damaged => report.damaged.push(key),
            }
        }
    }
    if !has_config {
        let bytes = from.get(CONFIG).await?;
        to.put_new(CONFIG, bytes).await?;
        report.copied += 1;
    }
    Ok(report)
}

enum Copied {
    Created(u64),
    Existed,
    Damaged,
}
