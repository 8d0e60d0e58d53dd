//! Command-line parsing and printing. No logic lives here: each command opens the repository,
//! calls the library and prints what it returns.

use std::path::{Path, PathBuf};

use chrono::Local;
use clap::{Args, Parser, Subcommand};
use firesafe::backup::{self, BackupOptions};
use firesafe::blobs::BlobReader;
use firesafe::check::{self, CheckOptions};
use firesafe::crypto::{self, Recipient, Unlock};
use firesafe::index::Index;
use firesafe::repo::{InitOptions, Repository};
use firesafe::restore::{self, RestoreOptions};
use firesafe::snapshot::Catalog;
use firesafe::target::{Location, Target, TargetOptions};
use firesafe::{Error, Result, keys, ls, progress};
use serde_json::json;

/// How a command ended, as the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success = 0,
    /// Completed, with findings or warnings (a partial snapshot, check findings, files not restored).
    Findings = 1,
}

const KEY_HELP: &str = "\
KEYS:
  The repository key comes from the environment:
    FIRESAFE_KEY_FILE    path of an age identity file (AGE-SECRET-KEY-1...), or
    FIRESAFE_PASSPHRASE  a passphrase added with `firesafe key add --passphrase`.

EXIT STATUS:
  0  success
  1  completed with findings or warnings (partial snapshot, check findings, files not restored)
  2  could not run (bad arguments, wrong key, target unreachable, repository missing)";

#[derive(Parser, Debug)]
#[command(
    name = "firesafe",
    version,
    about = "Encrypted, deduplicated backups of school file shares, with checks you can show governors",
    long_about = "firesafe backs up file shares into an encrypted, deduplicated repository on a NAS path \
or S3-compatible object storage, restores them, and checks that every snapshot can really be restored.",
    after_help = KEY_HELP
)]
pub struct Cli {
    /// Repository location: a directory (a mounted NAS share or disk) or s3://BUCKET/PREFIX.
    /// For S3, the endpoint, region and credentials come from AWS_ENDPOINT_URL, AWS_REGION,
    /// AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (AWS_ALLOW_HTTP=true for plain http).
    #[arg(long, global = true, env = "FIRESAFE_REPO", value_name = "URL")]
    repo: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Create a new repository.
    #[command(after_help = "EXAMPLES:
  Create a repository on the NAS and a new key file (keep a copy of the key somewhere safe,
  such as the fire safe: without it the backups cannot be read):
    firesafe --repo /mnt/nas/firesafe init --generate-key /etc/firesafe/school.key

  Create one on object storage with an existing key and a recovery key's public half:
    FIRESAFE_KEY_FILE=/etc/firesafe/school.key firesafe --repo s3://school-dr/firesafe init \\
      --recipient age1...")]
    Init(InitArgs),
    /// Back up files and directories as a new snapshot of a source (share).
    #[command(after_help = "EXAMPLES:
  firesafe --repo /mnt/nas/firesafe backup /srv/shares/curriculum --source curriculum
  firesafe --repo /mnt/nas/firesafe backup /srv/shares/admin --source admin --tag end-of-term

Files that cannot be read are listed as warnings; the snapshot is still saved, marked partial,
and the exit status is 1.")]
    Backup(BackupArgs),
    /// List snapshots.
    #[command(after_help = "EXAMPLES:
  firesafe --repo /mnt/nas/firesafe snapshots
  firesafe --repo /mnt/nas/firesafe snapshots --source admin --json")]
    Snapshots(SnapshotsArgs),
    /// List the files in a snapshot.
    #[command(
        after_help = "SNAPSHOT is an id (or its first digits) from `firesafe snapshots`, or `latest`.

EXAMPLES:
  firesafe --repo /mnt/nas/firesafe ls latest --source curriculum
  firesafe --repo /mnt/nas/firesafe ls 1a2b3c4d curriculum/year7"
    )]
    Ls(LsArgs),
    /// Restore a snapshot, or one file or folder from it, into a directory.
    #[command(
        after_help = "SNAPSHOT is an id (or its first digits) from `firesafe snapshots`, or `latest`;
add :PATH to restore one file or folder (paths as `firesafe ls` shows them).
The target directory must be new or empty; existing files are never replaced unless --overwrite
is given. Files are written under temporary names and appear under their own names only when
complete.

EXAMPLES:
  Restore a deleted worksheet to a scratch folder:
    firesafe --repo /mnt/nas/firesafe restore latest:curriculum/year7/fractions.docx --to /tmp/restore --source curriculum
  Restore a whole share after a disaster:
    firesafe --repo /mnt/nas/firesafe restore 1a2b3c4d --to /srv/shares-restored"
    )]
    Restore(RestoreArgs),
    /// Check that every snapshot in the repository can be restored.
    #[command(
        after_help = "Without --read-data, the check reads the index, every snapshot and every
directory listing, and confirms that all the data they refer to is indexed and present. With
--read-data it also downloads and verifies every byte. Findings name the damaged object and the
snapshots and files it affects; the exit status is then 1.

EXAMPLES:
  firesafe --repo /mnt/nas/firesafe check
  firesafe --repo s3://school-dr/firesafe check --read-data"
    )]
    Check(CheckArgs),
    /// Manage the keys that can open the repository.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Run one schedule now, exactly as the nightly run would: back up its sources and copy the
    /// result to every one of its targets.
    #[command(
        after_help = "The schedule is schedules/NAME.toml and its targets targets/*.toml under the
configuration directory (--config-dir, default: the current directory). Every target holds the
same repository: the backup goes to the first target that is reachable, and the new objects are
then copied to the others. A target that is down does not stop the others; the run ends with
exit status 1 and names it, and the next run brings it up to date.

EXAMPLES:
  First run of the shipped example (creates the key file and the repositories):
    firesafe run nightly --init
  Later runs:
    firesafe run nightly"
    )]
    Run(RunArgs),
    /// Show, per source, where its copies are, how old they are, and the 3-2-1 verdict.
    #[command(
        after_help = "The verdict comes from what is really on each target: every target is opened
and the newest complete snapshot of each source there is what counts. OK: the policy is met.
DEGRADED: every copy exists but some are older than the policy allows. VIOLATED: a copy, a
medium or the offsite copy is missing. The exit status is 0 only when every verdict is OK and
every target could be read and is up to date.

EXAMPLES:
  firesafe status
  firesafe status nightly --json"
    )]
    Status(StatusArgs),
    /// Bring every target of a schedule up to date with the others, without backing up.
    #[command(after_help = "EXAMPLES:
  After the offsite store was unreachable during the night:
    firesafe sync nightly")]
    Sync(SyncArgs),
    /// Check the configuration in targets/ and schedules/.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Run every schedule at its times (the nightly service).
    #[command(
        after_help = "Times are read in each schedule's time zone; the clock changes in March and
October neither skip nor double a run. A run missed while the machine was off runs once at
start-up. Two runs of one schedule never overlap (a `firesafe run` of the same schedule waits its
turn by refusing to start). On SIGTERM the current backup stores and indexes what it has read
and the daemon exits; the next run continues from there. Each run is recorded in the state
directory (history.jsonl). Logs go to standard error, as text or JSON lines, without secrets.

A systemd unit is in docs/systemd/firesafe.service. Without systemd, cron can call
`firesafe run SCHEDULE` instead (see README).

EXAMPLES:
  firesafe daemon --config-dir /etc/firesafe
  firesafe daemon --config-dir /etc/firesafe --log-format json"
    )]
    Daemon(DaemonArgs),
}

#[derive(Args, Debug)]
struct StatusArgs {
    /// Only this schedule (default: every schedule).
    schedule: Option<String>,
    #[arg(
        long,
        default_value = ".",
        env = "FIRESAFE_CONFIG_DIR",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct SyncArgs {
    /// The schedule whose targets to bring up to date.
    schedule: String,
    #[arg(
        long,
        default_value = ".",
        env = "FIRESAFE_CONFIG_DIR",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
}

#[derive(Subcommand, Debug)]
enum ConfigCommand {
    /// Validate every file and report each problem with its file, line and key.
    #[command(after_help = "EXAMPLES:
  firesafe config check
  firesafe config check --config-dir /etc/firesafe")]
    Check {
        #[arg(
            long,
            default_value = ".",
            env = "FIRESAFE_CONFIG_DIR",
            value_name = "DIR"
        )]
        config_dir: PathBuf,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The schedule's name (schedules/NAME.toml).
    schedule: String,
    /// The directory holding targets/ and schedules/.
    #[arg(
        long,
        default_value = ".",
        env = "FIRESAFE_CONFIG_DIR",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
    /// First run: create the schedule's key file and repositories where they do not exist.
    #[arg(long)]
    init: bool,
    /// Where run history and locks are kept (default /var/lib/firesafe for root,
    /// ~/.local/state/firesafe otherwise).
    #[arg(long, env = "FIRESAFE_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct DaemonArgs {
    #[arg(
        long,
        default_value = ".",
        env = "FIRESAFE_CONFIG_DIR",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
    /// Where run history and locks are kept (default /var/lib/firesafe for root,
    /// ~/.local/state/firesafe otherwise).
    #[arg(long, env = "FIRESAFE_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Log lines on standard error as text or JSON (one object per line).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Args, Debug)]
struct InitArgs {
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

#[derive(Args, Debug)]
struct BackupArgs {
    /// Files and directories to back up. Each appears in the snapshot under its last component.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The source (share) name recorded in the snapshot, such as curriculum, admin or staff.
    #[arg(long, value_name = "NAME")]
    source: String,
    /// A tag recorded in the snapshot. Repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// zstd level for this backup (0 = off); default: the repository's.
    #[arg(long, value_name = "LEVEL")]
    compression: Option<i32>,
    /// Read every file, even those unchanged since the previous snapshot.
    #[arg(long)]
    force_read: bool,
}

#[derive(Args, Debug)]
struct SnapshotsArgs {
    /// Only snapshots of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct LsArgs {
    /// Snapshot id (or prefix), or `latest`.
    snapshot: String,
    /// A path inside the snapshot to list.
    path: Option<String>,
    /// With `latest`: the newest snapshot of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct RestoreArgs {
    /// SNAPSHOT or SNAPSHOT:PATH.
    #[arg(value_name = "SNAPSHOT[:PATH]")]
    what: String,
    /// Directory to restore into (new or empty unless --overwrite).
    #[arg(long, value_name = "DIR")]
    to: PathBuf,
    /// With `latest`: the newest snapshot of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Replace files that already exist in the target directory.
    #[arg(long)]
    overwrite: bool,
}

#[derive(Args, Debug)]
struct CheckArgs {
    /// Download, decrypt and verify every blob.
    #[arg(long)]
    read_data: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Subcommand, Debug)]
enum KeyCommand {
    /// List the key envelopes.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Add a key: an age recipient, a newly generated identity file, or a passphrase.
    #[command(after_help = "EXAMPLES:
  firesafe key add --recipient age1... --label \"recovery key (fire safe)\"
  firesafe key add --generate /root/bursar.key --label \"bursar's laptop\"
  FIRESAFE_NEW_PASSPHRASE='...' firesafe key add --passphrase --label \"head's passphrase\"

The new passphrase is read from FIRESAFE_NEW_PASSPHRASE, or asked for twice on the terminal.")]
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
    },
    /// Remove a key envelope (by id or prefix, from `key list`).
    Remove {
        id: String,
        /// Allow removing the key used to run this command.
        #[arg(long)]
        force: bool,
    },
}

pub async fn run(cli: Cli) -> Result<Outcome> {
    let repo_url = cli.repo.as_deref();
    match cli.command {
        Command::Init(a) => init(repo_url, a).await,
        Command::Backup(a) => backup_cmd(repo_url, a).await,
        Command::Snapshots(a) => snapshots(repo_url, a).await,
        Command::Ls(a) => ls_cmd(repo_url, a).await,
        Command::Restore(a) => restore_cmd(repo_url, a).await,
        Command::Check(a) => check_cmd(repo_url, a).await,
        Command::Key(k) => key_cmd(repo_url, k).await,
        Command::Run(a) => run_cmd(a).await,
        Command::Status(a) => status_cmd(a).await,
        Command::Sync(a) => sync_cmd(a).await,
        Command::Config(ConfigCommand::Check { config_dir }) => config_check(&config_dir),
        Command::Daemon(a) => daemon_cmd(a).await,
    }
}

fn target(url: Option<&str>, create: bool) -> Result<Target> {
    let url = url.ok_or_else(|| {
        Error::Usage("no repository given: pass --repo DIR or --repo s3://BUCKET/PREFIX (or set FIRESAFE_REPO)".into())
    })?;
    let location = Location::parse(url)?;
    Target::open(url, &location, &TargetOptions::default(), create)
}

/// The user's key from the environment.
fn unlock_from_env() -> Result<Option<Unlock>> {
    if let Some(path) = std::env::var_os("FIRESAFE_KEY_FILE") {
        let path = PathBuf::from(path);
        let text = std::fs::read_to_string(&path).map_err(|e| {
            Error::WrongKey(format!(
                "FIRESAFE_KEY_FILE={}: cannot read the key file ({e}); check the path",
                path.display()
            ))
        })?;
        let unlock = Unlock::parse_identity_file(&text).map_err(|why| {
            Error::WrongKey(format!("FIRESAFE_KEY_FILE={}: {why}", path.display()))
        })?;
        return Ok(Some(unlock));
    }
    if let Ok(p) = std::env::var("FIRESAFE_PASSPHRASE") {
        if p.is_empty() {
            return Err(Error::WrongKey("FIRESAFE_PASSPHRASE is empty".into()));
        }
        return Ok(Some(Unlock::Passphrase(p.into())));
    }
    Ok(None)
}

async fn open(url: Option<&str>) -> Result<Repository> {
    let target = target(url, false)?;
    // Fail on a missing repository before asking for a key.
    Repository::read_config(&target).await?;
    let unlock = unlock_from_env()?.ok_or_else(|| {
        Error::WrongKey(
            "no key given: set FIRESAFE_KEY_FILE to the repository's age identity file, or FIRESAFE_PASSPHRASE".into(),
        )
    })?;
    Repository::open(target, &unlock).await
}

fn write_new_key_file(path: &Path) -> Result<String> {
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
    Ok(public)
}

async fn init(url: Option<&str>, a: InitArgs) -> Result<Outcome> {
    let target = target(url, true)?;
    let mut recipients: Vec<(Recipient, String)> = Vec::new();
    let mut generated = None;
    if let Some(path) = &a.generate_key {
        if target.exists(firesafe::repo::CONFIG).await? {
            return Err(Error::AlreadyInitialised {
                target: target.name().to_string(),
            });
        }
        let public = write_new_key_file(path)?;
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
    let avg = a.chunk_avg.saturating_mul(1024);
    let options = InitOptions {
        chunker: firesafe::chunker::ChunkerParams {
            min_size: avg / 2,
            avg_size: avg,
            max_size: avg.saturating_mul(8),
            ..Default::default()
        },
        pack_size: a.pack_size.saturating_mul(1024 * 1024),
        compression: a.compression,
    };
    let repo = Repository::init(target, &recipients, &options).await?;
    println!(
        "created repository {} on {}",
        repo.config().id.short(),
        repo.target().name()
    );
    if let Some((path, public)) = generated {
        println!("key file: {} (public key {public})", path.display());
        println!(
            "keep a copy of the key file somewhere safe: without it the backups cannot be read"
        );
    }
    Ok(Outcome::Success)
}

async fn backup_cmd(url: Option<&str>, a: BackupArgs) -> Result<Outcome> {
    let repo = open(url).await?;
    let mut options = BackupOptions::new(a.source, a.paths);
    options.tags = a.tags;
    options.compression = a.compression;
    options.force_read = a.force_read;
    options.progress = progress::on_terminal();
    options.cancel = Some(stop_on_signal().0);
    let report = backup::backup(&repo, &options).await?;
    let s = &report.snapshot;
    let st = &s.stats;
    for key in &report.damaged_index {
        eprintln!(
            "firesafe: warning: index object {key} could not be read; its data was stored again (run `firesafe check`)"
        );
    }
    for w in &s.warnings {
        eprintln!("firesafe: warning: {}: {}", w.path, w.message);
    }
    println!(
        "snapshot {} saved{}: source {}, {} files ({}), {} new, {} changed, {} unchanged; added {} ({} stored) in {:.1}s{}",
        report.id.short(),
        if s.partial { " (partial)" } else { "" },
        s.source,
        st.files,
        bytesize::ByteSize(st.bytes),
        st.files_new,
        st.files_changed,
        st.files_unchanged,
        bytesize::ByteSize(st.bytes_added),
        bytesize::ByteSize(st.bytes_stored),
        (s.end - s.start).num_milliseconds() as f64 / 1000.0,
        if s.warnings.is_empty() {
            String::new()
        } else {
            format!(
                "; {} warning(s): some files could not be read",
                s.warnings.len()
            )
        },
    );
    Ok(if s.partial {
        Outcome::Findings
    } else {
        Outcome::Success
    })
}

async fn snapshots(url: Option<&str>, a: SnapshotsArgs) -> Result<Outcome> {
    let repo = open(url).await?;
    let catalog = Catalog::load(&repo).await?;
    for (key, e) in &catalog.damaged {
        eprintln!("firesafe: warning: snapshot object {key} could not be read: {e}");
    }
    let list: Vec<_> = catalog
        .snapshots
        .iter()
        .filter(|l| a.source.as_ref().is_none_or(|s| &l.snapshot.source == s))
        .collect();
    if a.json {
        let out: Vec<_> = list
            .iter()
            .map(|l| {
                let mut v = serde_json::to_value(&l.snapshot).expect("snapshot to JSON");
                v["id"] = json!(l.id.to_hex());
                v["short_id"] = json!(l.id.short());
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
        return Ok(Outcome::Success);
    }
    println!(
        "{:<8}  {:<19}  {:<14}  {:<12}  {:>8}  {:>10}  {:<8}  TAGS",
        "ID", "TAKEN (LOCAL TIME)", "SOURCE", "HOST", "FILES", "SIZE", "STATUS"
    );
    for l in &list {
        let s = &l.snapshot;
        println!(
            "{:<8}  {:<19}  {:<14}  {:<12}  {:>8}  {:>10}  {:<8}  {}",
            l.id.short(),
            s.start.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S"),
            s.source,
            s.host,
            s.stats.files,
            bytesize::ByteSize(s.stats.bytes).to_string(),
            if s.partial { "partial" } else { "complete" },
            s.tags.join(",")
        );
    }
    println!("{} snapshot(s)", list.len());
    Ok(Outcome::Success)
}

async fn ls_cmd(url: Option<&str>, a: LsArgs) -> Result<Outcome> {
    let repo = open(url).await?;
    let catalog = Catalog::load(&repo).await?;
    let snap = catalog.resolve(&a.snapshot, a.source.as_deref())?;
    let index = Index::load(&repo).await?.index;
    let reader = BlobReader::new(&repo, &index, 64 << 20);
    let entries = ls::list(&reader, snap, a.path.as_deref()).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&entries).expect("JSON"));
        return Ok(Outcome::Success);
    }
    for e in &entries {
        let kind = match e.kind {
            firesafe::tree::NodeKind::Dir => 'd',
            firesafe::tree::NodeKind::Symlink => 'l',
            firesafe::tree::NodeKind::File => '-',
            _ => '?',
        };
        let target = e
            .target
            .as_ref()
            .map(|t| format!(" -> {t}"))
            .unwrap_or_default();
        println!(
            "{kind}{:04o} {:>12} {} {}{target}",
            e.mode,
            e.size,
            e.mtime.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
            e.path
        );
    }
    Ok(Outcome::Success)
}

async fn restore_cmd(url: Option<&str>, a: RestoreArgs) -> Result<Outcome> {
    let (spec, path) = match a.what.split_once(':') {
        Some((s, p)) => (s.to_string(), Some(p.to_string())),
        None => (a.what.clone(), None),
    };
    let repo = open(url).await?;
    let catalog = Catalog::load(&repo).await?;
    let snap = catalog.resolve(&spec, a.source.as_deref())?;
    let index = Index::load(&repo).await?.index;
    let reader = BlobReader::new(&repo, &index, 64 << 20);
    let plan = restore::plan(&reader, snap, path.as_deref()).await?;
    // The trees are read; their packs need not stay cached during the restore.
    drop(reader);
    let mut options = RestoreOptions::new(&a.to);
    options.path = path;
    options.overwrite = a.overwrite;
    options.progress = progress::on_terminal();
    let started = std::time::Instant::now();
    let report = restore::restore(&repo, &index, plan, &options).await?;
    for w in &report.warnings {
        eprintln!("firesafe: warning: {w}");
    }
    for (p, why) in &report.failed {
        eprintln!("firesafe: not restored: {}: {why}", p.display());
    }
    println!(
        "restored snapshot {} ({}, taken {}) to {}: {} files ({}), {} directories, {} links in {:.1}s{}",
        snap.id.short(),
        snap.snapshot.source,
        snap.snapshot
            .start
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M"),
        a.to.display(),
        report.files,
        bytesize::ByteSize(report.bytes),
        report.dirs,
        report.links,
        started.elapsed().as_secs_f64(),
        if report.failed.is_empty() {
            String::new()
        } else {
            format!(
                "; {} file(s) could not be restored (run `firesafe check --read-data`)",
                report.failed.len()
            )
        }
    );
    Ok(if report.failed.is_empty() {
        Outcome::Success
    } else {
        Outcome::Findings
    })
}

async fn check_cmd(url: Option<&str>, a: CheckArgs) -> Result<Outcome> {
    let repo = open(url).await?;
    let options = CheckOptions {
        read_data: a.read_data,
        progress: progress::on_terminal() && !a.json,
    };
    let report = check::check(&repo, &options).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
    } else {
        for n in &report.notes {
            println!("note: {n}");
        }
        for f in &report.findings {
            println!("finding: {}: {}", f.object, f.problem);
            for a in &f.affects {
                println!(
                    "  affects snapshot {} ({}, taken {}): {} path(s): {}{}",
                    a.snapshot.short(),
                    a.source,
                    a.time.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
                    a.count,
                    a.paths.join(", "),
                    if a.count > a.paths.len() { ", ..." } else { "" }
                );
            }
        }
        println!(
            "check of {}: {} snapshots, {} trees, {} packs, {} blobs{}: {}",
            report.target,
            report.snapshots,
            report.trees,
            report.packs,
            report.blobs,
            if a.read_data {
                format!(
                    ", {} read and verified",
                    bytesize::ByteSize(report.bytes_read)
                )
            } else {
                String::new()
            },
            if report.is_clean() {
                "no problems found".to_string()
            } else {
                format!("{} finding(s)", report.findings.len())
            }
        );
    }
    Ok(if report.is_clean() {
        Outcome::Success
    } else {
        Outcome::Findings
    })
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

async fn key_cmd(url: Option<&str>, k: KeyCommand) -> Result<Outcome> {
    let repo = open(url).await?;
    match k {
        KeyCommand::List { json } => {
            let list = keys::list(&repo).await?;
            if json {
                println!("{}", serde_json::to_string_pretty(&list).expect("JSON"));
            } else {
                println!(
                    "{:<8}  {:<10}  {:<16}  {:<19}  LABEL",
                    "ID", "KIND", "HOST", "ADDED (LOCAL TIME)"
                );
                for k in &list {
                    println!(
                        "{:<8}  {:<10}  {:<16}  {:<19}  {}{}{}",
                        k.id.short(),
                        k.kind,
                        k.host.clone().unwrap_or_default(),
                        k.created
                            .map(|c| c
                                .with_timezone(&Local)
                                .format("%Y-%m-%d %H:%M:%S")
                                .to_string())
                            .unwrap_or_default(),
                        k.label,
                        k.recipient
                            .as_ref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default(),
                        if k.current { "  [in use]" } else { "" }
                    );
                }
            }
        }
        KeyCommand::Add {
            recipient,
            generate,
            passphrase,
            label,
        } => {
            let who = if let Some(r) = recipient {
                Recipient::parse_x25519(&r).map_err(Error::Usage)?
            } else if let Some(path) = &generate {
                let public = write_new_key_file(path)?;
                println!("key file: {} (public key {public})", path.display());
                Recipient::parse_x25519(&public).map_err(Error::Usage)?
            } else if passphrase {
                Recipient::Passphrase(new_passphrase()?.into())
            } else {
                return Err(Error::Usage(
                    "say which key to add: --recipient AGE1..., --generate FILE or --passphrase"
                        .into(),
                ));
            };
            let id = keys::add(&repo, &who, &label).await?;
            println!("added key {} ({})", id.short(), who.kind());
        }
        KeyCommand::Remove { id, force } => {
            let removed = keys::remove(&repo, &id, force).await?;
            println!("removed key {}", removed.short());
        }
    }
    Ok(Outcome::Success)
}

async fn run_cmd(a: RunArgs) -> Result<Outcome> {
    let config = firesafe::config::Config::load(&a.config_dir)?;
    let schedule = config.schedule(&a.schedule)?;
    let state = firesafe::state::StateDir::open(
        &a.state_dir
            .clone()
            .unwrap_or_else(firesafe::state::StateDir::default_path),
    )?;
    let (cancel, _) = stop_on_signal();
    let options = firesafe::job::RunOptions {
        init: a.init,
        progress: progress::on_terminal(),
        cancel: Some(cancel),
    };
    let report = firesafe::job::run_recorded(&config, schedule, &state, None, &options).await?;
    for line in &report.created {
        println!("{line}");
    }
    for (source, result) in &report.backups {
        match result {
            Ok(b) => {
                for w in &b.snapshot.warnings {
                    eprintln!("firesafe: warning: {source}: {}: {}", w.path, w.message);
                }
                let st = &b.snapshot.stats;
                println!(
                    "{source}: snapshot {} saved{}: {} files ({}), {} new, {} changed, {} unchanged; added {} ({} stored)",
                    b.id.short(),
                    if b.snapshot.partial { " (partial)" } else { "" },
                    st.files,
                    bytesize::ByteSize(st.bytes),
                    st.files_new,
                    st.files_changed,
                    st.files_unchanged,
                    bytesize::ByteSize(st.bytes_added),
                    bytesize::ByteSize(st.bytes_stored),
                );
            }
            Err(e) => println!("{source}: not backed up: {e}"),
        }
    }
    for (name, outcome) in &report.targets {
        match outcome {
            firesafe::job::TargetOutcome::Primary => println!("target {name}: received the backup"),
            firesafe::job::TargetOutcome::Replicated(r) => {
                println!(
                    "target {name}: up to date ({} objects, {} copied)",
                    r.copied,
                    bytesize::ByteSize(r.bytes)
                );
                for k in &r.damaged {
                    println!(
                        "target {name}: not copied, damaged at the source: {k} (run `firesafe check --read-data`)"
                    );
                }
            }
            firesafe::job::TargetOutcome::Failed(e) => println!("target {name}: NOT UPDATED: {e}"),
        }
    }
    let clean = report.is_clean();
    println!(
        "run of schedule {}: {}",
        report.schedule,
        if clean {
            "complete"
        } else {
            "degraded (see above)"
        }
    );
    Ok(if clean {
        Outcome::Success
    } else {
        Outcome::Findings
    })
}

fn config_check(dir: &Path) -> Result<Outcome> {
    match firesafe::config::Config::load(dir) {
        Ok(c) => {
            println!(
                "configuration in {} is valid: {} target(s) ({}), {} schedule(s) ({})",
                dir.display(),
                c.targets.len(),
                c.targets.keys().cloned().collect::<Vec<_>>().join(", "),
                c.schedules.len(),
                c.schedules.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            Ok(Outcome::Success)
        }
        Err(Error::Config(problems)) => {
            for p in &problems {
                println!("{p}");
            }
            println!("{} problem(s) found", problems.len());
            Ok(Outcome::Findings)
        }
        Err(e) => Err(e),
    }
}

async fn status_cmd(a: StatusArgs) -> Result<Outcome> {
    let config = firesafe::config::Config::load(&a.config_dir)?;
    let schedules: Vec<&firesafe::config::ScheduleSpec> = match &a.schedule {
        Some(s) => vec![config.schedule(s)?],
        None => config.schedules.values().collect(),
    };
    let now = chrono::Utc::now();
    let mut all = Vec::new();
    for s in schedules {
        all.push(firesafe::status::status(&config, s, now).await?);
    }
    // Clean only when every verdict is OK and nothing is amiss on any target.
    let ok = all.iter().all(|s| {
        s.sources.iter().all(|src| {
            src.evaluation.verdict == firesafe::policy::Verdict::Ok
                && src.evaluation.reasons.is_empty()
        })
    });
    if a.json {
        println!("{}", serde_json::to_string_pretty(&all).expect("JSON"));
        return Ok(if ok {
            Outcome::Success
        } else {
            Outcome::Findings
        });
    }
    for s in &all {
        println!(
            "schedule {}: policy {} copies, {} media, {} offsite, newest copy at most {} hours old; the live share {} as a copy",
            s.schedule,
            s.min_copies,
            s.min_media,
            s.min_offsite,
            s.max_age_hours,
            if s.live_data_counts {
                "counts"
            } else {
                "does not count"
            }
        );
        for src in &s.sources {
            let e = &src.evaluation;
            println!(
                "  {}: {} ({} copies, {} media, {} offsite)",
                src.source, e.verdict, e.copies, e.media, e.offsite
            );
            for c in &src.copies {
                let what = match (&c.snapshot, c.taken) {
                    (Some(id), Some(t)) => format!(
                        "snapshot {id}, taken {} ({} ago)",
                        t.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
                        firesafe::policy::describe_age(now - t)
                    ),
                    _ => "no complete snapshot".to_string(),
                };
                println!(
                    "    {:<12} {:<8} {:<16} {what}",
                    c.target,
                    match c.location {
                        firesafe::config::Site::Onsite => "onsite",
                        firesafe::config::Site::Offsite => "offsite",
                    },
                    c.medium
                );
            }
            for r in &e.reasons {
                println!("    - {r}");
            }
        }
    }
    Ok(if ok {
        Outcome::Success
    } else {
        Outcome::Findings
    })
}

async fn sync_cmd(a: SyncArgs) -> Result<Outcome> {
    let config = firesafe::config::Config::load(&a.config_dir)?;
    let schedule = config.schedule(&a.schedule)?;
    let outcomes = firesafe::job::sync(&config, schedule).await?;
    let mut clean = true;
    for (name, outcome) in &outcomes {
        match outcome {
            firesafe::job::TargetOutcome::Primary => println!("target {name}: source of the copy"),
            firesafe::job::TargetOutcome::Replicated(r) => {
                println!(
                    "target {name}: up to date ({} objects, {} copied)",
                    r.copied,
                    bytesize::ByteSize(r.bytes)
                );
                for k in &r.damaged {
                    clean = false;
                    println!("target {name}: not copied, damaged at the source: {k}");
                }
            }
            firesafe::job::TargetOutcome::Failed(e) => {
                clean = false;
                println!("target {name}: NOT UPDATED: {e}");
            }
        }
    }
    Ok(if clean {
        Outcome::Success
    } else {
        Outcome::Findings
    })
}

/// A flag set (and a notification sent) on SIGTERM or SIGINT, so that a backup can stop after
/// storing what it has read.
fn stop_on_signal() -> (
    std::sync::Arc<std::sync::atomic::AtomicBool>,
    std::sync::Arc<tokio::sync::Notify>,
) {
    use tokio::signal::unix::{SignalKind, signal};
    let flag = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let wake = std::sync::Arc::new(tokio::sync::Notify::new());
    let (f, w) = (flag.clone(), wake.clone());
    tokio::spawn(async move {
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        if tracing::dispatcher::has_been_set() {
            tracing::warn!("stopping: storing what has been read, then exiting");
        } else {
            eprintln!(
                "firesafe: stopping: storing and indexing what has been read (signal again to stop at once)"
            );
        }
        f.store(true, std::sync::atomic::Ordering::Relaxed);
        w.notify_one();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        std::process::exit(2);
    });
    (flag, wake)
}

async fn daemon_cmd(a: DaemonArgs) -> Result<Outcome> {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    match a.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let config = firesafe::config::Config::load(&a.config_dir)?;
    let state = firesafe::state::StateDir::open(
        &a.state_dir
            .clone()
            .unwrap_or_else(firesafe::state::StateDir::default_path),
    )?;
    let (cancel, wake) = stop_on_signal();
    firesafe::daemon::daemon(firesafe::daemon::DaemonOptions {
        config,
        state,
        cancel,
        wake,
    })
    .await?;
    Ok(Outcome::Success)
}
