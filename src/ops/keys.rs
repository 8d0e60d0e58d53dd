//! Key envelopes: list, add, remove and re-wrap the keys that open a repository.
//!
//! Adding or removing an envelope writes or deletes only `keys/ID` and `keys/ID.info` (and, for a
//! removal, writes the record `keys-removed/ID` that carries it to the other copies); no data is
//! rewritten. Re-wrapping a passphrase envelope (`key passwd`) is an addition and a removal: the
//! new envelope is written and read back opening the repository before the old one goes.
//! Removing an envelope stops that key opening the repository; anyone who opened it before may
//! still hold its secrets (see the threat model in [`crate::format::crypto`]).
//!
//! Every copy of a repository should hold the same keys: [`differences`] says where they do not.

use std::path::Path;

use age::secrecy::SecretString;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::crypto::{self, MAX_SCRYPT_LOG_N, Recipient, SCRYPT_LOG_N, Unlock};
use crate::id::Id;
use crate::store::repo::{
    Envelope, KEYS, KEYS_REMOVED, KeyInfo, KeyRemoval, Repository, envelope_id, removed_envelopes,
};
use crate::store::target::Put;

/// One envelope as `key list` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct KeyEntry {
    pub id: Id,
    /// `x25519`, `passphrase`, or `unknown` when its info object is missing or unreadable.
    pub kind: String,
    pub label: String,
    pub recipient: Option<String>,
    pub created: Option<DateTime<Utc>>,
    pub host: Option<String>,
    /// The envelope this command opened the repository with.
    pub current: bool,
    /// For a passphrase envelope, its scrypt work factor (log2 N); one above
    /// [`MAX_SCRYPT_LOG_N`] is never tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrypt_log_n: Option<u8>,
}

impl KeyEntry {
    /// Whether opening this envelope would cost more than firesafe allows (it is skipped).
    pub fn too_costly(&self) -> bool {
        self.scrypt_log_n.is_some_and(|n| n > MAX_SCRYPT_LOG_N)
    }

    /// Whether this is a passphrase envelope that firesafe opens but made with another work
    /// factor than new ones get ([`SCRYPT_LOG_N`]): `key passwd` moves it to that one.
    pub fn outdated(&self) -> bool {
        self.scrypt_log_n
            .is_some_and(|n| n != SCRYPT_LOG_N && n <= MAX_SCRYPT_LOG_N)
    }
}

pub async fn list(repo: &Repository) -> Result<Vec<KeyEntry>> {
    let mut out = Vec::new();
    for l in repo.target().list(KEYS).await? {
        let Some(id) = envelope_id(&l.key) else {
            continue;
        };
        let info: Option<KeyInfo> = repo
            .load_sealed::<KeyInfo>("key info", &format!("{KEYS}/{id}.info"))
            .await
            .ok();
        out.push(KeyEntry {
            id,
            kind: info.as_ref().map_or("unknown".into(), |i| i.kind.clone()),
            label: info.as_ref().map_or(String::new(), |i| i.label.clone()),
            recipient: info.as_ref().and_then(|i| i.recipient.clone()),
            created: info.as_ref().map(|i| i.created),
            host: info.as_ref().map(|i| i.host.clone()),
            current: id == repo.envelope(),
            scrypt_log_n: match repo.target().get(&l.key).await {
                Ok(bytes) => crypto::scrypt_log_n(&bytes),
                Err(_) => None,
            },
        });
    }
    out.sort_by_key(|k| (k.created, k.id));
    Ok(out)
}

/// Generates a new age identity and writes it to `path`, which must not exist yet: created
/// with mode 0600 (never readable by others, not even for a moment) and synced to disk before
/// this returns. Returns the file's text and its public recipient (`age1...`).
pub fn create_identity_file(path: &Path) -> Result<(String, String)> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let (text, public) = crypto::generate_identity_file();
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::AlreadyExists => Error::Usage(format!(
                "{} already exists; refusing to overwrite a key file (choose another name)",
                path.display()
            )),
            _ => Error::local(path, "cannot create the key file", e),
        })?;
    f.write_all(text.as_bytes())
        .and_then(|_| f.sync_all())
        .map_err(|e| Error::local(path, "cannot write the key file", e))?;
    Ok((text, public))
}

pub async fn add(repo: &Repository, who: &Recipient, label: &str) -> Result<Id> {
    repo.add_envelope(who, label).await
}

/// Stores an envelope made once (with [`Repository::make_envelope`]) on one copy.
pub async fn add_envelope(repo: &Repository, envelope: &Envelope) -> Result<Id> {
    repo.put_envelope(envelope).await?;
    Ok(envelope.id)
}

/// The one envelope whose id starts with `prefix`.
pub fn resolve<'k>(keys: &'k [KeyEntry], prefix: &str) -> Result<&'k KeyEntry> {
    let matches: Vec<&KeyEntry> = keys
        .iter()
        .filter(|k| k.id.to_hex().starts_with(&prefix.to_ascii_lowercase()))
        .collect();
    match matches.as_slice() {
        [one] => Ok(*one),
        [] => Err(Error::NotFound(format!(
            "no key with id {prefix}; `firesafe key list` shows them"
        ))),
        _ => Err(Error::Usage(format!(
            "key id {prefix} is ambiguous; give more digits"
        ))),
    }
}

/// Refuses to remove `id` from a copy holding `keys` when it is the only one there, or the one
/// in use unless `force`.
pub fn check_removable(keys: &[KeyEntry], id: Id, force: bool, copy: Option<&str>) -> Result<()> {
    let Some(entry) = keys.iter().find(|k| k.id == id) else {
        return Ok(());
    };
    let on = copy.map(|c| format!(" on {c}")).unwrap_or_default();
    if keys.len() == 1 {
        return Err(Error::Usage(format!(
            "refusing to remove the only key{on}: the repository could never be opened again"
        )));
    }
    if entry.current && !force {
        return Err(Error::Usage(format!(
            "key {} is the one you opened the repository with{on}; pass --force to remove it anyway",
            entry.id.short()
        )));
    }
    Ok(())
}

/// The sealed removal record of `entry`, made once so that every copy gets the same bytes.
pub fn removal_record(repo: &Repository, entry: &KeyEntry) -> bytes::Bytes {
    let record = KeyRemoval {
        envelope: entry.id,
        kind: entry.kind.clone(),
        label: entry.label.clone(),
        removed: Utc::now(),
        user: crate::store::audit::who().0,
        host: crate::store::repo::hostname(),
    };
    repo.seal_value(&record).1
}

/// Removes envelope `id` from one copy: the removal record `keys-removed/ID` first (so that the
/// removal reaches the other copies even if this is interrupted), then `keys/ID` and its info.
pub async fn apply_removal(repo: &Repository, id: Id, record: &bytes::Bytes) -> Result<()> {
    let target = repo.target();
    // A record already there (a removal made before on this copy) is as good as this one.
    let _: Put = target
        .put_new(&format!("{KEYS_REMOVED}/{id}"), record.clone())
        .await?;
    target.delete(&format!("{KEYS}/{id}")).await?;
    target.delete(&format!("{KEYS}/{id}.info")).await?;
    Ok(())
}

/// Removes the envelope whose id starts with `prefix`. Refuses to remove the last one, and the
/// one in use unless `force`. A removal record is left so that a run or sync removes it from
/// the schedule's other copies too.
pub async fn remove(repo: &Repository, prefix: &str, force: bool) -> Result<Id> {
    let keys = list(repo).await?;
    let entry = resolve(&keys, prefix)?;
    check_removable(&keys, entry.id, force, None)?;
    let record = removal_record(repo, entry);
    apply_removal(repo, entry.id, &record).await?;
    Ok(entry.id)
}

/// What `key passwd` did: passphrase envelope `old`, made with work factor `old_log_n`, was
/// replaced by `new`, made with [`SCRYPT_LOG_N`].
#[derive(Clone, Copy, Debug)]
pub struct Rewrap {
    pub old: Id,
    pub old_log_n: u8,
    pub new: Id,
}

/// The passphrase envelope whose id starts with `prefix`, for `key passwd`, and its work
/// factor. Any other kind is refused, saying what to do instead.
pub fn resolve_passphrase<'k>(keys: &'k [KeyEntry], prefix: &str) -> Result<(&'k KeyEntry, u8)> {
    let entry = resolve(keys, prefix)?;
    match entry.scrypt_log_n {
        Some(n) => Ok((entry, n)),
        None => Err(Error::Usage(format!(
            "{} is not a passphrase, and `key passwd` re-wraps passphrase envelopes only; to replace it, `firesafe key add` the new key, then `firesafe key remove {}`",
            describe(entry),
            entry.id.short()
        ))),
    }
}

/// The envelope replacing passphrase envelope `entry`: for passphrase `new`, with work factor
/// [`SCRYPT_LOG_N`] and the same label, made once so that every copy gets the same bytes.
pub fn rewrapped(repo: &Repository, entry: &KeyEntry, new: &SecretString) -> Envelope {
    repo.make_envelope(&Recipient::Passphrase(new.clone()), &entry.label)
}

/// Stores the new passphrase envelope on one copy and reads it back: `Ok` only when it opens
/// with `new` and holds this repository's secrets. One that does not is deleted again.
pub async fn put_checked(repo: &Repository, envelope: &Envelope, new: &SecretString) -> Result<()> {
    repo.put_envelope(envelope).await?;
    let unlock = Unlock::Passphrase(new.clone());
    if repo.envelope_opens(envelope.id, &unlock).await? {
        return Ok(());
    }
    let target = repo.target();
    target.delete(&format!("{KEYS}/{}", envelope.id)).await?;
    target
        .delete(&format!("{KEYS}/{}.info", envelope.id))
        .await?;
    Err(Error::Corrupt {
        what: "new key envelope",
        id: format!("{KEYS}/{}", envelope.id),
        target: target.name().to_string(),
        detail: "read back, it does not open with the new passphrase (it was deleted again and the old envelope kept)".into(),
    })
}

/// Moves the passphrase envelope whose id starts with `prefix` to work factor
/// [`SCRYPT_LOG_N`], for passphrase `new` (the same one or another). Never loses access: the
/// new envelope is written and read back opening the repository before the old one is removed,
/// with the removal record `key remove` leaves, so that runs and syncs remove it from the
/// schedule's other copies too (and copy the new one there).
pub async fn passwd(repo: &Repository, prefix: &str, new: &SecretString) -> Result<Rewrap> {
    let keys = list(repo).await?;
    let (entry, old_log_n) = resolve_passphrase(&keys, prefix)?;
    let envelope = rewrapped(repo, entry, new);
    put_checked(repo, &envelope, new).await?;
    let record = removal_record(repo, entry);
    apply_removal(repo, entry.id, &record).await?;
    Ok(Rewrap {
        old: entry.id,
        old_log_n,
        new: envelope.id,
    })
}

/// One way a copy's keys differ from the others'.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct KeyDifference {
    /// The copy concerned.
    pub copy: String,
    /// `keys/ID`.
    pub object: String,
    /// What is wrong, in one sentence.
    pub problem: String,
}

/// Where the copies' sets of keys differ: an envelope some copies hold and others lack, or one
/// removed on some copy (`keys-removed/ID`) and still held by another. Each difference is
/// named on the copy that must change, with the copies that have it right.
pub async fn differences(copies: &[(&str, &Repository)]) -> Result<Vec<KeyDifference>> {
    Ok(compare(copies).await?.differences)
}

/// The copies' keys compared: where they differ (see [`differences`]), and every envelope any
/// copy holds, once each, in id order.
pub struct Compared {
    pub differences: Vec<KeyDifference>,
    pub keys: Vec<KeyEntry>,
}

/// Lists every copy's keys once and compares them.
pub async fn compare(copies: &[(&str, &Repository)]) -> Result<Compared> {
    let mut held: Vec<(&str, Vec<KeyEntry>)> = Vec::new();
    let mut removed: std::collections::BTreeMap<Id, Vec<&str>> = Default::default();
    for (name, repo) in copies {
        held.push((name, list(repo).await?));
        for id in removed_envelopes(repo.target()).await? {
            removed.entry(id).or_default().push(name);
        }
    }
    let mut all: std::collections::BTreeMap<Id, (&KeyEntry, Vec<&str>)> = Default::default();
    for (name, keys) in &held {
        for k in keys {
            all.entry(k.id).or_insert((k, Vec::new())).1.push(name);
        }
    }
    let mut out = Vec::new();
    let mut keys = Vec::new();
    for (id, (entry, holders)) in all {
        keys.push(entry.clone());
        let what = describe(entry);
        if let Some(by) = removed.get(&id) {
            for copy in &holders {
                out.push(KeyDifference {
                    copy: copy.to_string(),
                    object: format!("{KEYS}/{id}"),
                    problem: format!(
                        "{what} was removed on {} but is still on {copy}; the next run or sync removes it there",
                        by.join(", ")
                    ),
                });
            }
            continue;
        }
        for (copy, _) in held.iter().filter(|(c, _)| !holders.contains(c)) {
            out.push(KeyDifference {
                copy: copy.to_string(),
                object: format!("{KEYS}/{id}"),
                problem: format!(
                    "{what} is on {} but not on {copy}; the next run or sync copies it there",
                    holders.join(", ")
                ),
            });
        }
    }
    Ok(Compared {
        differences: out,
        keys,
    })
}

/// A sentence for `status` about a passphrase envelope whose scrypt work factor is not the one
/// new envelopes get, or `None`: an older, costlier one opens but slowly (`key passwd` moves
/// it), a weaker one is weaker than firesafe makes, and one above [`MAX_SCRYPT_LOG_N`] is never
/// tried (it may have been planted to make every passphrase open slow).
pub fn work_factor_notice(k: &KeyEntry, schedule: &str) -> Option<String> {
    let n = k.scrypt_log_n?;
    let what = describe(k);
    if k.too_costly() {
        return Some(format!(
            "{what} has scrypt work factor 2^{n}, above the 2^{MAX_SCRYPT_LOG_N} firesafe opens, so it is never tried: if nobody here made it, remove it (`firesafe key remove --schedule {schedule} {}`)",
            k.id.short()
        ));
    }
    if !k.outdated() {
        return None;
    }
    let mib = crypto::scrypt_memory(n) >> 20;
    let cost = if n < SCRYPT_LOG_N {
        format!("weaker than the 2^{SCRYPT_LOG_N} new keys get")
    } else {
        format!("{mib} MiB and longer to open than the 2^{SCRYPT_LOG_N} new keys get")
    };
    Some(format!(
        "{what} has scrypt work factor 2^{n} ({cost}): `firesafe key passwd --schedule {schedule} {}` moves it",
        k.id.short()
    ))
}

/// `key 1a2b3c4d ("recovery key", x25519)`.
fn describe(k: &KeyEntry) -> String {
    let label = crate::format::tree::printable(&k.label);
    if label.is_empty() {
        format!("key {} ({})", k.id.short(), k.kind)
    } else {
        format!("key {} (\"{label}\", {})", k.id.short(), k.kind)
    }
}

/// Refuses a key file that others may read: the key opens every backup, so a file the group or
/// everyone can read has already let it out. The error says the `chmod` to run.
pub fn check_private(path: &std::path::Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(meta) = std::fs::metadata(path) else {
        return Ok(()); // Reading it says what is wrong.
    };
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Usage(format!(
            "key file {} can be read by others (mode {mode:04o}); run `chmod 600 {}`, and treat the key as seen by whoever could read it",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

/// Reads an age identity file that only its owner can read.
pub fn read_identity_file(path: &std::path::Path) -> Result<Unlock> {
    check_private(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::WrongKey(format!("key file {}: cannot read it ({e})", path.display()))
    })?;
    Unlock::parse_identity_file(&text)
        .map_err(|why| Error::WrongKey(format!("key file {}: {why}", path.display())))
}
