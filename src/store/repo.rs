//! A repository on one target: its config, its keys, and sealed objects.
//!
//! Object keys (see docs/FORMAT.md):
//!
//! | key | content |
//! |---|---|
//! | `config` | plaintext JSON: format, version, repository id, chunker and pack parameters |
//! | `keys/ID` | a key envelope: age file for one recipient, holding the repository secrets |
//! | `keys/ID.info` | sealed JSON describing that envelope (kind, label, public key, date) |
//! | `keys-removed/ID` | sealed JSON: envelope ID was removed, when and by whom |
//! | `data/XX/ID` | a pack (`XX` = the first two hex digits of ID) |
//! | `index/ID` | sealed JSON: which blobs are in which packs |
//! | `snapshots/ID` | sealed JSON: one snapshot |
//! | `audit/ID` | sealed JSON: one restore, who ran it and what it did |
//!
//! "Sealed" means age(zstd(JSON)) encrypted to the repository identity. Every ID in a key is the
//! BLAKE3 hash of that object's stored bytes, except `keys/ID.info` and `keys-removed/ID`, which
//! carry their envelope's ID, and the empty markers `forgotten/ID` and `damaged/ID`, named by the
//! snapshot or pack they stand for. Nothing is ever rewritten: every write creates a new object.
//!
//! A sealed object's JSON is read through a bound, [`MAX_SEALED_BYTES`]: whoever holds the key
//! can seal a few kilobytes of zstd that expand to terabytes, and such an object is refused.

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::format::chunker::ChunkerParams;
use crate::format::crypto::{OpenError, Recipient, RepoKey, Unlock};
use crate::format::pack::SealedPack;
use crate::id::Id;
use crate::store::target::{Put, Target};

pub const CONFIG: &str = "config";
pub const KEYS: &str = "keys";
pub const DATA: &str = "data";
pub const INDEX: &str = "index";
pub const SNAPSHOTS: &str = "snapshots";
/// `forgotten/ID`: empty markers for snapshots a prune forgot (see `prune`).
pub const FORGOTTEN: &str = "forgotten";
/// `audit/ID`: sealed JSON, one restore (see `audit`).
pub const AUDIT: &str = "audit";
/// `drills/ID`: sealed records of restore drills (see `records`).
pub const DRILLS: &str = "drills";
/// `keys-removed/ID`: sealed records of envelopes removed by `key remove` ([`KeyRemoval`]),
/// copied to every copy so that the removal is made there too.
pub const KEYS_REMOVED: &str = "keys-removed";
/// `decisions/ID`: sealed technicians' decisions about suspect snapshots (see
/// `format::snapshot::Decision`).
pub const DECISIONS: &str = "decisions";
/// `damaged/ID`: empty markers for packs found damaged on this copy (see `damage`).
pub const DAMAGED: &str = "damaged";

/// The most JSON a sealed object (a snapshot, an index object, a record, a key's info) may hold
/// once decompressed: 1 GiB. The largest firesafe writes are index objects, about 170 bytes per
/// blob, so a million blobs take 170 MiB; a larger object is refused as forged or damaged.
pub const MAX_SEALED_BYTES: u64 = 1 << 30;

/// Every sealed object of one directory, by key: those read and those that could not be.
pub struct SealedObjects<T> {
    pub read: Vec<(String, T)>,
    pub damaged: Vec<(String, Error)>,
}

/// The plaintext config object.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Config {
    /// Always `"firesafe"`.
    pub format: String,
    /// Format version; this program reads and writes 1.
    pub version: u32,
    /// Random; identifies the repository (the same on every target it is replicated to).
    pub id: Id,
    pub chunker: ChunkerParams,
    /// Target size of a pack's plaintext, in bytes.
    pub pack_size: u32,
    /// Default zstd level for new blobs (0 = off).
    pub compression: i32,
    pub created: DateTime<Utc>,
}

/// Choices fixed at `init`.
#[derive(Clone, Debug)]
pub struct InitOptions {
    pub chunker: ChunkerParams,
    pub pack_size: u32,
    pub compression: i32,
}

impl Default for InitOptions {
    fn default() -> Self {
        InitOptions {
            chunker: ChunkerParams::default(),
            pack_size: 16 * 1024 * 1024,
            compression: 3,
        }
    }
}

/// What an envelope is, stored sealed beside it so that anyone who can open the repository can
/// list its keys.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyInfo {
    /// `"x25519"` or `"passphrase"`.
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient: Option<String>,
    pub label: String,
    pub created: DateTime<Utc>,
    pub host: String,
}

/// A removal record, `keys-removed/ID`: envelope `ID` was removed, and must not come back.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct KeyRemoval {
    /// The envelope removed (also the record's name).
    pub envelope: Id,
    /// What its info said, when it could be read.
    pub kind: String,
    pub label: String,
    pub removed: DateTime<Utc>,
    /// Who removed it (the user behind sudo, or the user) and on which machine.
    pub user: String,
    pub host: String,
}

/// An envelope and its sealed info, made once so that the same bytes (and so the same
/// `keys/ID`) can be written to every copy of the repository.
#[derive(Clone, Debug)]
pub struct Envelope {
    pub id: Id,
    pub envelope: Bytes,
    pub info: Bytes,
}

/// An open repository.
pub struct Repository {
    target: Target,
    config: Config,
    key: Arc<RepoKey>,
    /// The envelope that opened it.
    envelope: Id,
    /// Whether the store refused a second conditional write when `init` probed it; `None` for
    /// a repository opened rather than created.
    conditional_writes: Option<bool>,
}

pub fn pack_key(id: &Id) -> String {
    let hex = id.to_hex();
    format!("{DATA}/{}/{hex}", &hex[..2])
}

/// The machine's name, for snapshots and key info.
pub fn hostname() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

impl Repository {
    /// Creates a repository on an empty target with one envelope per recipient. The config is
    /// written last, so an interrupted `init` leaves no repository behind.
    pub async fn init(
        target: Target,
        recipients: &[(Recipient, String)],
        options: &InitOptions,
    ) -> Result<Repository> {
        options.chunker.validate().map_err(Error::Usage)?;
        if !(1024 * 1024..=256 * 1024 * 1024).contains(&options.pack_size) {
            return Err(Error::Usage(
                "the pack size must be between 1 and 256 MiB".into(),
            ));
        }
        if !(0..=22).contains(&options.compression) {
            return Err(Error::Usage(
                "the compression level must be 0 (off) to 22".into(),
            ));
        }
        if target.exists(CONFIG).await? {
            return Err(Error::AlreadyInitialised {
                target: target.name().to_string(),
            });
        }
        if recipients.is_empty() {
            return Err(Error::Usage("init needs at least one key".into()));
        }
        // Stores that ignore `If-None-Match` (Garage) cannot refuse a second `config`; then the
        // config is read back after it settles (see `settle_config`).
        let conditional = target.honours_conditional_writes().await?;
        let key = RepoKey::generate();
        let config = Config {
            format: "firesafe".into(),
            version: 1,
            id: Id::random(),
            chunker: options.chunker,
            pack_size: options.pack_size,
            compression: options.compression,
            created: Utc::now(),
        };
        let mut envelopes = Vec::new();
        for (who, label) in recipients {
            envelopes.push(write_envelope(&target, &key, who, label).await?);
        }
        let json = serde_json::to_vec_pretty(&config).expect("serialising config");
        let checked = std::time::Instant::now();
        let lost = if conditional {
            target.put_new(CONFIG, Bytes::from(json)).await? == Put::Existed
        } else {
            !settle_config(&target, json, checked).await?
        };
        if lost {
            // Another init got there first: this one's envelopes open nothing, so they go.
            for id in &envelopes {
                let _ = target.delete(&format!("{KEYS}/{id}")).await;
                let _ = target.delete(&format!("{KEYS}/{id}.info")).await;
            }
            return Err(Error::AlreadyInitialised {
                target: target.name().to_string(),
            });
        }
        let first = envelopes.first().copied();
        Ok(Repository {
            target,
            config,
            key: Arc::new(key),
            envelope: first.expect("at least one recipient"),
            conditional_writes: Some(conditional),
        })
    }

    /// Reads the config without a key.
    pub async fn read_config(target: &Target) -> Result<Config> {
        let bytes = target
            .get_opt(CONFIG)
            .await?
            .ok_or_else(|| Error::NotARepository {
                target: target.name().to_string(),
            })?;
        let config: Config = serde_json::from_slice(&bytes).map_err(|e| Error::Corrupt {
            what: "config",
            id: CONFIG.into(),
            target: target.name().to_string(),
            detail: format!("not valid JSON ({e})"),
        })?;
        if let Err(why) = config.chunker.validate() {
            return Err(Error::Corrupt {
                what: "config",
                id: CONFIG.into(),
                target: target.name().to_string(),
                detail: why,
            });
        }
        if !(1024 * 1024..=256 * 1024 * 1024).contains(&config.pack_size)
            || !(0..=22).contains(&config.compression)
        {
            return Err(Error::Corrupt {
                what: "config",
                id: CONFIG.into(),
                target: target.name().to_string(),
                detail: format!(
                    "pack size {} or compression level {} is outside what firesafe writes",
                    config.pack_size, config.compression
                ),
            });
        }
        if config.format != "firesafe" || config.version != 1 {
            return Err(Error::Format(format!(
                "target \"{}\" holds format \"{}\" version {}; this firesafe {} reads firesafe version 1 (upgrade firesafe)",
                target.name(),
                config.format,
                config.version,
                crate::VERSION
            )));
        }
        Ok(config)
    }

    /// Opens a repository with the user's key. A passphrase open spends at most
    /// [`PASSPHRASE_WORK`] of scrypt work, trying the envelopes with the description firesafe
    /// writes beside each (`keys/ID.info`) first, then in ID order: one at the maximum factor
    /// costs about a second and 1 GiB, and anyone who can write the store can plant more. Envelopes skipped (above
    /// the work-factor maximum) or left untried are named in one warning on standard error
    /// (the daemon's log under the daemon), and in the error if none opened.
    pub async fn open(target: Target, unlock: &Unlock) -> Result<Repository> {
        let config = Self::read_config(&target).await?;
        let listed = target.list(KEYS).await?;
        let mut envelopes: Vec<(bool, String, Id)> = listed
            .iter()
            .filter_map(|l| envelope_id(&l.key).map(|id| (l.key.clone(), id)))
            .map(|(key, id)| {
                let info = format!("{key}.info");
                (!listed.iter().any(|l| l.key == info), key, id)
            })
            .collect();
        envelopes.sort();
        let mut damaged = Vec::new();
        let mut skipped = Vec::new();
        let mut spent = 0u64;
        for (_, key, id) in &envelopes {
            let bytes = target.get(key).await?;
            let work = crate::format::crypto::scrypt_log_n(&bytes)
                .filter(|&n| n <= crate::format::crypto::MAX_SCRYPT_LOG_N)
                .map(|n| 1u64 << n);
            if let (Some(work), Unlock::Passphrase(_)) = (work, unlock) {
                if spent + work > PASSPHRASE_WORK {
                    skipped.push(format!(
                        "{key}: not tried, the work one passphrase open may spend (four envelopes at the maximum factor) was spent on envelopes tried first"
                    ));
                    continue;
                }
                spent += work;
            }
            match RepoKey::unwrap(&bytes, unlock) {
                Ok(Some(key)) => {
                    warn_envelopes(target.name(), &skipped);
                    return Ok(Repository {
                        target,
                        config,
                        key: Arc::new(key),
                        envelope: *id,
                        conditional_writes: None,
                    });
                }
                Ok(None) | Err(OpenError::WrongKey) => {}
                Err(OpenError::Damaged(why)) => damaged.push(format!("{key}: {why}")),
                Err(e @ OpenError::TooCostly(_)) => skipped.push(format!("{key}: {e}")),
            }
        }
        let what = match unlock {
            Unlock::Identities(_) => "the identity in FIRESAFE_KEY_FILE",
            Unlock::Passphrase(_) => "the passphrase in FIRESAFE_PASSPHRASE",
        };
        let mut msg = format!(
            "wrong key: {what} opens none of the {} on target \"{}\"; check you are using this repository's key",
            crate::plan::words::count_s(envelopes.len() as u64, "key envelope"),
            target.name()
        );
        if !damaged.is_empty() {
            msg.push_str(&format!(" (damaged envelopes: {})", damaged.join("; ")));
        }
        if !skipped.is_empty() {
            msg.push_str(&format!(
                " (not tried: {}; `firesafe key list` shows them, `firesafe key remove` removes them)",
                skipped.join("; ")
            ));
        }
        Err(Error::WrongKey(msg))
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    /// Set by `init`: whether the store honours conditional writes (`If-None-Match`).
    pub fn conditional_writes(&self) -> Option<bool> {
        self.conditional_writes
    }

    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn key(&self) -> &RepoKey {
        &self.key
    }

    /// The key, shareable with worker threads.
    pub fn shared_key(&self) -> Arc<RepoKey> {
        Arc::clone(&self.key)
    }

    /// The envelope this session opened the repository with.
    pub fn envelope(&self) -> Id {
        self.envelope
    }

    /// Seals a value as age(zstd(JSON)) and stores it under `dir/ID`.
    pub async fn save_sealed<T: Serialize>(&self, dir: &str, value: &T) -> Result<Id> {
        let bytes = seal_json(&self.key, value);
        let id = Id::of_object(&bytes);
        self.target
            .put_new(&format!("{dir}/{id}"), Bytes::from(bytes))
            .await?;
        Ok(id)
    }

    /// Seals a value as age(zstd(JSON)) without storing it: the same bytes can then be stored
    /// on every copy of the repository, under the same `dir/ID`.
    pub fn seal_value<T: Serialize>(&self, value: &T) -> (Id, Bytes) {
        let bytes = seal_json(&self.key, value);
        (Id::of_object(&bytes), Bytes::from(bytes))
    }

    /// Loads and opens every sealed JSON object under `dir`, a few at a time, sorted by key:
    /// those read, and those that could not be (a damaged object is a finding, not the end).
    /// A target that is down stops it.
    pub async fn load_all_sealed<T: DeserializeOwned>(
        &self,
        what: &'static str,
        dir: &str,
    ) -> Result<SealedObjects<T>> {
        let mut read = Vec::new();
        let mut damaged = self
            .each_sealed(what, dir, |key, value| read.push((key, value)))
            .await?;
        read.sort_by(|a, b| a.0.cmp(&b.0));
        damaged.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(SealedObjects { read, damaged })
    }

    /// Loads and opens every sealed JSON object under `dir`, a few at a time, handing each to
    /// `take` as it is read (in no set order), so that only a few are in memory at once.
    /// Returns those that could not be read (object key, what is wrong); a target that is down
    /// stops it.
    pub async fn each_sealed<T: DeserializeOwned>(
        &self,
        what: &'static str,
        dir: &str,
        mut take: impl FnMut(String, T),
    ) -> Result<Vec<(String, Error)>> {
        use futures::StreamExt;
        let keys: Vec<String> = self
            .target
            .list(dir)
            .await?
            .into_iter()
            .map(|l| l.key)
            .collect();
        let mut results = futures::stream::iter(keys)
            .map(|key| async move {
                let r = self.load_sealed::<T>(what, &key).await;
                (key, r)
            })
            .buffer_unordered(8);
        let mut damaged = Vec::new();
        while let Some((key, r)) = results.next().await {
            match r {
                Ok(v) => take(key, v),
                Err(e @ Error::Target { .. }) => return Err(e),
                Err(e) => damaged.push((key, e)),
            }
        }
        Ok(damaged)
    }

    /// Loads and opens a sealed JSON object.
    pub async fn load_sealed<T: DeserializeOwned>(
        &self,
        what: &'static str,
        key: &str,
    ) -> Result<T> {
        let bytes = self.target.get(key).await?;
        self.open_sealed(what, key, &bytes)
    }

    /// Opens sealed JSON already read, checking it against its name.
    pub fn open_sealed<T: DeserializeOwned>(
        &self,
        what: &'static str,
        key: &str,
        bytes: &[u8],
    ) -> Result<T> {
        let corrupt = |detail: String| Error::Corrupt {
            what,
            id: key.to_string(),
            target: self.target.name().to_string(),
            detail,
        };
        // Objects named by their hash must match it; `keys/ID.info` and `keys-removed/ID` are
        // named after their envelope.
        if !key.ends_with(".info") && !key.starts_with(&format!("{KEYS_REMOVED}/")) {
            match key.rsplit('/').next().and_then(|n| n.parse::<Id>().ok()) {
                Some(name) if Id::of_object(bytes) == name => {}
                Some(_) => return Err(corrupt("its content does not match its name".into())),
                None => {
                    return Err(corrupt(
                        "its name is not an object id (a stray copy?)".into(),
                    ));
                }
            }
        }
        let plain = match self.key.open(bytes) {
            Ok(p) => p,
            Err(OpenError::WrongKey) => {
                return Err(corrupt("it is not sealed to this repository's key".into()));
            }
            Err(OpenError::Damaged(why)) => return Err(corrupt(why)),
            Err(e @ OpenError::TooCostly(_)) => return Err(corrupt(e.to_string())),
        };
        crate::format::compress::decompress_json(&plain, MAX_SEALED_BYTES).map_err(corrupt)
    }

    /// Uploads a pack.
    pub async fn save_pack(&self, pack: &SealedPack) -> Result<()> {
        self.target
            .put_new(&pack_key(&pack.id), Bytes::copy_from_slice(&pack.bytes))
            .await?;
        Ok(())
    }

    /// Adds a key envelope for `who`; returns its id.
    pub async fn add_envelope(&self, who: &Recipient, label: &str) -> Result<Id> {
        write_envelope(&self.target, &self.key, who, label).await
    }

    /// Makes an envelope for `who` without storing it (see [`Repository::put_envelope`]).
    pub fn make_envelope(&self, who: &Recipient, label: &str) -> Envelope {
        make_envelope(&self.key, who, label)
    }

    /// Stores an envelope made by [`Repository::make_envelope`] (of this repository, perhaps on
    /// another copy): its info first, then the envelope.
    pub async fn put_envelope(&self, e: &Envelope) -> Result<()> {
        put_envelope(&self.target, e).await
    }

    /// Whether this copy's envelope `keys/ID`, read back from the target, opens with `unlock`
    /// and holds this repository's secrets, as the next open would find it. A damaged or
    /// foreign envelope is `false`; only a failure to read it is an error.
    pub async fn envelope_opens(&self, id: Id, unlock: &Unlock) -> Result<bool> {
        let bytes = self.target.get(&format!("{KEYS}/{id}")).await?;
        Ok(matches!(RepoKey::unwrap(&bytes, unlock), Ok(Some(k)) if k.same_as(&self.key)))
    }
}

/// The envelope ids named by the removal records (`keys-removed/ID`) on a target.
pub async fn removed_envelopes(target: &Target) -> Result<std::collections::BTreeSet<Id>> {
    Ok(target
        .list(KEYS_REMOVED)
        .await?
        .into_iter()
        .filter_map(|l| l.key.strip_prefix("keys-removed/")?.parse().ok())
        .collect())
}

/// The envelope id of a `keys/` listing entry (not an `.info` object).
pub fn envelope_id(key: &str) -> Option<Id> {
    key.strip_prefix("keys/")?.parse().ok()
}

/// The scrypt work one passphrase open may spend (the sum of 2^N over the envelopes it tries;
/// see [`Repository::open`]): four envelopes at the maximum factor, or 32 at the factor new
/// envelopes get, so a school with many technicians' passphrases still opens, and planted
/// costly envelopes cannot make an open take more than a few seconds.
pub const PASSPHRASE_WORK: u64 = 4 << crate::format::crypto::MAX_SCRYPT_LOG_N;

/// After an open that succeeded, the envelopes it did not try, in one warning: to the log when
/// the daemon has one, else to standard error, whatever the command.
fn warn_envelopes(target: &str, skipped: &[String]) {
    if skipped.is_empty() {
        return;
    }
    let line = format!(
        "target \"{target}\": key envelopes not tried: {}; `firesafe key list` shows them, `firesafe key remove` removes any that are not yours",
        skipped.join("; ")
    );
    let line = crate::format::tree::printable(&line);
    if tracing::dispatcher::has_been_set() {
        tracing::warn!("{line}");
    } else {
        eprintln!("firesafe: warning: {line}");
    }
}

/// Writes `config` on a store that may overwrite it silently, and tells whether this writer's
/// config is the one that stays.
///
/// Two inits A and B race. Each checks that no config exists immediately before writing its
/// own, then waits [`SETTLE`] (or twice as long as its check-and-write took, if longer) and reads
/// the config back. If B writes after A, either B's check came after A's write landed, and B
/// sees A's config and gives up; or B's write came within the settle time of A's, and A's
/// read-back sees B's config and A gives up. Only the last writer within a settle window can see
/// its own config, so exactly one init wins, assuming read-after-write consistency (which
/// Garage, like S3, gives) and that no check-and-write takes longer than the other's settle
/// time (at least 5 seconds for a 300-byte object).
async fn settle_config(
    target: &Target,
    json: Vec<u8>,
    started: std::time::Instant,
) -> Result<bool> {
    if target.exists(CONFIG).await? {
        return Ok(false);
    }
    target
        .put_replace(CONFIG, Bytes::from(json.clone()))
        .await?;
    let settle = SETTLE.max(started.elapsed() * 2);
    tokio::time::sleep(settle).await;
    Ok(target
        .get_opt(CONFIG)
        .await?
        .is_some_and(|b| b[..] == json[..]))
}

/// How long a config written to a store without conditional writes is left before it is read
/// back.
const SETTLE: std::time::Duration = std::time::Duration::from_secs(5);

async fn write_envelope(
    target: &Target,
    key: &RepoKey,
    who: &Recipient,
    label: &str,
) -> Result<Id> {
    let e = make_envelope(key, who, label);
    put_envelope(target, &e).await?;
    Ok(e.id)
}

fn make_envelope(key: &RepoKey, who: &Recipient, label: &str) -> Envelope {
    let envelope = key.wrap(who);
    let id = Id::of_object(&envelope);
    let info = KeyInfo {
        kind: who.kind().into(),
        recipient: who.public(),
        label: label.to_string(),
        created: Utc::now(),
        host: hostname(),
    };
    Envelope {
        id,
        envelope: Bytes::from(envelope),
        info: Bytes::from(seal_json(key, &info)),
    }
}

async fn put_envelope(target: &Target, e: &Envelope) -> Result<()> {
    // The info first: an envelope without info is still usable, info without an envelope is
    // ignored.
    target
        .put_new(&format!("{KEYS}/{}.info", e.id), e.info.clone())
        .await?;
    target
        .put_new(&format!("{KEYS}/{}", e.id), e.envelope.clone())
        .await?;
    Ok(())
}

fn seal_json<T: Serialize>(key: &RepoKey, value: &T) -> Vec<u8> {
    let json = serde_json::to_vec(value).expect("serialising JSON");
    let z = zstd::bulk::compress(&json, 3).expect("compressing in memory");
    key.seal(&z)
}
