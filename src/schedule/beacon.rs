//! The status beacon: after every run, verification and drill, a school's firesafe writes a small
//! object beside its repository on each target, `beacon/SCHEDULE`, for the trust that looks
//! after many schools (`firesafe fleet`). It says, per share, the verdict and its reasons, each
//! copy's newest snapshot and its age, the last drill, verification coverage and open suspect
//! snapshots. It names no file and holds no content.
//!
//! The beacon is signed with the school's signing key (ed25519, made by `firesafe beacon key`
//! or the first `run --init` of a site whose site.toml names a trust), whose public half the
//! trust keeps in its fleet.toml: someone who can only write to the bucket cannot make a red
//! school look green. It is encrypted to the trust's age recipient (`trust_recipient` in
//! site.toml), so only the trust reads it. See docs/FORMAT.md ("Status beacon").

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use ed25519_dalek::{Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};

use crate::config::{Config, ScheduleSpec};
use crate::error::{Error, Result};
use crate::format::signing::public_hex;
use crate::schedule::status::ScheduleStatus;
use crate::store::state::StateDir;

/// Where a schedule's beacon is kept on each of its targets.
pub fn key(schedule: &str) -> String {
    format!("beacon/{schedule}")
}

/// The signing key's file name in the configuration directory (unless site.toml says where).
pub const SIGNING_KEY_FILE: &str = "beacon-signing.key";

/// What a beacon says (the signed payload).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Beacon {
    /// 1.
    pub version: u32,
    pub school: String,
    pub schedule: String,
    pub written: DateTime<Utc>,
    pub firesafe: String,
    /// How old the newest copy may be (the schedule's max_age_hours): a beacon older than this
    /// is stale, as the runs that should have renewed it did not.
    pub max_age_hours: u32,
    pub shares: Vec<Share>,
    /// The last drill of the schedule, if any.
    pub last_drill: Option<Drill>,
    /// Per target, the latest verification.
    pub verification: Vec<crate::schedule::status::TargetVerification>,
}

/// One share in a beacon.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Share {
    pub name: String,
    /// `OK`, `DEGRADED`, `VIOLATED` or `SUSPECT`.
    pub verdict: String,
    pub reasons: Vec<String>,
    pub copies: Vec<ShareCopy>,
    /// Suspect snapshots (possible ransomware) not accepted: their count and the headline.
    pub suspect: Option<String>,
}

/// One copy of a share: the newest complete snapshot on a target.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShareCopy {
    pub target: String,
    /// The snapshot's full id (its object is `snapshots/ID` on the target), if there is one.
    pub snapshot: Option<String>,
    pub taken: Option<DateTime<Utc>>,
    /// Whether it counts towards 3-2-1 (readable, complete, nothing missing).
    pub counted: bool,
}

/// The last drill.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Drill {
    pub kind: String,
    pub source: String,
    pub finished: DateTime<Utc>,
    pub passed: bool,
    /// The measured (full) or estimated (sample) recovery time, in seconds.
    pub recovery_seconds: f64,
}

/// The stored object, before encryption: the payload exactly as signed, and the signature.
#[derive(Serialize, Deserialize)]
struct Signed {
    payload: String,
    /// ed25519 over the payload's bytes, hex.
    signature: String,
}

/// The beacon of `status`, now.
pub fn of(
    config: &Config,
    schedule: &ScheduleSpec,
    state: &StateDir,
    status: &ScheduleStatus,
) -> Beacon {
    let shares = status
        .sources
        .iter()
        .map(|s| Share {
            name: s.source.clone(),
            verdict: s.shown_verdict(),
            reasons: s.evaluation.reasons.clone(),
            copies: s
                .copies
                .iter()
                .filter(|c| !c.as_recorded)
                .map(|c| ShareCopy {
                    target: c.target.clone(),
                    snapshot: c.snapshot_id.clone(),
                    taken: c.taken,
                    counted: c.error.is_none() && c.missing.is_none() && c.taken.is_some(),
                })
                .collect(),
            suspect: s.suspect.as_ref().map(|n| {
                format!(
                    "{}: {}",
                    crate::plan::words::count(
                        n.snapshots as u64,
                        "suspect snapshot",
                        "suspect snapshots"
                    ),
                    n.headline
                )
            }),
        })
        .collect();
    let last_drill = state
        .drill_records()
        .unwrap_or_default()
        .into_iter()
        .filter(|d| d.schedule == schedule.name)
        .max_by_key(|d| d.finished)
        .map(|d| Drill {
            kind: serde_json::to_value(d.kind)
                .ok()
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default(),
            source: d.source.clone(),
            finished: d.finished,
            passed: d.result.passed(),
            recovery_seconds: d.estimated_recovery_seconds,
        });
    Beacon {
        version: 1,
        school: config
            .site
            .as_ref()
            .map(|s| s.school.clone())
            .unwrap_or_default(),
        schedule: schedule.name.clone(),
        written: Utc::now(),
        firesafe: env!("CARGO_PKG_VERSION").to_string(),
        max_age_hours: status.max_age_hours,
        shares,
        last_drill,
        verification: status.verification.clone(),
    }
}

/// Signs `beacon` and encrypts it to `trust` (an age recipient): the bytes to store.
pub fn seal(beacon: &Beacon, signing: &SigningKey, trust: &str) -> Result<Vec<u8>> {
    let recipient: age::x25519::Recipient = trust.parse().map_err(|e| {
        Error::Config(vec![format!(
            "site.toml: trust_recipient is not an age recipient ({e}); ask the trust for its age1... key"
        )])
    })?;
    let payload = serde_json::to_string(beacon).expect("a beacon serialises");
    let signature = hex::encode(signing.sign(payload.as_bytes()).to_bytes());
    let plain = serde_json::to_vec(&Signed { payload, signature }).expect("serialises");
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))
            .expect("one recipient");
    let mut out = Vec::new();
    let mut w = encryptor.wrap_output(&mut out).expect("writing to memory");
    w.write_all(&plain).expect("writing to memory");
    w.finish().expect("writing to memory");
    Ok(out)
}

/// Why a stored beacon cannot be believed.
#[derive(Debug, PartialEq)]
pub enum Refused {
    /// Not encrypted to the trust's key, or damaged.
    Unreadable(String),
    /// Not signed by the school's key: written by someone else, or changed.
    NotSigned,
}

/// Decrypts a stored beacon with the trust's identities and checks it was signed by `school`.
pub fn open(
    bytes: &[u8],
    trust: &[age::x25519::Identity],
    school: &VerifyingKey,
) -> std::result::Result<Beacon, Refused> {
    let unreadable = |e: String| Refused::Unreadable(e);
    let decryptor = age::Decryptor::new(bytes).map_err(|e| unreadable(e.to_string()))?;
    let mut reader = decryptor
        .decrypt(trust.iter().map(|i| i as &dyn age::Identity))
        .map_err(|e| unreadable(format!("not readable with the trust's key ({e})")))?;
    let mut plain = Vec::new();
    reader
        .read_to_end(&mut plain)
        .map_err(|e| unreadable(format!("damaged ({e})")))?;
    let signed: Signed =
        serde_json::from_slice(&plain).map_err(|e| unreadable(format!("not a beacon ({e})")))?;
    let signature = hex::decode(&signed.signature)
        .ok()
        .and_then(|b| ed25519_dalek::Signature::from_slice(&b).ok())
        .ok_or(Refused::NotSigned)?;
    school
        .verify(signed.payload.as_bytes(), &signature)
        .map_err(|_| Refused::NotSigned)?;
    serde_json::from_str(&signed.payload).map_err(|e| unreadable(format!("not a beacon ({e})")))
}

/// Where the school's signing key is kept: site.toml's `beacon_signing_key`, else
/// [`SIGNING_KEY_FILE`] in the configuration directory.
pub fn signing_key_path(config: &Config) -> PathBuf {
    config
        .site
        .as_ref()
        .and_then(|s| s.beacon_signing_key.clone())
        .map(|p| {
            if p.is_relative() {
                config.dir.join(p)
            } else {
                p
            }
        })
        .unwrap_or_else(|| config.dir.join(SIGNING_KEY_FILE))
}

/// The school's signing key, made (readable by its owner only) when there is none yet.
pub fn signing_key(path: &Path, create: bool) -> Result<SigningKey> {
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let bytes: [u8; 32] = text
                .lines()
                .find(|l| !l.starts_with('#') && !l.trim().is_empty())
                .and_then(|l| hex::decode(l.trim()).ok())
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| {
                    Error::Config(vec![format!(
                        "{}: not a beacon signing key (64 hex digits); restore it from its backup, or move it aside and run `firesafe beacon key` to make a new one (then give the trust the new public key)",
                        path.display()
                    )])
                })?;
            Ok(SigningKey::from_bytes(&bytes))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && create => {
            let key = SigningKey::generate(&mut rand::rngs::OsRng);
            let text = format!(
                "# firesafe beacon signing key: signs this school's status beacons. Keep it private.\n# Public half (for the trust's fleet.toml): {}\n{}\n",
                public_hex(&key),
                hex::encode(key.to_bytes())
            );
            use std::os::unix::fs::OpenOptionsExt;
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| Error::local(path, "cannot create the beacon signing key", e))?;
            f.write_all(text.as_bytes())
                .map_err(|e| Error::local(path, "cannot write the beacon signing key", e))?;
            Ok(key)
        }
        Err(e) => Err(Error::local(path, "cannot read the beacon signing key", e)),
    }
}

/// Writes the schedule's beacon to each of its targets that opens, when site.toml names a trust.
/// Returns what could not be done, one line each (nothing when no trust is named).
pub async fn write(
    config: &Config,
    schedule: &ScheduleSpec,
    state: &StateDir,
    status: &ScheduleStatus,
) -> Vec<String> {
    let Some(trust) = config.site.as_ref().and_then(|s| s.trust_recipient.clone()) else {
        return Vec::new();
    };
    let sealed = signing_key(&signing_key_path(config), true)
        .and_then(|key| seal(&of(config, schedule, state, status), &key, &trust));
    let bytes = match sealed {
        Ok(b) => bytes::Bytes::from(b),
        Err(e) => return vec![format!("status beacon not written: {e}")],
    };
    let mut notes = Vec::new();
    for (name, target) in crate::config::targets::open_targets(config, schedule, false).await {
        let written = match target {
            Ok(t) => t.put_replace(&key(&schedule.name), bytes.clone()).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            notes.push(format!(
                "status beacon not written to target \"{name}\": {e}"
            ));
        }
    }
    notes
}

/// [`write`] with the status read now (after a verification or a drill).
pub async fn write_now(config: &Config, schedule: &ScheduleSpec, state: &StateDir) -> Vec<String> {
    if config
        .site
        .as_ref()
        .is_none_or(|s| s.trust_recipient.is_none())
    {
        return Vec::new();
    }
    match crate::schedule::status::status_with_records(config, schedule, Some(state), Utc::now())
        .await
    {
        Ok(status) => write(config, schedule, state, &status).await,
        Err(e) => vec![format!("status beacon not written: {e}")],
    }
}
