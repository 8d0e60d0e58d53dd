//! Keys, sealing and key envelopes.
//!
//! # Threat model
//!
//! A target (a NAS, a bucket, a stolen USB disk) is assumed to be readable and writable by an
//! attacker. What it holds must reveal nothing but sizes and counts, and any change to it must be
//! detected:
//!
//! - every object except `config` is an age file: key envelopes are encrypted to each person's or
//!   host's own key, and everything else to the repository's own X25519 identity (ChaCha20-Poly1305, authenticated in 64 KiB segments), so
//!   contents, file names and metadata are confidential and tamper-evident;
//! - blob ids are BLAKE3 keyed with a secret 32-byte key, so an attacker cannot confirm a guess
//!   ("does this repository contain this known file?") by computing its id;
//! - object names are plain BLAKE3 of the stored bytes, so damage is visible without the key;
//! - the repository identity and the id key are kept only inside age envelopes, one per person or
//!   host allowed in (an X25519 recipient or an scrypt passphrase). Removing an envelope stops that
//!   key opening the repository from then on; it cannot take back secrets already read.
//!
//! Not covered: an attacker who deletes objects (that is detected by `check`, and answered by
//! other copies), and the `config` object, which is plaintext and unauthenticated; a forged
//! config can only change chunking and packing parameters, which affect efficiency, not secrecy.

use std::io::{Read, Write};
use std::iter;
use std::str::FromStr;

use age::secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::id::Id;

/// The repository's secrets: the identity every object is encrypted to, and the key for blob ids.
pub struct RepoKey {
    identity: age::x25519::Identity,
    recipient: age::x25519::Recipient,
    chunk_key: [u8; 32],
}

/// Why a sealed object could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// Not sealed to this key.
    #[error("no key given opens it")]
    WrongKey,
    /// The bytes are not an intact age file.
    #[error("{0}")]
    Damaged(String),
    /// A passphrase envelope whose scrypt work factor is above [`MAX_SCRYPT_LOG_N`]: opening it
    /// would cost more memory and time than any envelope firesafe makes, so it is not tried.
    #[error("its scrypt work factor 2^{0} is above the maximum 2^{MAX_SCRYPT_LOG_N}")]
    TooCostly(u8),
}

/// The scrypt work factor (log2 N) of the passphrase envelopes firesafe makes: 2^17, with age's
/// r = 8 and p = 1 the minimum OWASP recommends for scrypt, costs 128 MiB and a few tenths of a
/// second to open, on every machine alike. (age's own default is calibrated to the machine that
/// makes the envelope, which makes a passphrase open cost what the fastest machine that ever
/// added a passphrase could afford.) Envelopes made with another factor up to
/// [`MAX_SCRYPT_LOG_N`] (2^18 by earlier firesafe versions, 2^19 or so by age's default) still
/// open; `key passwd` moves one to this factor.
pub const SCRYPT_LOG_N: u8 = 17;

// Never weaker than OWASP's minimum for scrypt: N = 2^17 (with r = 8, p = 1).
const _: () = assert!(SCRYPT_LOG_N >= 17 && SCRYPT_LOG_N <= MAX_SCRYPT_LOG_N);

/// The largest scrypt work factor firesafe tries: 2^20 costs 1 GiB of memory. A planted
/// envelope with a larger one (2^23 is 8 GiB and many seconds) would otherwise be paid for on
/// every passphrase open.
pub const MAX_SCRYPT_LOG_N: u8 = 20;

/// The memory, in bytes, that opening a passphrase envelope of work factor `log_n` takes:
/// scrypt's 128 x r x N bytes with age's r = 8 (2^17: 128 MiB).
pub fn scrypt_memory(log_n: u8) -> u64 {
    if log_n < 54 { 1024 << log_n } else { u64::MAX }
}

/// The scrypt work factor (log2 N) of an age file encrypted to a passphrase, read from its
/// header (`-> scrypt SALT LOG_N`); `None` for any other age file.
pub fn scrypt_log_n(age_file: &[u8]) -> Option<u8> {
    let header = age_file.get(..age_file.len().min(512))?;
    let text = std::str::from_utf8(header.split(|b| *b == b'\n').nth(1)?).ok()?;
    let mut words = text.split(' ');
    (words.next()? == "->" && words.next()? == "scrypt").then_some(())?;
    words.nth(1)?.parse().ok()
}

impl From<age::DecryptError> for OpenError {
    fn from(e: age::DecryptError) -> Self {
        match e {
            age::DecryptError::NoMatchingKeys => OpenError::WrongKey,
            other => OpenError::Damaged(format!("age decryption failed ({other})")),
        }
    }
}

/// The plaintext of a key envelope, as stored (JSON).
#[derive(Serialize, Deserialize)]
struct Secrets {
    /// `AGE-SECRET-KEY-1...`: the identity every object is encrypted to.
    identity: String,
    /// 64 hex digits: the BLAKE3 key for blob ids.
    chunk_key: String,
}

impl RepoKey {
    /// New random secrets, for `init`.
    pub fn generate() -> RepoKey {
        let identity = age::x25519::Identity::generate();
        RepoKey {
            recipient: identity.to_public(),
            identity,
            chunk_key: rand::random(),
        }
    }

    /// The id of a blob: BLAKE3 keyed with the repository's id key.
    pub fn blob_id(&self, plaintext: &[u8]) -> Id {
        Id(*blake3::keyed_hash(&self.chunk_key, plaintext).as_bytes())
    }

    /// Encrypts a whole object in memory.
    pub fn seal(&self, plaintext: &[u8]) -> Vec<u8> {
        let mut w = self.sealer(plaintext.len() + 1024);
        w.write_all(plaintext).expect("writing to memory");
        w.finish().expect("writing to memory")
    }

    /// A streaming encryptor writing into memory.
    pub fn sealer(&self, capacity: usize) -> age::stream::StreamWriter<Vec<u8>> {
        self.sealer_to(Vec::with_capacity(capacity))
            .expect("writing to memory")
    }

    /// A streaming encryptor writing to `sink`, for packs built blob by blob.
    pub fn sealer_to<W: Write>(&self, sink: W) -> std::io::Result<age::stream::StreamWriter<W>> {
        age::Encryptor::with_recipients(iter::once(&self.recipient as &dyn age::Recipient))
            .expect("one X25519 recipient is always valid")
            .wrap_output(sink)
    }

    /// Decrypts and authenticates a whole object.
    pub fn open(&self, ciphertext: &[u8]) -> Result<Vec<u8>, OpenError> {
        let mut out = Vec::with_capacity(ciphertext.len());
        self.open_into(ciphertext, &mut out)?;
        Ok(out)
    }

    /// [`RepoKey::open`] into `out` (emptied first), whose memory is reused.
    pub fn open_into(&self, ciphertext: &[u8], out: &mut Vec<u8>) -> Result<(), OpenError> {
        self.open_from(ciphertext, out)
    }

    /// [`RepoKey::open_into`] reading the object from `ciphertext` as it is decrypted, so that
    /// it is never held whole beside its plaintext.
    pub fn open_from(
        &self,
        ciphertext: impl std::io::BufRead,
        out: &mut Vec<u8>,
    ) -> Result<(), OpenError> {
        let decryptor = age::Decryptor::new_buffered(ciphertext)?;
        let mut reader = decryptor.decrypt(iter::once(&self.identity as &dyn age::Identity))?;
        out.clear();
        reader
            .read_to_end(out)
            .map_err(|e| OpenError::Damaged(format!("age payload does not authenticate ({e})")))?;
        Ok(())
    }

    /// The recipient every object is encrypted to (public).
    pub fn recipient(&self) -> String {
        self.recipient.to_string()
    }

    /// Whether `other` holds the same secrets (the same repository).
    pub fn same_as(&self, other: &RepoKey) -> bool {
        self.recipient.to_string() == other.recipient.to_string()
            && self.chunk_key == other.chunk_key
    }

    /// Wraps these secrets in an envelope that `who` can open; a passphrase envelope gets
    /// work factor [`SCRYPT_LOG_N`].
    pub fn wrap(&self, who: &Recipient) -> Vec<u8> {
        self.wrap_at(who, SCRYPT_LOG_N)
    }

    /// [`RepoKey::wrap`] with scrypt work factor `log_n` for a passphrase (tests make envelopes
    /// as earlier versions did with it).
    fn wrap_at(&self, who: &Recipient, log_n: u8) -> Vec<u8> {
        let secrets = Secrets {
            identity: self.identity.to_string().expose_secret().to_string(),
            chunk_key: hex::encode(self.chunk_key),
        };
        let plaintext = serde_json::to_vec(&secrets).expect("serialising secrets");
        let encryptor = match who {
            Recipient::X25519(r) => {
                age::Encryptor::with_recipients(iter::once(r as &dyn age::Recipient))
                    .expect("one X25519 recipient is always valid")
            }
            Recipient::Passphrase(p) => {
                let mut r = age::scrypt::Recipient::new(p.clone());
                r.set_work_factor(log_n);
                age::Encryptor::with_recipients(iter::once(&r as &dyn age::Recipient))
                    .expect("one scrypt recipient is always valid")
            }
        };
        let mut out = Vec::new();
        let mut w = encryptor.wrap_output(&mut out).expect("writing to memory");
        w.write_all(&plaintext).expect("writing to memory");
        w.finish().expect("writing to memory");
        out
    }

    /// Opens an envelope with `key`. `Ok(None)` means the envelope is for somebody else.
    pub fn unwrap(envelope: &[u8], key: &Unlock) -> Result<Option<RepoKey>, OpenError> {
        let decryptor = age::Decryptor::new_buffered(envelope)?;
        let reader = match key {
            Unlock::Identities(ids) => {
                if decryptor.is_scrypt() {
                    return Ok(None);
                }
                decryptor.decrypt(ids.iter().map(|i| i as &dyn age::Identity))
            }
            Unlock::Passphrase(p) => {
                if !decryptor.is_scrypt() {
                    return Ok(None);
                }
                match scrypt_log_n(envelope) {
                    Some(n) if n > MAX_SCRYPT_LOG_N => return Err(OpenError::TooCostly(n)),
                    _ => {}
                }
                let mut identity = age::scrypt::Identity::new(p.clone());
                identity.set_max_work_factor(MAX_SCRYPT_LOG_N);
                decryptor.decrypt(iter::once(&identity as &dyn age::Identity))
            }
        };
        let mut reader = match reader {
            Ok(r) => r,
            Err(age::DecryptError::NoMatchingKeys) => return Ok(None),
            // A wrong passphrase fails to unwrap the scrypt stanza.
            Err(age::DecryptError::DecryptionFailed | age::DecryptError::KeyDecryptionFailed)
                if matches!(key, Unlock::Passphrase(_)) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        };
        let mut plaintext = Vec::new();
        reader
            .read_to_end(&mut plaintext)
            .map_err(|e| OpenError::Damaged(format!("envelope does not authenticate ({e})")))?;
        let secrets: Secrets = serde_json::from_slice(&plaintext)
            .map_err(|e| OpenError::Damaged(format!("envelope content is not valid ({e})")))?;
        let identity = age::x25519::Identity::from_str(&secrets.identity)
            .map_err(|e| OpenError::Damaged(format!("envelope identity is not valid ({e})")))?;
        let mut chunk_key = [0u8; 32];
        hex::decode_to_slice(&secrets.chunk_key, &mut chunk_key)
            .map_err(|_| OpenError::Damaged("envelope id key is not 64 hex digits".into()))?;
        Ok(Some(RepoKey {
            recipient: identity.to_public(),
            identity,
            chunk_key,
        }))
    }
}

/// Whom a key envelope is for.
pub enum Recipient {
    X25519(age::x25519::Recipient),
    Passphrase(SecretString),
}

impl Recipient {
    pub fn parse_x25519(text: &str) -> Result<Recipient, String> {
        age::x25519::Recipient::from_str(text.trim())
            .map(Recipient::X25519)
            .map_err(|e| {
                format!(
                    "\"{}\" is not an age X25519 recipient (age1...): {e}",
                    text.trim()
                )
            })
    }

    /// "x25519" or "passphrase", as recorded in the key's info object.
    pub fn kind(&self) -> &'static str {
        match self {
            Recipient::X25519(_) => "x25519",
            Recipient::Passphrase(_) => "passphrase",
        }
    }

    /// The public recipient, for X25519 keys.
    pub fn public(&self) -> Option<String> {
        match self {
            Recipient::X25519(r) => Some(r.to_string()),
            Recipient::Passphrase(_) => None,
        }
    }
}

/// What the user holds to open the repository.
pub enum Unlock {
    /// The identities of an age identity file.
    Identities(Vec<age::x25519::Identity>),
    Passphrase(SecretString),
}

impl Unlock {
    /// Parses an age identity file: `AGE-SECRET-KEY-1...` lines; `#` comments and blank lines are
    /// skipped.
    pub fn parse_identity_file(text: &str) -> Result<Unlock, String> {
        let mut ids = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = age::x25519::Identity::from_str(line).map_err(|_| {
                format!(
                    "line {} is not an age X25519 identity (AGE-SECRET-KEY-1...)",
                    n + 1
                )
            })?;
            ids.push(id);
        }
        if ids.is_empty() {
            return Err("it holds no age identity (AGE-SECRET-KEY-1...)".into());
        }
        Ok(Unlock::Identities(ids))
    }

    /// The recipients matching these identities (for `init` with an existing key file).
    pub fn recipients(&self) -> Vec<Recipient> {
        match self {
            Unlock::Identities(ids) => ids
                .iter()
                .map(|i| Recipient::X25519(i.to_public()))
                .collect(),
            Unlock::Passphrase(p) => vec![Recipient::Passphrase(p.clone())],
        }
    }
}

/// A new identity file's text and its public recipient.
pub fn generate_identity_file() -> (String, String) {
    let id = age::x25519::Identity::generate();
    let public = id.to_public().to_string();
    let created = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let text = format!(
        "# firesafe key, created {created}\n# public key: {public}\n{}\n",
        id.to_string().expose_secret()
    );
    (text, public)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passphrase_envelopes_have_a_fixed_work_factor_and_costly_ones_are_not_tried() {
        let (text, _) = generate_identity_file();
        let Unlock::Identities(ids) = Unlock::parse_identity_file(&text).unwrap() else {
            panic!("an identity file gives identities");
        };
        let key = RepoKey {
            recipient: ids[0].to_public(),
            identity: ids[0].clone(),
            chunk_key: [7; 32],
        };
        let pass = SecretString::from("correct horse".to_string());
        let envelope = key.wrap(&Recipient::Passphrase(pass.clone()));
        assert_eq!(scrypt_log_n(&envelope), Some(SCRYPT_LOG_N));
        let opened = RepoKey::unwrap(&envelope, &Unlock::Passphrase(pass.clone())).unwrap();
        assert_eq!(opened.unwrap().chunk_key, [7; 32]);
        // The same envelope claiming 2^23: refused before any scrypt work is done.
        let text = String::from_utf8_lossy(&envelope).into_owned();
        let forged = text.replacen(&format!(" {SCRYPT_LOG_N}\n"), " 23\n", 1);
        assert_ne!(forged, text, "the header names the work factor");
        let started = std::time::Instant::now();
        let result = RepoKey::unwrap(forged.as_bytes(), &Unlock::Passphrase(pass));
        assert!(
            matches!(result, Err(OpenError::TooCostly(23))),
            "{:?}",
            result.err()
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // An X25519 envelope has no work factor, and a passphrase never tries it.
        let x = key.wrap(&Recipient::X25519(ids[0].to_public()));
        assert_eq!(scrypt_log_n(&x), None);
    }

    #[test]
    fn new_envelopes_cost_128_mib_and_older_stronger_ones_still_open() {
        assert_eq!(scrypt_memory(17), 128 << 20);
        assert_eq!(scrypt_memory(MAX_SCRYPT_LOG_N), 1 << 30);
        assert_eq!(scrypt_memory(200), u64::MAX);
        let key = RepoKey::generate();
        let pass = SecretString::from("correct horse".to_string());
        // As firesafe made them before 2^17: 2^18.
        let old = key.wrap_at(&Recipient::Passphrase(pass.clone()), 18);
        assert_eq!(scrypt_log_n(&old), Some(18));
        let opened = RepoKey::unwrap(&old, &Unlock::Passphrase(pass)).unwrap();
        assert!(opened.is_some_and(|k| k.same_as(&key)));
        assert!(!RepoKey::generate().same_as(&key));
    }

    #[test]
    fn seal_open_round_trip_and_tamper() {
        let k = RepoKey::generate();
        let sealed = k.seal(b"hello world");
        assert_eq!(k.open(&sealed).unwrap(), b"hello world");
        let mut bad = sealed.clone();
        let n = bad.len() - 3;
        bad[n] ^= 1;
        assert!(matches!(k.open(&bad), Err(OpenError::Damaged(_))));
        let other = RepoKey::generate();
        assert!(matches!(other.open(&sealed), Err(OpenError::WrongKey)));
    }

    #[test]
    fn envelope_round_trip() {
        let k = RepoKey::generate();
        let (text, public) = generate_identity_file();
        let unlock = Unlock::parse_identity_file(&text).unwrap();
        let env = k.wrap(&Recipient::parse_x25519(&public).unwrap());
        let k2 = RepoKey::unwrap(&env, &unlock).unwrap().unwrap();
        assert_eq!(k2.blob_id(b"x"), k.blob_id(b"x"));
        let (other, _) = generate_identity_file();
        let other = Unlock::parse_identity_file(&other).unwrap();
        assert!(RepoKey::unwrap(&env, &other).unwrap().is_none());
    }
}
