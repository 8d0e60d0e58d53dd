//! Keys on every copy: `key add|remove|passwd|list --schedule NAME` acts on every target of a
//! schedule, and [`review`] says where the copies' keys differ (for `status`).
//!
//! An envelope is made once and the same bytes are written to every copy, so `keys/ID` names
//! the same envelope everywhere; a removal writes the same sealed record `keys-removed/ID` to
//! every copy it reaches. A copy that is down is named, and the next run or sync carries the
//! envelope or the removal there (see [`crate::ops::replicate`]).

use age::secrecy::SecretString;
use serde::Serialize;

use crate::config::targets::open_schedule_repos;
use crate::config::{Config, ScheduleSpec};
use crate::error::Result;
use crate::format::crypto::{Recipient, Unlock};
use crate::id::Id;
use crate::ops::keys::{self, KeyEntry};
use crate::store::repo::Repository;

/// What `key add|remove|passwd --schedule` did.
#[derive(Debug)]
pub struct KeysChanged {
    pub id: Id,
    /// The copies changed.
    pub done: Vec<String>,
    /// The copies not changed, each a sentence naming the target and why.
    pub not_reached: Vec<String>,
}

/// One key of a schedule's repository and the copies that hold it.
#[derive(Clone, Debug, Serialize)]
pub struct HeldKey {
    #[serde(flatten)]
    pub entry: KeyEntry,
    /// The copies holding it, in the schedule's order.
    pub copies: Vec<String>,
}

/// The keys of every copy of a schedule's repository.
#[derive(Clone, Debug, Serialize)]
pub struct ScheduleKeys {
    /// The copies read, in the schedule's order.
    pub copies: Vec<String>,
    /// The targets not read, each a sentence naming the target and why.
    pub not_reached: Vec<String>,
    pub keys: Vec<HeldKey>,
}

async fn open_copies(
    config: &Config,
    schedule: &ScheduleSpec,
    unlock: &Unlock,
) -> Result<(Vec<(String, Repository)>, Vec<String>)> {
    let (repos, notes) = open_schedule_repos(config, schedule, unlock).await?;
    let named = repos
        .into_iter()
        .map(|r| (r.target().name().to_string(), r))
        .collect();
    Ok((named, notes))
}

/// Gives `who` an envelope on every copy of the schedule's repository that opens: the same
/// envelope (one `keys/ID`) everywhere.
pub async fn add(
    config: &Config,
    schedule: &ScheduleSpec,
    unlock: &Unlock,
    who: &Recipient,
    label: &str,
) -> Result<KeysChanged> {
    let (copies, mut not_reached) = open_copies(config, schedule, unlock).await?;
    let envelope = copies[0].1.make_envelope(who, label);
    let mut done = Vec::new();
    for (name, repo) in &copies {
        match keys::add_envelope(repo, &envelope).await {
            Ok(_) => done.push(name.clone()),
            Err(e) => not_reached.push(format!("target \"{name}\" not changed: {e}")),
        }
    }
    Ok(KeysChanged {
        id: envelope.id,
        done,
        not_reached,
    })
}

/// Removes the envelope whose id starts with `prefix` from every copy that opens, leaving the
/// same removal record on each. Refuses (changing nothing) when it is the only key on any copy,
/// or the one in use on any copy unless `force`.
pub async fn remove(
    config: &Config,
    schedule: &ScheduleSpec,
    unlock: &Unlock,
    prefix: &str,
    force: bool,
) -> Result<KeysChanged> {
    let (copies, mut not_reached) = open_copies(config, schedule, unlock).await?;
    let mut lists = Vec::new();
    for (_, repo) in &copies {
        lists.push(keys::list(repo).await?);
    }
    let mut union: Vec<KeyEntry> = Vec::new();
    for k in lists.iter().flatten() {
        if !union.iter().any(|u| u.id == k.id) {
            union.push(k.clone());
        }
    }
    let entry = keys::resolve(&union, prefix)?.clone();
    for ((name, _), list) in copies.iter().zip(&lists) {
        keys::check_removable(list, entry.id, force, Some(name))?;
    }
    let record = keys::removal_record(&copies[0].1, &entry);
    let mut done = Vec::new();
    for (name, repo) in &copies {
        match keys::apply_removal(repo, entry.id, &record).await {
            Ok(()) => done.push(name.clone()),
            Err(e) => not_reached.push(format!("target \"{name}\" not changed: {e}")),
        }
    }
    Ok(KeysChanged {
        id: entry.id,
        done,
        not_reached,
    })
}

/// Re-wraps the passphrase envelope whose id starts with `prefix` on every copy that opens, as
/// [`keys::passwd`] does on one: the same new envelope is written to and read back from each
/// copy, and the old one is removed, with the same removal record, from each copy where the new
/// one opens. A copy where it could not be written keeps the old one and is named (the next run
/// or sync carries both the new envelope and the removal there). `changed.id` is the new one.
pub async fn passwd(
    config: &Config,
    schedule: &ScheduleSpec,
    unlock: &Unlock,
    prefix: &str,
    new: &SecretString,
) -> Result<(keys::Rewrap, KeysChanged)> {
    let (copies, mut not_reached) = open_copies(config, schedule, unlock).await?;
    let union = union_of_keys(&copies).await?;
    let (entry, old_log_n) = keys::resolve_passphrase(&union, prefix)?;
    let first = &copies[0].1;
    let envelope = keys::rewrapped(first, entry, new);
    let record = keys::removal_record(first, entry);
    let mut done = Vec::new();
    for (name, repo) in &copies {
        if let Err(e) = keys::put_checked(repo, &envelope, new).await {
            not_reached.push(format!("target \"{name}\" not changed: {e}"));
            continue;
        }
        match keys::apply_removal(repo, entry.id, &record).await {
            Ok(()) => done.push(name.clone()),
            Err(e) => not_reached.push(format!(
                "target \"{name}\" has the new key, but the old one was not removed: {e}"
            )),
        }
    }
    let rewrap = keys::Rewrap {
        old: entry.id,
        old_log_n,
        new: envelope.id,
    };
    let changed = KeysChanged {
        id: envelope.id,
        done,
        not_reached,
    };
    Ok((rewrap, changed))
}

/// Every envelope on any copy, once each.
async fn union_of_keys(copies: &[(String, Repository)]) -> Result<Vec<KeyEntry>> {
    let mut union: Vec<KeyEntry> = Vec::new();
    for (_, repo) in copies {
        for k in keys::list(repo).await? {
            if !union.iter().any(|u| u.id == k.id) {
                union.push(k);
            }
        }
    }
    Ok(union)
}

/// Every key on any copy of the schedule's repository, with the copies holding it.
pub async fn list(
    config: &Config,
    schedule: &ScheduleSpec,
    unlock: &Unlock,
) -> Result<ScheduleKeys> {
    let (copies, not_reached) = open_copies(config, schedule, unlock).await?;
    let mut held: Vec<HeldKey> = Vec::new();
    for (name, repo) in &copies {
        for k in keys::list(repo).await? {
            match held.iter_mut().find(|h| h.entry.id == k.id) {
                Some(h) => h.copies.push(name.clone()),
                None => held.push(HeldKey {
                    entry: k,
                    copies: vec![name.clone()],
                }),
            }
        }
    }
    held.sort_by_key(|h| (h.entry.created, h.entry.id));
    Ok(ScheduleKeys {
        copies: copies.into_iter().map(|(n, _)| n).collect(),
        not_reached,
        keys: held,
    })
}

/// What `status` says of the schedule's keys: where the copies' keys differ, as sentences (an
/// envelope on some copies and not others, or one removed on one copy and still on another),
/// and any passphrase envelope with another work factor than new ones get. Empty when no copy
/// can be read (why it cannot is reported elsewhere).
pub async fn review(config: &Config, schedule: &ScheduleSpec, unlock: &Unlock) -> KeyReview {
    let Ok((copies, _)) = open_copies(config, schedule, unlock).await else {
        return KeyReview::default();
    };
    let named: Vec<(&str, &Repository)> = copies.iter().map(|(n, r)| (n.as_str(), r)).collect();
    match keys::compare(&named).await {
        Ok(compared) => KeyReview {
            differences: compared
                .differences
                .into_iter()
                .map(|d| {
                    format!(
                        "the copies' keys differ: {} (`firesafe sync {}` does it now)",
                        d.problem, schedule.name
                    )
                })
                .collect(),
            notices: compared
                .keys
                .iter()
                .filter_map(|k| keys::work_factor_notice(k, &schedule.name))
                .collect(),
        },
        Err(e) => KeyReview {
            differences: vec![format!("the copies' keys could not be compared: {e}")],
            notices: Vec::new(),
        },
    }
}

/// What `status` says about a schedule's keys.
#[derive(Debug, Default)]
pub struct KeyReview {
    /// Where the copies' keys differ: each makes every source at least DEGRADED.
    pub differences: Vec<String>,
    /// Passphrase envelopes with another scrypt work factor than new ones get (see
    /// [`keys::work_factor_notice`]): advice, not a risk to the copies.
    pub notices: Vec<String>,
}
