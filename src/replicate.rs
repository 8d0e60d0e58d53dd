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
use crate::lock::TargetLock;
use crate::repo::{AUDIT, CONFIG, DATA, DRILLS, FORGOTTEN, INDEX, KEYS, Repository, SNAPSHOTS};
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
    // Held on the receiving target until its snapshots are written (see `lock`).
    let lock = TargetLock::shared(to, "copy").await?;
    let mut report = ReplicateReport::default();
    // Snapshots a prune forgot on either side are not copied (the markers themselves are).
    let mut forgotten: HashSet<String> = HashSet::new();
    for t in [from, to] {
        for l in t.list(FORGOTTEN).await? {
            if let Some(id) = l.key.rsplit('/').next() {
                forgotten.insert(id.to_string());
            }
        }
    }
    let order = [KEYS, DATA, INDEX, FORGOTTEN, DRILLS, AUDIT, SNAPSHOTS];
    // The source is listed in the reverse of the order a backup writes, so that everything a
    // listed snapshot or index object refers to is listed too, even while a backup writes there.
    let mut listed: Vec<Vec<String>> = Vec::new();
    for dir in order.iter().rev() {
        listed.push(from.list(dir).await?.into_iter().map(|l| l.key).collect());
    }
    listed.reverse();
    for (dir, keys) in order.into_iter().zip(listed) {
        if dir == SNAPSHOTS {
            lock.ensure_fresh()?;
        }
        let have: HashSet<String> = to.list(dir).await?.into_iter().map(|l| l.key).collect();
        let missing: Vec<String> = keys
            .into_iter()
            .filter(|k| !have.contains(k))
            .filter(|k| {
                dir != SNAPSHOTS || !k.rsplit('/').next().is_some_and(|n| forgotten.contains(n))
            })
            .collect();
        let results: Vec<(String, Copied)> = futures::stream::iter(missing)
            .map(|key| async move {
                let bytes = from.get(&key).await?;
                // Markers are empty and named by the snapshot they stand for.
                let named = key
                    .rsplit('/')
                    .next()
                    .and_then(|n| n.parse::<Id>().ok())
                    .filter(|_| dir != FORGOTTEN);
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
    lock.release().await;
    Ok(report)
}

enum Copied {
    Created(u64),
    Existed,
    Damaged,
}
