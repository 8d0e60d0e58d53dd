//! `init`: creating a repository and the first key envelopes that open it.

use std::path::PathBuf;

use clap::Args;
use firesafe::format::chunker::ChunkerParams;
use firesafe::format::crypto::Recipient;
use firesafe::ops::keys;
use firesafe::store::repo::{InitOptions, Repository};
use firesafe::{Error, Result};

use super::Outcome;
use super::args::{target, unlock_from_env};

/// The `init` command's long help.
pub(super) const INIT_HELP: &str = "EXAMPLES:
  Create a repository on the NAS and a new key file (keep a copy of the key somewhere safe,
  such as the fire safe: without it the backups cannot be read):
    firesafe --repo /mnt/nas/firesafe init --generate-key \\
        /etc/firesafe/school.key

  Create one on object storage with an existing key and a recovery key's public half:
    FIRESAFE_KEY_FILE=/etc/firesafe/school.key firesafe --repo \\
        s3://school-dr/firesafe init \\
      --recipient age1...";

#[derive(Args, Debug)]
pub(super) struct InitArgs {
    /// Generate a new age identity file here (mode 0600) and give it a key envelope.
    #[arg(long, value_name = "FILE")]
    generate_key: Option<PathBuf>,
    /// Also give this age X25519 recipient (age1...) a key envelope. Repeatable.
    #[arg(long, value_name = "AGE1...")]
    recipient: Vec<String>,
    /// A label recorded with the key(s), shown by `key list`.
    #[arg(long, default_value = "initial key")]
    label: String,
    /// Target size of a pack object, in MiB.
    #[arg(long, default_value_t = 16, value_name = "MIB")]
    pack_size: u32,
    /// Default zstd compression level for backups (0 = off, 1-22).
    #[arg(long, default_value_t = 3, value_name = "LEVEL")]
    compression: i32,
    /// Average chunk size in KiB (minimum is half, maximum eight times).
    #[arg(long, default_value_t = 1024, value_name = "KIB")]
    chunk_avg: u32,
}

pub(super) async fn init(url: Option<&str>, a: InitArgs) -> Result<Outcome> {
    let target = target(url, true)?;
    let mut recipients: Vec<(Recipient, String)> = Vec::new();
    let mut generated = None;
    if let Some(path) = &a.generate_key {
        if target.exists(firesafe::store::repo::CONFIG).await? {
            return Err(Error::AlreadyInitialised {
                target: target.name().to_string(),
            });
        }
        let (_, public) = keys::create_identity_file(path)?;
        recipients.push((
            Recipient::parse_x25519(&public).map_err(Error::Usage)?,
            a.label.clone(),
        ));
        generated = Some((path.clone(), public));
    } else if let Some(unlock) = unlock_from_env()? {
        recipients.extend(
            unlock
                .recipients()
                .into_iter()
                .map(|r| (r, a.label.clone())),
        );
    }
    for r in &a.recipient {
        recipients.push((
            Recipient::parse_x25519(r).map_err(Error::Usage)?,
            a.label.clone(),
        ));
    }
    if recipients.is_empty() {
        return Err(Error::Usage(
            "init needs a key: pass --generate-key FILE, or set FIRESAFE_KEY_FILE or FIRESAFE_PASSPHRASE".into(),
        ));
    }
    let options = InitOptions {
        chunker: ChunkerParams::from_avg(a.chunk_avg.saturating_mul(1024)),
        pack_size: a.pack_size.saturating_mul(1024 * 1024),
        compression: a.compression,
    };
    let repo = Repository::init(target, &recipients, &options).await?;
    println!(
        "created repository {} on {}",
        repo.config().id.short(),
        repo.target().name()
    );
    if repo.conditional_writes() == Some(false) {
        println!(
            "note: {}{}",
            repo.target().name(),
            firesafe::schedule::run::IGNORES_CONDITIONAL
        );
    }
    if let Some((path, public)) = generated {
        println!("key file: {} (public key {public})", path.display());
        println!(
            "keep a copy of the key file somewhere safe: without it the backups cannot be read"
        );
    }
    Ok(Outcome::Success)
}
