//! Key envelopes: list, add and remove the keys that open a repository.
//!
//! Adding or removing an envelope writes or deletes only `keys/ID` and `keys/ID.info`; no data
//! is rewritten. Removing an envelope stops that key opening the repository; anyone who opened
//! it before may still hold its secrets (see the threat model in [`crate::format::crypto`]).

use std::path::Path;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::format::crypto::{self, Recipient};
use crate::id::Id;
use crate::store::repo::{KEYS, KeyInfo, Repository, envelope_id};

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
    /// [`crate::format::crypto::MAX_SCRYPT_LOG_N`] is never tried.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scrypt_log_n: Option<u8>,
}

impl KeyEntry {
    /// Whether opening this envelope would cost more than firesafe allows (it is skipped).
    pub fn too_costly(&self) -> bool {
        self.scrypt_log_n
            .is_some_and(|n| n > crate::format::crypto::MAX_SCRYPT_LOG_N)
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
                Ok(bytes) => crate::format::crypto::scrypt_log_n(&bytes),
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

/// Removes the envelope whose id starts with `prefix`. Refuses to remove the last one, and the
/// one in use unless `force`.
pub async fn remove(repo: &Repository, prefix: &str, force: bool) -> Result<Id> {
    let keys = list(repo).await?;
    let matches: Vec<&KeyEntry> = keys
        .iter()
        .filter(|k| k.id.to_hex().starts_with(&prefix.to_ascii_lowercase()))
        .collect();
    let entry = match matches.as_slice() {
        [one] => *one,
        [] => {
            return Err(Error::NotFound(format!(
                "no key with id {prefix}; `firesafe key list` shows them"
            )));
        }
        _ => {
            return Err(Error::Usage(format!(
                "key id {prefix} is ambiguous; give more digits"
            )));
        }
    };
    if keys.len() == 1 {
        return Err(Error::Usage(
            "refusing to remove the only key: the repository could never be opened again".into(),
        ));
    }
    if entry.current && !force {
        return Err(Error::Usage(format!(
            "key {} is the one you opened the repository with; pass --force to remove it anyway",
            entry.id.short()
        )));
    }
    let target = repo.target();
    target.delete(&format!("{KEYS}/{}", entry.id)).await?;
    target.delete(&format!("{KEYS}/{}.info", entry.id)).await?;
    Ok(entry.id)
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
pub fn read_identity_file(path: &std::path::Path) -> Result<crate::format::crypto::Unlock> {
    check_private(path)?;
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::WrongKey(format!("key file {}: cannot read it ({e})", path.display()))
    })?;
    crate::format::crypto::Unlock::parse_identity_file(&text)
        .map_err(|why| Error::WrongKey(format!("key file {}: {why}", path.display())))
}
