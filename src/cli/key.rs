//! `key`: the key envelopes that open a repository, on one copy (`--repo`) or on every copy of
//! a schedule's (`--schedule`): list, add, remove, and re-wrap a passphrase (`passwd`).

use std::path::PathBuf;

use clap::{Args, Subcommand};
use firesafe::format::crypto::{self, Recipient};
use firesafe::ops::keys;
use firesafe::{Error, Result};

use super::Outcome;
use super::args::{ConfigDir, open, unlock_from_env};
use super::key_list::{print_keys, print_schedule_keys};

/// The help of `key`: what a key is, what a passphrase costs, and an example of each command.
pub(super) const HELP: &str =
    "Each key is an envelope (keys/ID) holding the repository's secrets, for an age
identity or a passphrase; adding or removing one rewrites no data. A passphrase
envelope costs scrypt work to open: new ones get 2^17 (128 MiB), `key list`
shows each one's, and `key passwd` moves an older one to 2^17.

EXAMPLES:
  firesafe --repo /mnt/nas/firesafe key list
  firesafe key add --schedule nightly --recipient age1... --label \\
      \"recovery key (fire safe)\"
  FIRESAFE_PASSPHRASE='...' firesafe key passwd 1a2b3c4d
  firesafe key remove --schedule nightly 1a2b3c4d";

// `--schedule NAME` (every copy of a schedule's repository) instead of `--repo`, and the
// configuration directory it is read from.
#[derive(Args, Debug)]
#[command(mut_arg("config_dir", |a| a.help("With --schedule: the directory holding targets/ and schedules/")))]
pub(super) struct KeyScope {
    /// Act on every target of this schedule instead of --repo: the same key added to, removed
    /// from, re-wrapped or listed on every copy. The key comes from FIRESAFE_KEY_FILE or the
    /// schedule's.
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

A passphrase key shows its scrypt work factor (\"scrypt 2^17\"), with what it costs to open and
the `firesafe key passwd` that moves it when it was made with another one. With --schedule each
key's copies are shown (\"nas only — run `firesafe sync nightly`\" for one the other copies
lack), and the exit status is 1 when some copy lacks a key or was not read.")]
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
    /// Re-wrap a passphrase key at the current scrypt work factor, with the same or a new
    /// passphrase.
    #[command(after_help = "EXAMPLES:
  FIRESAFE_PASSPHRASE='...' firesafe --repo /mnt/nas/firesafe key passwd \\
      1a2b3c4d
  Keeping the passphrase:
    FIRESAFE_PASSPHRASE='...' firesafe key passwd 1a2b3c4d \\
        --new-passphrase-env FIRESAFE_PASSPHRASE
  On every copy of a schedule's repository:
    firesafe key passwd --schedule nightly 1a2b3c4d

The new envelope gets scrypt work factor 2^17 (128 MiB and a few tenths of a
second to open); `key list` shows each passphrase key's. The new passphrase
comes from the variable --new-passphrase-env names, else from
FIRESAFE_NEW_PASSPHRASE, else it is asked for twice on the terminal. The new
envelope (a new key id) is written and read back opening the repository before
the old one is removed, with a removal record as `key remove` leaves: the
schedule's next run or sync moves the other copies too, and --schedule moves
every copy now. The repository can be opened with a key file
(FIRESAFE_KEY_FILE) instead of the old passphrase.")]
    Passwd {
        /// The passphrase key's id or prefix, from `key list`.
        id: String,
        /// Read the new passphrase from this environment variable (FIRESAFE_PASSPHRASE keeps
        /// the passphrase you opened with).
        #[arg(long, value_name = "VAR")]
        new_passphrase_env: Option<String>,
        #[command(flatten)]
        scope: KeyScope,
    },
}

impl KeyCommand {
    fn scope(&self) -> &KeyScope {
        match self {
            KeyCommand::List { scope, .. }
            | KeyCommand::Add { scope, .. }
            | KeyCommand::Remove { scope, .. }
            | KeyCommand::Passwd { scope, .. } => scope,
        }
    }
}

/// A new passphrase: from the environment variable `var`, named by `--new-passphrase-env`
/// (which must then be set), else from FIRESAFE_NEW_PASSPHRASE, else asked twice on the
/// terminal.
fn new_passphrase(var: Option<&str>) -> Result<String> {
    let name = var.unwrap_or("FIRESAFE_NEW_PASSPHRASE");
    match std::env::var(name) {
        Ok(p) if p.chars().count() < 8 => {
            return Err(Error::Usage(format!("{name} is shorter than 8 characters")));
        }
        Ok(p) => return Ok(p),
        Err(_) if var.is_some() => {
            return Err(Error::Usage(format!(
                "--new-passphrase-env {name}: {name} is not set (export it, or leave out the flag to be asked)"
            )));
        }
        Err(_) => {}
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
    if let Some(name) = k.scope().schedule.clone() {
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
            println!(
                "added key {} ({}) to this copy only; a schedule's next run or sync carries it to its other copies (or use --schedule NAME)",
                id.short(),
                who.kind()
            );
        }
        KeyCommand::Remove { id, force, .. } => {
            let removed = keys::remove(&repo, &id, force).await?;
            println!(
                "removed key {} from this copy only; a schedule's next run or sync carries the removal to its other copies (or use --schedule NAME)",
                removed.short()
            );
        }
        KeyCommand::Passwd {
            id,
            new_passphrase_env,
            ..
        } => {
            let new = new_passphrase(new_passphrase_env.as_deref())?.into();
            let done = keys::passwd(&repo, &id, &new).await?;
            println!(
                "{} {}; the old key is removed",
                moved(&done),
                done.new.short()
            );
        }
    }
    Ok(Outcome::Success)
}

/// `moved passphrase key 1a2b3c4d from scrypt 2^18 to 2^17 as key`, before the new key's id.
fn moved(r: &keys::Rewrap) -> String {
    format!(
        "moved passphrase key {} from scrypt 2^{} to 2^{} as key",
        r.old.short(),
        r.old_log_n,
        crypto::SCRYPT_LOG_N
    )
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
        Ok(Recipient::Passphrase(new_passphrase(None)?.into()))
    } else {
        Err(Error::Usage(
            "say which key to add: --recipient AGE1..., --generate FILE or --passphrase".into(),
        ))
    }
}

/// `key add|remove|passwd|list --schedule NAME`: on every copy of the schedule's repository.
async fn schedule_key_cmd(name: &str, k: KeyCommand) -> Result<Outcome> {
    use firesafe::schedule::keys as every;
    let config = k.scope().config.load()?;
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
        KeyCommand::Passwd {
            id,
            new_passphrase_env,
            ..
        } => {
            let new = new_passphrase(new_passphrase_env.as_deref())?.into();
            let (done, changed) = every::passwd(&config, schedule, &unlock, &id, &new).await?;
            (changed, moved(&done))
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
