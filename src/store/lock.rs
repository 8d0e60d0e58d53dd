//! Target locks: who is writing to a target, so that `prune` never deletes what a backup or a
//! copy is using.
//!
//! A lock is an object `locks/ID` (plaintext JSON, `ID` random) that its holder rewrites every
//! [`REFRESH`] and deletes when done. Writers (backup, replication) hold *shared* locks; prune
//! holds an *exclusive* one. Locks need no conditional writes, so they work the same on stores
//! that ignore `If-None-Match` (Garage): each process writes its own object and then lists.
//!
//! # Why two holders cannot both proceed
//!
//! A holder first writes its lock object, then lists `locks/`. Prune proceeds only if its list
//! shows no other live lock; a writer proceeds only once its list shows no live exclusive lock
//! (it waits, keeping its own lock, while one exists). Suppose prune P and writer W both
//! proceeded. P's list did not show W's lock, so P listed before W's write finished; W's list
//! came after W's write, hence after P's write and before P's lock was deleted (P deletes it only
//! when it has finished or given up), so W saw P's exclusive lock and waited: a contradiction.
//! This needs only read-after-write consistency of listings, which S3 (since 2020), SeaweedFS,
//! Garage and local filesystems give.
//!
//! # Stale locks
//!
//! A lock not refreshed for [`STALE`] (by its own `refreshed` time), or held by a process on this
//! host that no longer exists, is stale and ignored: a killed backup never blocks pruning for
//! long. A holder whose refreshes fail could be judged stale by a prune elsewhere, so before
//! writing a snapshot a writer calls [`TargetLock::ensure_fresh`], which fails unless a refresh
//! succeeded within [`STALE`] minus [`MARGIN`] and no two successful refreshes (nor the first
//! and the lock's creation) were ever further apart than that: a holder whose lock lapsed, even
//! once, may have been overtaken by a prune. The margin covers the snapshot write and clock
//! differences between hosts.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::id::Id;
use crate::store::target::Target;

pub const LOCKS: &str = "locks";

/// How often a holder rewrites its lock.
pub const REFRESH: Duration = Duration::from_secs(120);
/// How long an unrefreshed lock counts as held.
pub const STALE: Duration = Duration::from_secs(600);
/// What a writer keeps in hand before `STALE` when it writes a snapshot.
pub const MARGIN: Duration = Duration::from_secs(300);
/// How long a writer waits for a prune to finish.
const WAIT: Duration = Duration::from_secs(3600);
/// Scratch files older than this (a day, the prune grace period's default) are left by killed
/// backups.
pub const SCRATCH_AGE: Duration = Duration::from_secs(24 * 3600);
const POLL: Duration = Duration::from_secs(2);

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LockKind {
    Shared,
    Exclusive,
}

/// The content of a lock object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LockInfo {
    pub kind: LockKind,
    /// What holds it: `backup curriculum`, `copy from nas`, `prune`.
    pub operation: String,
    pub host: String,
    pub pid: u32,
    pub started: DateTime<Utc>,
    pub refreshed: DateTime<Utc>,
}

impl LockInfo {
    /// Whether the holder is still there. `written` is when the store says the lock object was
    /// last written: a holder whose own clock is behind ours is not taken for gone as long as
    /// either time is recent.
    fn is_live(&self, written: DateTime<Utc>, now: DateTime<Utc>) -> bool {
        let stale = chrono::Duration::from_std(STALE).expect("small");
        if self.refreshed.max(written) + stale < now {
            return false;
        }
        if self.host == crate::store::repo::hostname() {
            return std::path::Path::new(&format!("/proc/{}", self.pid)).exists();
        }
        true
    }

    fn describe(&self) -> String {
        format!(
            "{} by {} (pid {}) since {}",
            self.operation,
            self.host,
            self.pid,
            self.started.format("%Y-%m-%d %H:%M UTC")
        )
    }
}

/// The lock objects on `target` whose holders are gone (not refreshed within [`STALE`], or a
/// process of this host that no longer runs), or that cannot be read and were written more than
/// [`STALE`] ago, with who held them; `except` is the caller's own.
pub async fn stale(target: &Target, except: Option<&str>) -> Result<Vec<(String, String)>> {
    let now = Utc::now();
    let mut out = Vec::new();
    for listed in target.list(LOCKS).await? {
        if Some(listed.key.as_str()) == except {
            continue;
        }
        let Some(bytes) = target.get_opt(&listed.key).await? else {
            continue;
        };
        match serde_json::from_slice::<LockInfo>(&bytes) {
            Ok(info) if !info.is_live(listed.modified, now) => {
                out.push((listed.key, info.describe()))
            }
            Ok(_) => {}
            Err(_) if listed.modified + chrono::Duration::from_std(STALE).expect("small") < now => {
                out.push((listed.key, "an unreadable lock object".into()))
            }
            Err(_) => {}
        }
    }
    Ok(out)
}

/// How well a holder has kept its lock refreshed.
struct Freshness {
    /// When the last refresh succeeded.
    last: DateTime<Utc>,
    /// The last good refresh before the first gap longer than `STALE - MARGIN`, if any.
    lapsed: Option<DateTime<Utc>>,
}

impl Freshness {
    /// Notes a successful refresh at `at`. A gap longer than the limit may have let another
    /// host judge the lock stale and go ahead; a later refresh cannot undo that.
    fn record(&mut self, at: DateTime<Utc>) {
        if self.lapsed.is_none() && at - self.last > limit() {
            self.lapsed = Some(self.last);
        }
        self.last = at;
    }
}

/// The longest a holder may go without a refresh and still trust its lock.
fn limit() -> chrono::Duration {
    chrono::Duration::from_std(STALE - MARGIN).expect("small")
}

/// A lock held on one target; refreshed in the background until released or dropped.
pub struct TargetLock {
    target: Target,
    key: String,
    fresh: Arc<Mutex<Freshness>>,
    refresher: tokio::task::JoinHandle<()>,
    released: bool,
    stale_removed: Vec<String>,
    scratch_removed: u64,
}

impl TargetLock {
    /// Takes a shared lock, waiting while a prune holds the target.
    pub async fn shared(target: &Target, operation: &str) -> Result<TargetLock> {
        let lock = Self::write(target, LockKind::Shared, operation).await?;
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let others = lock.others().await?;
            let Some(blocker) = others.iter().find(|l| l.kind == LockKind::Exclusive) else {
                return Ok(lock);
            };
            if tokio::time::Instant::now() >= deadline {
                let why = format!(
                    "target \"{}\" is locked ({}) and has been for over an hour; if no prune is running there, delete its locks/ objects",
                    target.name(),
                    blocker.describe()
                );
                lock.release().await;
                return Err(Error::Busy(why));
            }
            tracing::info!(target = target.name(), holder = %blocker.describe(), "waiting for a prune to finish");
            tokio::time::sleep(POLL).await;
        }
    }

    /// Takes the exclusive lock, or fails at once, naming who else is writing. Holding it, no
    /// one else writes the target: the lock objects of holders that are gone are deleted then
    /// (see [`TargetLock::stale_removed`]).
    pub async fn exclusive(target: &Target, operation: &str) -> Result<TargetLock> {
        let mut lock = Self::write(target, LockKind::Exclusive, operation).await?;
        let others = lock.others().await?;
        if let Some(other) = others.first() {
            let why = format!(
                "target \"{}\" is in use: {}; try again when it has finished",
                target.name(),
                other.describe()
            );
            lock.release().await;
            return Err(Error::Busy(why));
        }
        for (key, _) in stale(target, Some(&lock.key)).await? {
            target.delete(&key).await?;
            lock.stale_removed.push(key);
        }
        // Scratch files of killed backups (no backup runs now), once a day old.
        for (path, _) in target.old_scratch(SCRATCH_AGE) {
            if std::fs::remove_file(&path).is_ok() {
                lock.scratch_removed += 1;
            }
        }
        Ok(lock)
    }

    /// Scratch files of killed backups removed when this exclusive lock was taken.
    pub fn scratch_removed(&self) -> u64 {
        self.scratch_removed
    }

    /// The lock objects of holders that were gone, deleted when this exclusive lock was taken.
    pub fn stale_removed(&self) -> &[String] {
        &self.stale_removed
    }

    async fn write(target: &Target, kind: LockKind, operation: &str) -> Result<TargetLock> {
        let now = Utc::now();
        let info = LockInfo {
            kind,
            operation: operation.to_string(),
            host: crate::store::repo::hostname(),
            pid: std::process::id(),
            started: now,
            refreshed: now,
        };
        let key = format!("{LOCKS}/{}", Id::random().to_hex());
        target.put_replace(&key, encode(&info)).await?;
        let fresh = Arc::new(Mutex::new(Freshness {
            last: now,
            lapsed: None,
        }));
        let refresher = {
            let (target, key, fresh) = (target.clone(), key.clone(), Arc::clone(&fresh));
            tokio::spawn(async move {
                let mut info = info;
                loop {
                    tokio::time::sleep(REFRESH).await;
                    info.refreshed = Utc::now();
                    match target.put_replace(&key, encode(&info)).await {
                        Ok(()) => fresh.lock().expect("not poisoned").record(info.refreshed),
                        Err(e) => tracing::warn!(error = %e, "could not refresh a lock"),
                    }
                }
            })
        };
        Ok(TargetLock {
            target: target.clone(),
            key,
            fresh,
            refresher,
            released: false,
            stale_removed: Vec::new(),
            scratch_removed: 0,
        })
    }

    /// The live locks other than this one.
    async fn others(&self) -> Result<Vec<LockInfo>> {
        let now = Utc::now();
        let mut out = Vec::new();
        for listed in self.target.list(LOCKS).await? {
            if listed.key == self.key {
                continue;
            }
            // A lock deleted between the listing and the read, or unreadable, holds nothing.
            let Some(bytes) = self.target.get_opt(&listed.key).await? else {
                continue;
            };
            match serde_json::from_slice::<LockInfo>(&bytes) {
                Ok(info) if info.is_live(listed.modified, now) => out.push(info),
                Ok(_) => {}
                Err(_) => tracing::warn!(key = listed.key, "ignoring an unreadable lock object"),
            }
        }
        Ok(out)
    }

    /// Fails unless the lock was refreshed recently enough, and never went so long unrefreshed,
    /// that no prune can have judged it stale by the time the caller's next write lands.
    pub fn ensure_fresh(&self) -> Result<()> {
        let (fresh, lapsed) = {
            let f = self.fresh.lock().expect("not poisoned");
            (f.last, f.lapsed)
        };
        if let Some(since) = lapsed {
            return Err(Error::Busy(format!(
                "target \"{}\": this process could not refresh its lock for a while after {} (was the target unreachable or the machine asleep?), so a prune may have run meanwhile; stopped before writing a snapshot, run again",
                self.target.name(),
                since.format("%H:%M:%S UTC")
            )));
        }
        if Utc::now() - fresh > limit() {
            return Err(Error::Busy(format!(
                "target \"{}\": this process could not refresh its lock since {} (is the target reachable?); stopped before writing a snapshot, run again",
                self.target.name(),
                fresh.format("%H:%M:%S UTC")
            )));
        }
        Ok(())
    }

    /// Deletes the lock object. A failure is logged: the lock goes stale on its own.
    pub async fn release(mut self) {
        self.released = true;
        self.refresher.abort();
        if let Err(e) = self.target.delete(&self.key).await {
            tracing::warn!(error = %e, "could not remove a lock; it expires by itself");
        }
    }
}

impl Drop for TargetLock {
    fn drop(&mut self) {
        self.refresher.abort();
        if !self.released
            && let Ok(handle) = tokio::runtime::Handle::try_current()
        {
            let (target, key) = (self.target.clone(), self.key.clone());
            handle.spawn(async move {
                let _ = target.delete(&key).await;
            });
        }
    }
}

fn encode(info: &LockInfo) -> bytes::Bytes {
    serde_json::to_vec(info).expect("a lock serialises").into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lapse_in_refreshing_is_remembered_after_refreshes_resume() {
        let start: DateTime<Utc> = "2026-01-01T02:00:00Z".parse().expect("time");
        let mut f = Freshness {
            last: start,
            lapsed: None,
        };
        let step = chrono::Duration::from_std(REFRESH).expect("small");
        f.record(start + step);
        assert_eq!(f.lapsed, None);
        // Refreshes failed for longer than the limit, then one succeeded.
        let late = start + step + limit() + chrono::Duration::seconds(1);
        f.record(late);
        f.record(late + step);
        assert_eq!(f.lapsed, Some(start + step));
        assert_eq!(f.last, late + step);
    }
}
