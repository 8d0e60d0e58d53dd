//! `key`: the key envelopes that open a repository, on one copy (`--repo`) or on every copy of
//! a schedule's (`--schedule`).

use std::path::PathBuf;

use chrono::Local;
use clap::{Args, Subcommand};
use firesafe::format::crypto::Recipient;
use firesafe::ops::keys::{self, KeyEntry};
use firesafe::{Error, Result};

use super::Outcome;
use super::args::{ConfigDir, open, unlock_from_env};

// `--schedule NAME` (every copy of a schedule's repository) instead of `--repo`, and the
// configuration directory it is read from.
#[derive(Args, Debug)]
#[command(mut_arg("config_dir", |a| a.help("With --schedule: the directory holding targets/ and schedules/")))]
pub(super) struct KeyScope {
    /// Act on every target of this schedule instead of --repo: the same key added to, removed
    /// from or listed on every copy. The key comes from FIRESAFE_KEY_FILE or the schedule's.
    #[arg(long, value_name = "NAME")]
    schedule: Option<String>,
    #[command(flatten)]
    config: ConfigDir,
}

#[derive(Subcommand, Debug)]
pub(super) enum KeyCommand {
    /// List the key envelopes (with --schedule: on every copy, and which copies hold each).
    #[command(after_help = "EXAMPLES:
  firesafe --repo /mnt/nas/firesafe key list
  firesafe key list --schedule nightly

With --schedule each key's copies are shown (\"nas only — run `firesafe sync nightly`\" for one
the other copies lack), and the exit status is 1 when some copy lacks a key or was not read.")]
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        scope: KeyScope,
    },
    /// Add a key: an age recipient, a newly generated identity file, or a passphrase.
    #[command(after_help = "EXAMPLES:
  firesafe key add --recipient age1... --label \"recovery key (fire safe)\"
  firesafe key add --generate /root/bursar.key --label \"bursar's laptop\"
  FIRESAFE_NEW_PASSPHRASE='...' firesafe key add --passphrase --label \\
      \"head's passphrase\"
  On every copy of a schedule's repository (the NAS and the offsite copy):
    firesafe key add --schedule nightly --recipient age1... --label \\
        \"recovery key (fire safe)\"

The new passphrase is read from FIRESAFE_NEW_PASSPHRASE, or asked for twice on the terminal.
With --repo only that copy gets the key; the schedule's next run or sync copies it to the
others. With --schedule a copy that is down is named, the exit status is 1, and the next run or
sync copies the key there.")]
    Add {
        /// An age X25519 recipient (age1...).
        #[arg(long, value_name = "AGE1...", conflicts_with_all = ["generate", "passphrase"])]
        recipient: Option<String>,
        /// Generate a new identity file here (mode 0600).
        #[arg(long, value_name = "FILE", conflicts_with = "passphrase")]
        generate: Option<PathBuf>,
        /// Add a passphrase.
        #[arg(long)]
        passphrase: bool,
        /// Who or what the key is for.
        #[arg(long, default_value = "")]
        label: String,
        #[command(flatten)]
        scope: KeyScope,
    },
    /// Remove a key envelope (by id or prefix, from `key list`).
    #[command(after_help = "EXAMPLES:
  firesafe --repo /mnt/nas/firesafe key remove 1a2b3c4d
  firesafe key remove --schedule nightly 1a2b3c4d

A removal record (keys-removed/ID) is left on the copy, so the schedule's next run or sync
removes the key from the other copies too; --schedule removes it from every copy now.")]
    Remove {
        id: String,
        /// Allow removing the key used to run this command.
        #[arg(long)]
        force: bool,
        #[command(flatten)]
        scope: KeyScope,
    },
}

fn new_passphrase() -> Result<String> {
    if let Ok(p) = std::env::var("FIRESAFE_NEW_PASSPHRASE") {
        if p.chars().count() < 8 {
            return Err(Error::Usage(
                "FIRESAFE_NEW_PASSPHRASE is shorter than 8 characters".into(),
            ));
        }
        return Ok(p);
    }
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(Error::Usage(
            "no new passphrase: set FIRESAFE_NEW_PASSPHRASE, or run on a terminal to be asked"
                .into(),
        ));
    }
    let first = rpassword::prompt_password("new passphrase: ")
        .map_err(|e| Error::local("/dev/tty", "cannot read", e))?;
    let second = rpassword::prompt_password("again: ")
        .map_err(|e| Error::local("/dev/tty", "cannot read", e))?;
    if first != second {
        return Err(Error::Usage(
            "the passphrases differ; nothing was changed".into(),
        ));
    }
    if first.chars().count() < 8 {
        return Err(Error::Usage(
            "the passphrase is shorter than 8 characters".into(),
        ));
    }
    Ok(first)
}

pub(super) async fn key_cmd(url: Option<&str>, k: KeyCommand) -> Result<Outcome> {
    let scope = match &k {
        KeyCommand::List { scope, .. }
        | KeyCommand::Add { scope, .. }
        | KeyCommand::Remove { scope, .. } => scope,
    };
    if let Some(name) = scope.schedule.clone() {
        return schedule_key_cmd(&name, k).await;
    }
    let repo = open(url).await?;
    match k {
        KeyCommand::List { json, .. } => print_keys(&keys::list(&repo).await?, json),
        KeyCommand::Add {
            recipient,
            generate,
            passphrase,
            label,
            ..
        } => {
            let who = new_key(recipient, generate, passphrase)?;
            let id = keys::add(&repo, &who, &label).await?;
            println!("added key {} ({})", id.short(), who.kind());
        }
        KeyCommand::Remove { id, force, .. } => {
            let removed = keys::remove(&repo, &id, force).await?;
            println!("removed key {}", removed.short());
        }
    }
    Ok(Outcome::Success)
}

/// The key `key add` was asked to add.
fn new_key(
    recipient: Option<String>,
    generate: Option<PathBuf>,
    passphrase: bool,
) -> Result<Recipient> {
    if let Some(r) = recipient {
        Recipient::parse_x25519(&r).map_err(Error::Usage)
    } else if let Some(path) = &generate {
        let (_, public) = keys::create_identity_file(path)?;
        println!("key file: {} (public key {public})", path.display());
        Recipient::parse_x25519(&public).map_err(Error::Usage)
    } else if passphrase {
        Ok(Recipient::Passphrase(new_passphrase()?.into()))
    } else {
        Err(Error::Usage(
            "say which key to add: --recipient AGE1..., --generate FILE or --passphrase".into(),
        ))
    }
}

/// `key add|remove|list --schedule NAME`: on every copy of the schedule's repository.
async fn schedule_key_cmd(name: &str, k: KeyCommand) -> Result<Outcome> {
    use firesafe::schedule::keys as every;
    let scope = match &k {
        KeyCommand::List { scope, .. }
        | KeyCommand::Add { scope, .. }
        | KeyCommand::Remove { scope, .. } => scope,
    };
    let config = scope.config.load()?;
    let schedule = config.schedule(name)?;
    let unlock = match unlock_from_env()? {
        Some(u) => u,
        None => config.schedule_key(schedule)?,
    };
    let (changed, what) = match k {
        KeyCommand::List { json, .. } => {
            let list = every::list(&config, schedule, &unlock).await?;
            return Ok(print_schedule_keys(&list, name, json));
        }
        KeyCommand::Add {
            recipient,
            generate,
            passphrase,
            label,
            ..
        } => {
            let who = new_key(recipient, generate, passphrase)?;
            let kind = who.kind();
            let changed = every::add(&config, schedule, &unlock, &who, &label).await?;
            (changed, format!("added key ({kind})"))
        }
        KeyCommand::Remove { id, force, .. } => {
            let changed = every::remove(&config, schedule, &unlock, &id, force).await?;
            (changed, "removed key".to_string())
        }
    };
    println!(
        "{what} {} on {}",
        changed.id.short(),
        changed.done.join(", ")
    );
    for n in &changed.not_reached {
        println!("NOT CHANGED: {n}");
    }
    if changed.not_reached.is_empty() {
        return Ok(Outcome::Success);
    }
    println!(
        "the next `firesafe run {name}` or `firesafe sync {name}` carries the change to the copies not changed"
    );
    Ok(Outcome::Findings)
}

/// Each key of a schedule's repository and which copies hold it, as a table or as JSON.
/// `Findings` when some copy lacks a key another holds, or could not be read.
fn print_schedule_keys(
    list: &firesafe::schedule::keys::ScheduleKeys,
    schedule: &str,
    json: bool,
) -> Outcome {
    let level = list.not_reached.is_empty()
        && list
            .keys
            .iter()
            .all(|k| k.copies.len() == list.copies.len());
    if json {
        println!("{}", serde_json::to_string_pretty(list).expect("JSON"));
        return Outcome::clean_if(level);
    }
    println!(
        "{:<8}  {:<10}  {:<24}  {:<62}  COPIES",
        "ID", "KIND", "LABEL", "FINGERPRINT (PUBLIC KEY)"
    );
    for h in &list.keys {
        let k = &h.entry;
        let copies = if h.copies.len() == list.copies.len() {
            h.copies.join(", ")
        } else {
            format!(
                "{} only — run `firesafe sync {schedule}`",
                h.copies.join(", ")
            )
        };
        println!(
            "{:<8}  {:<10}  {:<24}  {:<62}  {copies}",
            k.id.short(),
            k.kind,
            firesafe::format::tree::printable(&k.label),
            k.recipient.as_deref().unwrap_or("-"),
        );
    }
    for n in &list.not_reached {
        println!("NOT READ: {n}");
    }
    Outcome::clean_if(level)
}

/// The key envelopes as a table, or as JSON.
fn print_keys(list: &[KeyEntry], json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(list).expect("JSON"));
        return;
    }
    println!(
        "{:<8}  {:<10}  {:<16}  {:<19}  LABEL",
        "ID", "KIND", "HOST", "ADDED (LOCAL TIME)"
    );
    for k in list {
        println!(
            "{:<8}  {:<10}  {:<16}  {:<19}  {}{}{}{}",
            k.id.short(),
            k.kind,
            k.host.clone().unwrap_or_default(),
            k.created
                .map(|c| c
                    .with_timezone(&Local)
                    .format("%Y-%m-%d %H:%M:%S")
                    .to_string())
                .unwrap_or_default(),
            firesafe::format::tree::printable(&k.label),
            k.recipient
                .as_ref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            if k.current { "  [in use]" } else { "" },
            match k.scrypt_log_n {
                Some(n) if k.too_costly() => format!(
                    "  [never tried: scrypt work factor 2^{n}, above the maximum 2^{}]",
                    firesafe::format::crypto::MAX_SCRYPT_LOG_N
                ),
                _ => String::new(),
            }
        );
    }
}
