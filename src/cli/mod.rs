//! Command-line parsing and printing. No logic lives here: each command opens the repository,
//! calls the library and prints what it returns.

use std::path::{Path, PathBuf};

use chrono::Local;
use clap::{Args, Parser, Subcommand};
use firesafe::format::crypto::{self, Recipient, Unlock};
use firesafe::ops::backup::{self, BackupOptions};
use firesafe::ops::check::{self, CheckOptions};
use firesafe::ops::{keys, ls, progress};
use firesafe::store::blobs::BlobReader;
use firesafe::store::index::Index;
use firesafe::store::repo::{InitOptions, Repository};
use firesafe::store::snapshot::Catalog;
use firesafe::store::target::{Location, Target, TargetOptions};
use firesafe::{Error, Result};
use serde_json::json;

mod restores;

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
        after_help = "SNAPSHOT is an id (or its first digits) from `firesafe snapshots`, `latest`, or
SOURCE@DATE: the newest snapshot of SOURCE taken at or before DATE, in local time. A date alone
means the end of that day, a time without seconds the end of that minute: curriculum@2026-11-20,
curriculum@\"2026-11-20 18:00\", curriculum@yesterday, curriculum@\"last friday 18:00\".

EXAMPLES:
  firesafe --repo /mnt/nas/firesafe ls latest --source curriculum
  firesafe --repo /mnt/nas/firesafe ls 1a2b3c4d curriculum/year7
  firesafe --repo /mnt/nas/firesafe ls curriculum@yesterday curriculum/year7
  firesafe --repo /mnt/nas/firesafe ls latest --source curriculum --as-of \"last friday 18:00\""
    )]
    Ls(LsArgs),
    /// Restore a snapshot, or one file or folder from it, into a directory.
    #[command(
        after_help = "SNAPSHOT is an id (or its first digits) from `firesafe snapshots`, `latest`, or
SOURCE@DATE (the newest snapshot of SOURCE taken at or before DATE, local time; a date alone
means the end of that day); add :PATH to restore one file or folder (paths as `firesafe ls`
shows them).
The target directory must be new or empty (unless --overwrite or --resume). With --in-place the
file or folder goes back where the snapshot read it from. Either way a file already there with
the snapshot's content is left alone, and one that differs is never replaced unless --overwrite
is given; the old file is then kept beside it as NAME.firesafe-YYYYMMDD-HHMMSS (not with
--no-keep). --dry-run lists all this and writes nothing. Files are written under temporary names
and appear under their own names only when complete; an interrupted restore is finished by
running it again with --resume, which keeps the files already complete (their content is
re-hashed against the snapshot) and removes the unfinished ones.

With --schedule NAME instead of --repo, the schedule's targets are read in order (the onsite NAS
first): a pack missing or damaged on one is read from the next that has it intact, and the
summary says which copies were used. Every restore is recorded in the audit log (see
`firesafe audit`). Owners are restored when run as root; otherwise a warning says so.

EXAMPLES:
  Put a deleted folder back on the live share, changing nothing that differs:
    firesafe --repo /mnt/nas/firesafe restore latest:curriculum/year7 --source curriculum --in-place --dry-run
    firesafe --repo /mnt/nas/firesafe restore latest:curriculum/year7 --source curriculum --in-place
  From the best copy among the nightly schedule's targets:
    firesafe restore --schedule nightly latest:admin --source admin --to /tmp/restore --config-dir /etc/firesafe
  Finish a restore that was interrupted:
    firesafe --repo /mnt/nas/firesafe restore 1a2b3c4d --to /srv/shares-restored --resume
  Restore a deleted worksheet to a scratch folder:
    firesafe --repo /mnt/nas/firesafe restore latest:curriculum/year7/fractions.docx --to /tmp/restore --source curriculum
  Restore a whole share after a disaster:
    firesafe --repo /mnt/nas/firesafe restore 1a2b3c4d --to /srv/shares-restored
  Restore a folder as it was on Friday evening:
    firesafe --repo /mnt/nas/firesafe restore curriculum@\"last friday 18:00\":curriculum/year7 --to /tmp/restore
    firesafe --repo /mnt/nas/firesafe restore latest:curriculum/year7 --source curriculum --as-of 2026-11-20 --to /tmp/restore"
    )]
    Restore(restores::RestoreArgs),
    /// Find files and folders by name in every snapshot, and the versions of each.
    #[command(
        after_help = "PATTERN is a glob: * matches any characters but /, ** any characters including /,
? one character, [a-z] one of a set. Without a / it matches names (the last component of a
path); with a / it matches whole paths as `firesafe ls` shows them. Case does not matter unless
--case-sensitive is given. Each distinct version of each path (same content, size and
modification time) is listed once, with the snapshots that hold it and the first snapshot where
it had changed or was gone. Nothing matching is an error (exit status 2).

EXAMPLES:
  Which versions of a worksheet exist, and when did it disappear?
    firesafe --repo /mnt/nas/firesafe find fractions.docx --source curriculum
  Every spreadsheet in year 7's folder backed up since the start of term:
    firesafe --repo /mnt/nas/firesafe find 'curriculum/year7/**.xlsx' --since 2026-09-01
    firesafe --repo /mnt/nas/firesafe find '*report*' --until yesterday --json"
    )]
    Find(FindArgs),
    /// Show every version of one file or folder, and when each appeared, changed or went.
    #[command(
        after_help = "PATH is as `firesafe ls` shows it. Each version (same content, size and
modification time) is listed once, with the snapshots that hold it, when it was first and last
seen, and the first snapshot where it had changed or no longer existed. A path in no snapshot is
an error (exit status 2).

EXAMPLES:
  firesafe --repo /mnt/nas/firesafe versions curriculum/year7/fractions.docx --source curriculum
  firesafe --repo /mnt/nas/firesafe versions curriculum/year7 --json
  Then restore the version wanted, by a snapshot that holds it:
    firesafe --repo /mnt/nas/firesafe restore 1a2b3c4d:curriculum/year7/fractions.docx --to /tmp/restore"
    )]
    Versions(VersionsArgs),
    /// Compare two snapshots: what was added, removed and modified.
    #[command(
        after_help = "SNAPSHOT_A and SNAPSHOT_B are ids, `latest`, or SOURCE@DATE, as for `firesafe ls`.
Lines start with + (added), - (removed) or M (modified, with what differs: content, target,
mode, mtime, owner, xattrs) and give the sizes. Folders that are the same in both snapshots are
skipped without being read.

EXAMPLES:
  What changed in the curriculum share since yesterday evening?
    firesafe --repo /mnt/nas/firesafe diff curriculum@\"yesterday 18:00\" latest --source curriculum
  Between two snapshots, in year 7's folder only:
    firesafe --repo /mnt/nas/firesafe diff 1a2b3c4d 5e6f7a8b curriculum/year7 --json"
    )]
    Diff(DiffArgs),
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
    /// Apply a schedule's retention: forget old snapshots and delete the data nothing uses.
    #[command(
        after_help = "Each schedule's [retention] says which snapshots of its sources to keep (keep_last,
keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly, counted in the schedule's time
zone). The newest snapshot and the newest complete snapshot of every source are always kept.
Prune then deletes the packs that no remaining snapshot uses, on every target of the schedule.

It is safe while backups run: prune takes an exclusive lock on each target and gives up (exit 1,
naming who holds it) when a backup or copy is writing there; a backup that starts during a prune
waits for it. Targets with `append_only = true` are left alone unless --include-append-only is
given. Objects under S3 Object Lock are kept, and the report says until when. Without a
SCHEDULE, every schedule with a [retention] section is pruned.

EXAMPLES:
  See what would go, changing nothing:
    firesafe prune nightly --dry-run
  Prune every schedule (for example weekly from cron or a systemd timer):
    firesafe prune --config-dir /etc/firesafe"
    )]
    Prune(PruneArgs),
    /// Verify a schedule's copies: structure, a rotating share of the data read back, and the
    /// copies compared with each other.
    #[command(
        after_help = "Each target's structure is checked in full (every snapshot, index object and directory
listing, every pack a snapshot needs). A share of the data (--read-percent, default the
schedule's [verify] read_percent or 5) is downloaded and verified byte for byte, in rotation, so
that every pack is read once every 100/P runs; the coverage is recorded, and `firesafe status`
and the governors' report show how much of each copy was read back in the last 30 and 90 days.
Objects that one target lacks or holds at another size than the others are findings too. With
--repair, damaged or missing objects are replaced from a healthy copy on another target.

EXAMPLES:
  firesafe verify nightly
  firesafe verify nightly --read-all --repair"
    )]
    Verify(VerifyArgs),
    /// Repair one copy from another: replace damaged or missing objects with a healthy copy,
    /// and index again packs whose index object was lost.
    #[command(
        after_help = "Every object is named by the hash of its bytes and is the same on every target, so a
damaged or missing object on one target is replaced exactly by a copy from another that passes
every check. What no target holds intact is listed with the snapshots and files it affects.
Without --read-data only what the structure check and the comparison find is repaired; with it
every pack is read.

EXAMPLES:
  firesafe repair nightly --dry-run
  firesafe repair nightly --read-data"
    )]
    Repair(RepairArgs),
    /// Restore drill: restore from each copy into scratch space, check every byte, and time it.
    #[command(
        after_help = "A sample drill (the default) restores a random sample of files (--files, default 20) from
the newest complete snapshot of each share on each target, checks every restored byte against
the snapshot's own hashes, and compares files unchanged since with the live share (a file that
changed on the share since is not a failure; one that differs from the snapshot is). --full
restores whole shares and measures the recovery time (RTO), compared with the policy's
rto_hours. --site-loss does a full drill from the offsite targets only, with the recovery key
(--key), as if the server and the NAS were gone. Each drill is recorded in the state directory
and in the repository; scratch space is removed afterwards and is never inside a share. Exit
status 1 when a drill fails.

EXAMPLES:
  firesafe drill nightly
  firesafe drill nightly --full --target nas
  firesafe drill nightly --site-loss --key /mnt/usb/recovery.key"
    )]
    Drill(DrillArgs),
    /// Rotated removable disks: which disk holds what, and the log of disks going off site.
    #[command(
        after_help = "A path target with `pool = [\"FIRESAFE-A\", \"FIRESAFE-B\"]` (filesystem labels, or UUID=...)
is a set of disks rotated through its mount point. A run writes only to a disk of the pool
(another disk mounted there is refused, by name) and records what the disk then holds. Record
each disk going off site and coming back, so that `firesafe status` can count the disk off site
as the offsite copy (as recorded) and warn when rotation is overdue (`rotate_days`);
`media list` then exits with status 1.

--at records a move that happened earlier and was not recorded then (a time in the past:
2026-03-02, \"2026-03-02 16:30\" in local time, or RFC 3339). Who recorded it ($SUDO_USER or
$USER), when and on which host are kept with each entry.

EXAMPLES:
  firesafe media list
  firesafe media offsite usb-rotation FIRESAFE-A --note \"to the business manager's safe\"
  firesafe media onsite usb-rotation FIRESAFE-B
  firesafe media offsite usb-rotation FIRESAFE-C --at \"2026-03-02 16:30\"
  firesafe media log --json"
    )]
    Media(MediaArgs),
    /// Print, or email, a schedule's summary of the last 7 days.
    #[command(
        after_help = "The summary counts the schedule's runs of the last 7 days (complete, degraded,
failed, interrupted) from the state directory's history.jsonl, gives the last complete run, the
3-2-1 verdict of each source read from the targets now, and the rotated disks with any overdue
rotation. With --send it is emailed with the schedule's [alerts] settings.

The daemon sends it by itself at the times in `[alerts] summary_cron` (for example
\"0 8 * * 1\", Monday 08:00 in the schedule's time zone). A summary time missed while the daemon
was not running is skipped, not sent late.

EXAMPLES:
  firesafe summary nightly
  firesafe summary nightly --send"
    )]
    Summary(SummaryArgs),
    /// Write the governors' backup and disaster-recovery report (PDF and HTML).
    #[command(
        after_help = "The report covers a period (default: the last 90 days) and is built only from what
was recorded and measured: the 3-2-1 status read from every target now, the runs in
STATE/history.jsonl, the restore drills in STATE/drills.jsonl, the verifications in
STATE/verify.jsonl, and the snapshots in the repository (for storage growth). Where nothing was
recorded it says so, in red. The first page is a plain-English summary with traffic lights
(OK, ATTENTION, ACTION NEEDED); then incidents and risks, each share in detail, a glossary, a
sign-off block for the headteacher and the chair of governors, and a technician's appendix.
The school's name comes from site.toml in the configuration directory.

--out FILE writes FILE.pdf (or FILE, when it ends in .pdf) and the same report as a
self-contained HTML page beside it (FILE.html). Dates are read like the rest of firesafe:
2026-09-01, \"2026-09-01 08:00\", yesterday, \"last friday\".

EXAMPLES:
  firesafe report --out /srv/reports/dr-autumn-2026
  firesafe report nightly --from 2026-09-01 --to 2026-12-19 --out dr-autumn-2026.pdf"
    )]
    Report(ReportArgs),
    /// Write the printable recovery sheet for the fire safe (PDF and HTML).
    #[command(
        after_help = "The sheet lists where every copy lives (targets, locations, media, paths, S3
endpoints, buckets and prefixes), the repository id, the key's fingerprint (its public age
recipient), the last restore drill that passed for each share, whom to call (site.toml), and
the commands that restore each share onto a new machine, one per line starting with $.
No storage credential is ever printed.

The key itself is printed, as text and as a QR code, only with --include-key FILE; without it
the sheet says where the key is kept and that it is not on the sheet. A sheet with the key on
it must be kept locked away.

EXAMPLES:
  firesafe recovery-sheet --out /root/recovery-sheet
  firesafe recovery-sheet nightly --out sheet.pdf --include-key /etc/firesafe/recovery.key"
    )]
    RecoverySheet(SheetArgs),
    /// List the restores recorded in the audit log: who, when, what, where to, how it went.
    #[command(
        after_help = "Every restore (not a dry run) is appended to STATE/audit.jsonl and stored, encrypted, in
the repository (audit/ID, on every target the restore read from; replication copies it to the
others), so the trail survives the loss of the server. Without --repo or --schedule the state
directory is read; with them, the repository.

EXAMPLES:
  firesafe audit --since \"last monday\"
  firesafe audit --schedule nightly --config-dir /etc/firesafe --json
  firesafe --repo /mnt/nas/firesafe audit"
    )]
    Audit(restores::AuditArgs),
    /// Show snapshots as read-only folders (FUSE): DIR/SOURCE/2026-11-23T0200/...
    #[command(
        after_help = "Needs /dev/fuse and fusermount (Debian: apt-get install fuse3); without them it says so
and exits with status 2. The view stays until unmounted (fusermount -u DIR) or Ctrl-C.

EXAMPLES:
  firesafe --repo /mnt/nas/firesafe mount curriculum /mnt/snapshots
  firesafe --repo /mnt/nas/firesafe mount 1a2b3c4d /mnt/snapshots
  firesafe --repo /mnt/nas/firesafe mount all /mnt/snapshots"
    )]
    Mount(restores::MountArgs),
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
    /// Where the records of rotated disks are kept (default /var/lib/firesafe for root,
    /// ~/.local/state/firesafe otherwise).
    #[arg(long, env = "FIRESAFE_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
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
struct ScheduleDirs {
    /// The schedule (schedules/NAME.toml).
    schedule: String,
    #[arg(
        long,
        default_value = ".",
        env = "FIRESAFE_CONFIG_DIR",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
    /// Where run history and records are kept (default /var/lib/firesafe for root,
    /// ~/.local/state/firesafe otherwise).
    #[arg(long, env = "FIRESAFE_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Print the records as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct VerifyArgs {
    #[command(flatten)]
    dirs: ScheduleDirs,
    /// Percent of each target's data to read back this run.
    #[arg(long, value_name = "P", conflicts_with = "read_all")]
    read_percent: Option<f64>,
    /// Read back every byte of every target.
    #[arg(long)]
    read_all: bool,
    /// Replace damaged or missing objects from a healthy copy on another target.
    #[arg(long)]
    repair: bool,
}

#[derive(Args, Debug)]
struct RepairArgs {
    #[command(flatten)]
    dirs: ScheduleDirs,
    /// Read every pack of every target, not only the structure.
    #[arg(long)]
    read_data: bool,
    /// Say what would be repaired; change nothing.
    #[arg(long)]
    dry_run: bool,
}

#[derive(Args, Debug)]
struct DrillArgs {
    #[command(flatten)]
    dirs: ScheduleDirs,
    /// Only this target.
    #[arg(long, value_name = "NAME")]
    target: Option<String>,
    /// Restore whole shares and time them (the recovery time).
    #[arg(long, conflicts_with = "site_loss")]
    full: bool,
    /// Restore whole shares from the offsite targets only, with the recovery key.
    #[arg(long)]
    site_loss: bool,
    /// The recovery key file for --site-loss.
    #[arg(long, value_name = "FILE")]
    key: Option<PathBuf>,
    /// Files per share and target in a sample drill.
    #[arg(long, value_name = "N")]
    files: Option<u32>,
    /// Seed for choosing the sample (recorded with every drill, to draw the same sample again).
    #[arg(long)]
    seed: Option<u64>,
    /// Where to restore to (default the system's temporary directory; never inside a share).
    #[arg(long, value_name = "DIR")]
    scratch: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct PruneArgs {
    /// The schedule (schedules/NAME.toml); default: every schedule with [retention].
    schedule: Option<String>,
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
    /// Show what would be forgotten and deleted; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also prune targets marked append_only (needs credentials allowed to delete there).
    #[arg(long)]
    include_append_only: bool,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
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
    /// Snapshot id (or prefix), `latest`, or SOURCE@DATE.
    snapshot: String,
    /// A path inside the snapshot to list.
    path: Option<String>,
    /// With `latest`: the newest snapshot of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// With `latest`: the newest snapshot taken at or before DATE (local time; a date alone means
    /// the end of that day).
    #[arg(long, value_name = "DATE")]
    as_of: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
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
        Command::Restore(a) => restores::restore_cmd(repo_url, a).await,
        Command::Audit(a) => restores::audit_cmd(repo_url, a).await,
        Command::Mount(a) => restores::mount_cmd(repo_url, a).await,
        Command::Find(a) => find_cmd(repo_url, a).await,
        Command::Versions(a) => versions_cmd(repo_url, a).await,
        Command::Diff(a) => diff_cmd(repo_url, a).await,
        Command::Check(a) => check_cmd(repo_url, a).await,
        Command::Key(k) => key_cmd(repo_url, k).await,
        Command::Run(a) => run_cmd(a).await,
        Command::Status(a) => status_cmd(a).await,
        Command::Sync(a) => sync_cmd(a).await,
        Command::Config(ConfigCommand::Check { config_dir }) => config_check(&config_dir),
        Command::Daemon(a) => daemon_cmd(a).await,
        Command::Prune(a) => prune_cmd(a).await,
        Command::Verify(a) => verify_cmd(a).await,
        Command::Repair(a) => repair_cmd(a).await,
        Command::Drill(a) => drill_cmd(a).await,
        Command::Media(a) => media_cmd(a).await,
        Command::Summary(a) => summary_cmd(a).await,
        Command::Report(a) => report_cmd(a).await,
        Command::RecoverySheet(a) => sheet_cmd(a).await,
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
        if target.exists(firesafe::store::repo::CONFIG).await? {
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
        chunker: firesafe::format::chunker::ChunkerParams {
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
    let snap = pick(
        &catalog,
        &a.snapshot,
        a.source.as_deref(),
        a.as_of.as_deref(),
    )?;
    let index = Index::load(&repo).await?.index;
    let reader = BlobReader::new(&repo, &index, 64 << 20);
    let entries = ls::list(&reader, snap, a.path.as_deref()).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&entries).expect("JSON"));
        return Ok(Outcome::Success);
    }
    for e in &entries {
        let kind = match e.kind {
            firesafe::format::tree::NodeKind::Dir => 'd',
            firesafe::format::tree::NodeKind::Symlink => 'l',
            firesafe::format::tree::NodeKind::File => '-',
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

async fn check_cmd(url: Option<&str>, a: CheckArgs) -> Result<Outcome> {
    let repo = open(url).await?;
    let options = CheckOptions {
        read_data: a.read_data,
        only_packs: None,
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
    let state = firesafe::store::state::StateDir::open(
        &a.state_dir
            .clone()
            .unwrap_or_else(firesafe::store::state::StateDir::default_path),
    )?;
    let (cancel, _) = stop_on_signal();
    let options = firesafe::schedule::run::RunOptions {
        init: a.init,
        progress: progress::on_terminal(),
        cancel: Some(cancel),
    };
    let report =
        firesafe::schedule::backup_job::run_recorded(&config, schedule, &state, None, &options)
            .await?;
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
            firesafe::schedule::run::TargetOutcome::Primary => {
                println!("target {name}: received the backup")
            }
            firesafe::schedule::run::TargetOutcome::Replicated(r) => {
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
            firesafe::schedule::run::TargetOutcome::Failed(e) => {
                println!("target {name}: NOT UPDATED: {e}")
            }
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
    // The records of rotated disks, when there is a state directory to read them from.
    let state_path = a
        .state_dir
        .clone()
        .unwrap_or_else(firesafe::store::state::StateDir::default_path);
    let state = if state_path.is_dir() {
        Some(firesafe::store::state::StateDir::open(&state_path)?)
    } else {
        None
    };
    let mut all = Vec::new();
    for s in schedules {
        all.push(
            firesafe::schedule::status::status_with_records(&config, s, state.as_ref(), now)
                .await?,
        );
    }
    // Clean only when every verdict is OK and nothing is amiss on any target.
    let ok = all.iter().all(|s| {
        s.sources.iter().all(|src| {
            src.evaluation.verdict == firesafe::plan::policy::Verdict::Ok
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
                        firesafe::plan::policy::describe_age(now - t)
                    ),
                    _ => "no complete snapshot".to_string(),
                };
                println!(
                    "    {:<12} {:<8} {:<16} {what}{}",
                    copy_name(c),
                    match c.location {
                        firesafe::config::Site::Onsite => "onsite",
                        firesafe::config::Site::Offsite => "offsite",
                    },
                    c.medium,
                    if c.as_recorded {
                        " (as recorded when the disk was last written)"
                    } else {
                        ""
                    }
                );
            }
            for r in &e.reasons {
                println!("    - {r}");
            }
        }
        print_pools(&s.media, "  ");
        if !s.verification.is_empty() {
            println!("  verification (latest run per target):");
        }
        for v in &s.verification {
            println!(
                "    {:<12} {} {}: read back {:.0}% in 30 days, {:.0}% in 90 days; last complete read {}{}",
                v.target,
                v.verified.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
                match v.result {
                    firesafe::store::records::CheckOutcome::Pass => "OK",
                    firesafe::store::records::CheckOutcome::Fail => "PROBLEMS",
                    firesafe::store::records::CheckOutcome::Error => "COULD NOT RUN",
                },
                v.coverage_30d * 100.0,
                v.coverage_90d * 100.0,
                v.last_complete_read
                    .map(|t| t.with_timezone(&Local).format("%Y-%m-%d").to_string())
                    .unwrap_or_else(|| "never".into()),
                if v.open_findings > 0 {
                    format!(
                        "; {} finding(s) open (`firesafe verify` lists them)",
                        v.open_findings
                    )
                } else {
                    String::new()
                }
            );
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
    let outcomes = firesafe::schedule::run::sync(&config, schedule).await?;
    let mut clean = true;
    for (name, outcome) in &outcomes {
        match outcome {
            firesafe::schedule::run::TargetOutcome::Primary => {
                println!("target {name}: source of the copy")
            }
            firesafe::schedule::run::TargetOutcome::Replicated(r) => {
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
            firesafe::schedule::run::TargetOutcome::Failed(e) => {
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
    let state = firesafe::store::state::StateDir::open(
        &a.state_dir
            .clone()
            .unwrap_or_else(firesafe::store::state::StateDir::default_path),
    )?;
    let (cancel, wake) = stop_on_signal();
    firesafe::schedule::daemon::daemon(firesafe::schedule::daemon::DaemonOptions {
        config,
        state,
        cancel,
        wake,
    })
    .await?;
    Ok(Outcome::Success)
}

async fn prune_cmd(a: PruneArgs) -> Result<Outcome> {
    let config = firesafe::config::Config::load(&a.config_dir)?;
    let schedules: Vec<&firesafe::config::ScheduleSpec> = match &a.schedule {
        Some(name) => vec![config.schedule(name)?],
        None => config
            .schedules
            .values()
            .filter(|s| s.retention.is_some())
            .collect(),
    };
    if schedules.is_empty() {
        return Err(Error::Usage(
            "no schedule has a [retention] section, so there is nothing to prune".into(),
        ));
    }
    let state = firesafe::store::state::StateDir::open(
        &a.state_dir
            .clone()
            .unwrap_or_else(firesafe::store::state::StateDir::default_path),
    )?;
    let mut clean = true;
    let mut json = Vec::new();
    for schedule in schedules {
        let outcomes = firesafe::schedule::prune_job::prune_schedule(
            &config,
            schedule,
            &state,
            a.dry_run,
            a.include_append_only,
        )
        .await?;
        for (name, outcome) in outcomes {
            use firesafe::schedule::prune_job::PruneOutcome;
            match outcome {
                PruneOutcome::Pruned(r) => {
                    if a.json {
                        json.push(serde_json::json!({"schedule": schedule.name, "target": name, "result": "pruned", "report": r}));
                        continue;
                    }
                    print_prune(&schedule.name, &name, &r);
                }
                PruneOutcome::Mirrored {
                    from,
                    deleted,
                    locked,
                    dry_run,
                } => {
                    if a.json {
                        json.push(serde_json::json!({"schedule": schedule.name, "target": name, "result": "mirrored", "from": from, "deleted": deleted, "locked": locked, "dry_run": dry_run}));
                    } else if dry_run {
                        println!(
                            "{}: target {name}: would receive {from}'s new objects and the same deletions",
                            schedule.name
                        );
                    } else {
                        println!(
                            "{}: target {name}: given {from}'s new objects and the same deletions ({deleted} object(s) deleted{})",
                            schedule.name,
                            if locked > 0 {
                                format!("; {locked} under object lock, deleted by a later prune")
                            } else {
                                String::new()
                            }
                        );
                    }
                }
                PruneOutcome::Skipped(why) => {
                    if a.json {
                        json.push(serde_json::json!({"schedule": schedule.name, "target": name, "result": "skipped", "reason": why}));
                    } else {
                        println!("{}: target {name}: skipped: {why}", schedule.name);
                    }
                }
                PruneOutcome::Failed(e) => {
                    clean = false;
                    if a.json {
                        json.push(serde_json::json!({"schedule": schedule.name, "target": name, "result": "failed", "error": e.to_string()}));
                    } else {
                        println!("{}: target {name}: NOT PRUNED: {e}", schedule.name);
                    }
                }
            }
        }
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&json).expect("JSON serialises")
        );
    }
    Ok(if clean {
        Outcome::Success
    } else {
        Outcome::Findings
    })
}

fn print_prune(schedule: &str, target: &str, r: &firesafe::ops::prune::PruneReport) {
    let would = if r.dry_run { "would " } else { "" };
    let when =
        |d: &firesafe::plan::retention::Decision| d.start.format("%Y-%m-%d %H:%M UTC").to_string();
    println!(
        "{schedule}: target {target}:{}",
        if r.dry_run {
            " (dry run: nothing changed)"
        } else {
            ""
        }
    );
    for d in &r.kept {
        println!(
            "  keep   {} {:<12} {}  ({})",
            d.id.short(),
            d.source,
            when(d),
            d.reasons.join(", ")
        );
    }
    for d in &r.forgotten {
        println!(
            "  {would}forget {} {:<12} {}",
            d.id.short(),
            d.source,
            when(d)
        );
    }
    let (delete, rewrite) = if r.dry_run {
        ("would delete", "would rewrite")
    } else {
        ("deleted", "rewrote")
    };
    println!(
        "  {delete} {} pack(s) ({}); {rewrite} {} index object(s)",
        r.packs_deleted,
        bytesize::ByteSize(r.bytes_freed),
        r.index_objects_rewritten
    );
    if r.packs_repacked > 0 {
        println!(
            "  {} {} pack(s) with much unused space, copying {} still in use into new packs",
            if r.dry_run {
                "would rewrite"
            } else {
                "rewrote"
            },
            r.packs_repacked,
            bytesize::ByteSize(r.bytes_repacked)
        );
    }
    if r.packs_partly_used > 0 {
        println!(
            "  kept {} pack(s) still partly in use, holding {} no snapshot uses",
            r.packs_partly_used,
            bytesize::ByteSize(r.bytes_unused_in_kept_packs)
        );
    }
    if r.packs_in_grace > 0 {
        println!(
            "  kept {} unindexed pack(s) younger than the grace period (a backup may still be using them)",
            r.packs_in_grace
        );
    }
    if r.blobs_unlocated > 0 {
        println!(
            "  kept {} unindexed pack(s) whatever their age: {} blob(s) the snapshots use are in no indexed pack here (an index object or pack is missing); run `firesafe repair {schedule}`",
            r.packs_unindexed_kept, r.blobs_unlocated
        );
    }
    if let Some(until) = r.locked_until {
        println!(
            "  could not delete {} object(s) yet: under object lock, the first until {}; a later prune deletes them",
            r.locked.len(),
            until.format("%Y-%m-%d %H:%M UTC")
        );
    }
}

#[derive(Args, Debug)]
struct MediaArgs {
    /// The directory holding targets/ and schedules/.
    #[arg(
        long,
        global = true,
        default_value = ".",
        env = "FIRESAFE_CONFIG_DIR",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
    /// Where the media records and the rotation log are kept (default /var/lib/firesafe for
    /// root, ~/.local/state/firesafe otherwise).
    #[arg(long, global = true, env = "FIRESAFE_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: MediaCommand,
}

#[derive(Subcommand, Debug)]
enum MediaCommand {
    /// Each disk of each pool: where it is, when it was last written and what it then held.
    List {
        /// Only this target.
        target: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Record a disk going off site.
    Offsite(MoveArgs),
    /// Record a disk coming back on site.
    Onsite(MoveArgs),
    /// The rotation log, oldest first.
    Log {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Args, Debug)]
struct MoveArgs {
    /// The pool target (targets/NAME.toml).
    target: String,
    /// The disk, as the pool names it.
    disk: String,
    /// Where it went, who has it, or why.
    #[arg(long)]
    note: Option<String>,
    /// When it moved, if earlier than now (2026-03-02, "2026-03-02 16:30" local, or RFC 3339).
    #[arg(long, value_name = "TIME")]
    at: Option<String>,
}

#[derive(Args, Debug)]
struct SummaryArgs {
    /// The schedule (schedules/NAME.toml).
    schedule: String,
    #[arg(
        long,
        default_value = ".",
        env = "FIRESAFE_CONFIG_DIR",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
    /// Where run history is kept (default /var/lib/firesafe for root, ~/.local/state/firesafe
    /// otherwise).
    #[arg(long, env = "FIRESAFE_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Email it with the schedule's [alerts] settings.
    #[arg(long)]
    send: bool,
}

fn local_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string()
}

/// How `status` names a copy: the target, and for a disk pool the disk.
fn copy_name(c: &firesafe::schedule::status::TargetCopy) -> String {
    match &c.disk {
        Some(d) => format!("{}/{d}", c.target),
        None => c.target.clone(),
    }
}

fn print_pools(pools: &[firesafe::schedule::media::PoolStatus], indent: &str) {
    for p in pools {
        println!(
            "{indent}disks of {}{}: {}",
            p.target,
            p.rotate_days
                .map(|r| format!(
                    " (one goes off site every {r} day{})",
                    if r == 1 { "" } else { "s" }
                ))
                .unwrap_or_default(),
            match &p.attached {
                Some(d) => format!("{d} attached"),
                None => "none attached".to_string(),
            }
        );
        for d in &p.disks {
            println!(
                "{indent}  {:<14} {:<9} last written {}; last moved {}{}",
                d.disk,
                d.place.to_string(),
                d.last_written.map_or("never".to_string(), local_time),
                d.last_moved.map_or("never".to_string(), local_time),
                if d.unrecorded_return {
                    " (back on site, though the return was not recorded)"
                } else {
                    ""
                }
            );
            // What a disk held when last written; the attached disk's copy is read by `status`.
            for h in &d.snapshots {
                println!(
                    "{indent}      {}: snapshot {} taken {}{}",
                    h.source,
                    h.snapshot,
                    local_time(h.taken),
                    if d.place == firesafe::schedule::media::Place::Attached {
                        ""
                    } else {
                        " (as recorded)"
                    }
                );
            }
        }
        if let Some(w) = &p.warning {
            println!("{indent}  - {w}");
        }
    }
}

fn state_dir(dir: Option<PathBuf>) -> Result<firesafe::store::state::StateDir> {
    firesafe::store::state::StateDir::open(
        &dir.unwrap_or_else(firesafe::store::state::StateDir::default_path),
    )
}

async fn media_cmd(a: MediaArgs) -> Result<Outcome> {
    use firesafe::schedule::media;
    let config = firesafe::config::Config::load(&a.config_dir)?;
    let state = state_dir(a.state_dir)?;
    let now = chrono::Utc::now();
    match a.command {
        MediaCommand::List { target, json } => {
            let names: Vec<String> = match &target {
                Some(t) => vec![media::pool_target(&config, t, None)?.name.clone()],
                None => config
                    .targets
                    .values()
                    .filter(|t| !t.pool.is_empty())
                    .map(|t| t.name.clone())
                    .collect(),
            };
            let pools = media::pools(&config, &names, Some(&state), now)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&pools).expect("JSON"));
            } else if pools.is_empty() {
                println!(
                    "no target has a disk pool; add pool = [\"LABEL\", ...] to a path target to rotate disks"
                );
            } else {
                print_pools(&pools, "");
            }
            let overdue = pools.iter().any(|p| p.warning.is_some());
            Ok(if overdue {
                Outcome::Findings
            } else {
                Outcome::Success
            })
        }
        MediaCommand::Offsite(m) => {
            media_move(&config, &state, m, firesafe::config::Site::Offsite, now)
        }
        MediaCommand::Onsite(m) => {
            media_move(&config, &state, m, firesafe::config::Site::Onsite, now)
        }
        MediaCommand::Log { json } => {
            let log = media::log(&state)?;
            if json {
                println!("{}", serde_json::to_string_pretty(&log).expect("JSON"));
            } else if log.is_empty() {
                println!(
                    "the rotation log is empty: record moves with `firesafe media offsite TARGET DISK`"
                );
            }
            if !json {
                for m in &log {
                    println!(
                        "{}  {}  {}  {}  by {} on {}{}{}",
                        local_time(m.at),
                        m.target,
                        m.disk,
                        match m.to {
                            firesafe::config::Site::Offsite => "went off site",
                            firesafe::config::Site::Onsite => "came back on site",
                        },
                        m.who,
                        m.host,
                        if m.recorded - m.at > chrono::Duration::minutes(5) {
                            format!(" (recorded {})", local_time(m.recorded))
                        } else {
                            String::new()
                        },
                        m.note
                            .as_ref()
                            .map(|n| format!(": {n}"))
                            .unwrap_or_default()
                    );
                }
            }
            Ok(Outcome::Success)
        }
    }
}

fn media_move(
    config: &firesafe::config::Config,
    state: &firesafe::store::state::StateDir,
    m: MoveArgs,
    to: firesafe::config::Site,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Outcome> {
    use firesafe::schedule::media;
    let spec = media::pool_target(config, &m.target, Some(&m.disk))?;
    let at = match &m.at {
        Some(t) => media::parse_time(t, now)?,
        None => now,
    };
    let entry = media::Move {
        target: spec.name.clone(),
        disk: m.disk.clone(),
        to,
        at,
        recorded: now,
        who: media::who(),
        host: firesafe::store::repo::hostname(),
        note: m.note.clone(),
    };
    media::record_move(state, &entry)?;
    println!(
        "recorded: disk {} of {} {} at {}, by {} on {}",
        entry.disk,
        entry.target,
        match to {
            firesafe::config::Site::Offsite => "went off site",
            firesafe::config::Site::Onsite => "came back on site",
        },
        local_time(at),
        entry.who,
        entry.host
    );
    if to == firesafe::config::Site::Offsite
        && m.at.is_none()
        && let Some(path) = &spec.path
        && firesafe::store::target::disk::attached(&spec.name, &spec.pool, &config.resolve(path))
            .ok()
            .flatten()
            .as_deref()
            == Some(m.disk.as_str())
    {
        eprintln!(
            "firesafe: warning: {} is still mounted at {}; unmount it before it leaves the building",
            m.disk,
            config.resolve(path).display()
        );
    }
    Ok(Outcome::Success)
}

async fn summary_cmd(a: SummaryArgs) -> Result<Outcome> {
    let config = firesafe::config::Config::load(&a.config_dir)?;
    let schedule = config.schedule(&a.schedule)?;
    let state = state_dir(a.state_dir)?;
    let summary =
        firesafe::schedule::summary::summary(&config, schedule, &state, chrono::Utc::now()).await?;
    println!("Subject: {}\n\n{}", summary.subject, summary.body);
    if a.send {
        firesafe::schedule::summary::send(schedule, &summary).await?;
        println!("sent to {}", schedule.alerts.email_to.join(", "));
    }
    Ok(Outcome::Success)
}

/// The snapshot SPEC names; with `--as-of DATE`, SPEC must be `latest` and the newest snapshot at
/// or before DATE is taken.
fn pick<'c>(
    catalog: &'c Catalog,
    spec: &str,
    source: Option<&str>,
    as_of: Option<&str>,
) -> Result<&'c firesafe::store::snapshot::Listed> {
    match as_of {
        None => catalog.resolve(spec, source),
        Some(date) if spec == "latest" => catalog.resolve(&format!("@{date}"), source),
        Some(_) => Err(Error::Usage(format!(
            "--as-of picks a snapshot by time, so it goes with `latest`, not \"{spec}\" (or write SOURCE@DATE instead)"
        ))),
    }
}

#[derive(Args, Debug)]
struct FindArgs {
    /// A name or glob (*.docx, 'fractions*', 'curriculum/year7/**').
    pattern: String,
    /// Only snapshots of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Only snapshots taken at or after DATE (local time; a date alone means that whole day).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Only snapshots taken at or before DATE (local time; a date alone means that whole day).
    #[arg(long, value_name = "DATE")]
    until: Option<String>,
    /// Match upper and lower case exactly.
    #[arg(long)]
    case_sensitive: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct VersionsArgs {
    /// A file or folder, as `firesafe ls` shows it (curriculum/year7/fractions.docx).
    path: String,
    /// Only snapshots of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
struct DiffArgs {
    /// The earlier snapshot: id (or prefix), `latest`, or SOURCE@DATE.
    snapshot_a: String,
    /// The later snapshot: id (or prefix), `latest`, or SOURCE@DATE.
    snapshot_b: String,
    /// Compare only this file or folder.
    path: Option<String>,
    /// With `latest` or @DATE: snapshots of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

async fn find_cmd(url: Option<&str>, a: FindArgs) -> Result<Outcome> {
    let now = Local::now();
    let read = |date: &Option<String>| {
        date.as_deref()
            .map(|d| firesafe::plan::when::parse(d, &now).map_err(Error::Usage))
            .transpose()
    };
    let options = firesafe::ops::find::FindOptions {
        pattern: a.pattern,
        case_sensitive: a.case_sensitive,
        source: a.source,
        since: read(&a.since)?.map(|s| s.start),
        until: read(&a.until)?.map(|s| s.end),
    };
    let repo = open(url).await?;
    let catalog = Catalog::load(&repo).await?;
    let index = Index::load(&repo).await?.index;
    let reader = BlobReader::new(&repo, &index, 64 << 20);
    let report = firesafe::ops::find::find(&reader, &catalog.snapshots, &options).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
        return Ok(Outcome::Success);
    }
    print_versions(&report.versions);
    let paths: std::collections::HashSet<(&str, &str)> = report
        .versions
        .iter()
        .map(|v| (v.source.as_str(), v.path.as_str()))
        .collect();
    println!(
        "{} version(s) of {} path(s) in {} snapshot(s)",
        report.versions.len(),
        paths.len(),
        report.snapshots
    );
    Ok(Outcome::Success)
}

async fn versions_cmd(url: Option<&str>, a: VersionsArgs) -> Result<Outcome> {
    let repo = open(url).await?;
    let catalog = Catalog::load(&repo).await?;
    let index = Index::load(&repo).await?.index;
    let reader = BlobReader::new(&repo, &index, 64 << 20);
    let options = firesafe::ops::find::VersionsOptions {
        path: a.path,
        source: a.source,
    };
    let report = firesafe::ops::find::versions(&reader, &catalog.snapshots, &options).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
        return Ok(Outcome::Success);
    }
    print_versions(&report.versions);
    println!(
        "{} version(s) of {} in {} snapshot(s); restore one with `firesafe restore SNAPSHOT:{} --to DIR`, SNAPSHOT being one that holds it",
        report.versions.len(),
        report.path,
        report.snapshots,
        report.path.trim_start_matches('/')
    );
    Ok(Outcome::Success)
}

/// Versions grouped under their path: size, modification time, where they were seen, and how
/// each ended.
fn print_versions(versions: &[firesafe::ops::find::Version]) {
    let local = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string()
    };
    let mut heading = None;
    for v in versions {
        if heading != Some((&v.source, &v.path)) {
            heading = Some((&v.source, &v.path));
            println!("{} (source {})", v.path, v.source);
        }
        let ids: Vec<String> = v.snapshots.iter().map(|s| s.snapshot.short()).collect();
        let shown = if ids.len() > 6 {
            format!(
                "{} ... {}",
                ids[..3].join(" "),
                ids[ids.len() - 2..].join(" ")
            )
        } else {
            ids.join(" ")
        };
        let ended = match &v.ended {
            None => "still there in the newest snapshot searched".to_string(),
            Some(e) => format!(
                "{} in {} ({})",
                match e.reason {
                    firesafe::ops::find::Ending::Changed => "changed",
                    firesafe::ops::find::Ending::Deleted => "gone",
                },
                e.snapshot.short(),
                local(e.time)
            ),
        };
        println!(
            "  {} {}, modified {}: seen {} to {} in {} snapshot(s) [{shown}]; {ended}",
            format!("{:?}", v.kind).to_lowercase(),
            bytesize::ByteSize(v.size),
            local(v.mtime),
            local(v.first_seen),
            local(v.last_seen),
            v.snapshots.len(),
        );
    }
}

async fn diff_cmd(url: Option<&str>, a: DiffArgs) -> Result<Outcome> {
    let repo = open(url).await?;
    let catalog = Catalog::load(&repo).await?;
    let from = catalog.resolve(&a.snapshot_a, a.source.as_deref())?;
    let to = catalog.resolve(&a.snapshot_b, a.source.as_deref())?;
    let index = Index::load(&repo).await?.index;
    let reader = BlobReader::new(&repo, &index, 64 << 20);
    let options = firesafe::ops::diff::DiffOptions { path: a.path };
    let report = firesafe::ops::diff::diff(&reader, from, to, &options).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
        return Ok(Outcome::Success);
    }
    use firesafe::ops::diff::ChangeKind;
    let size = |s: Option<u64>| {
        s.map(|b| bytesize::ByteSize(b).to_string())
            .unwrap_or_default()
    };
    for c in &report.changes {
        let kind = format!("{:?}", c.kind).to_lowercase();
        match c.change {
            ChangeKind::Added => println!("+ {kind:<7} {:>10}  {}", size(c.size_after), c.path),
            ChangeKind::Removed => println!("- {kind:<7} {:>10}  {}", size(c.size_before), c.path),
            ChangeKind::Modified => println!(
                "M {kind:<7} {:>10}  {} ({}{})",
                size(c.size_after),
                c.path,
                c.what.join(", "),
                if c.size_before != c.size_after {
                    format!("; was {}", size(c.size_before))
                } else {
                    String::new()
                }
            ),
        }
    }
    let side = |s: &firesafe::ops::diff::Side| {
        format!(
            "{} ({}, taken {})",
            s.snapshot.short(),
            s.source,
            s.time.with_timezone(&Local).format("%Y-%m-%d %H:%M")
        )
    };
    println!(
        "from {} to {}: {} added ({}), {} removed ({}), {} modified",
        side(&report.from),
        side(&report.to),
        report.added,
        bytesize::ByteSize(report.bytes_added),
        report.removed,
        bytesize::ByteSize(report.bytes_removed),
        report.modified
    );
    Ok(Outcome::Success)
}

fn open_state(dir: &Option<PathBuf>) -> Result<firesafe::store::state::StateDir> {
    firesafe::store::state::StateDir::open(
        &dir.clone()
            .unwrap_or_else(firesafe::store::state::StateDir::default_path),
    )
}

async fn verify_cmd(a: VerifyArgs) -> Result<Outcome> {
    let config = firesafe::config::Config::load(&a.dirs.config_dir)?;
    let schedule = config.schedule(&a.dirs.schedule)?;
    let state = open_state(&a.dirs.state_dir)?;
    let percent = a
        .read_percent
        .or_else(|| schedule.verify.as_ref().map(|v| v.read_percent))
        .unwrap_or(5.0);
    if !(percent > 0.0 && percent <= 100.0) {
        return Err(Error::Usage(format!(
            "--read-percent {percent}: give a percentage above 0 and at most 100"
        )));
    }
    let options = firesafe::ops::verify::VerifyOptions {
        read: if a.read_all {
            firesafe::ops::verify::Read::All
        } else {
            firesafe::ops::verify::Read::Rotating(percent)
        },
        repair: a.repair || schedule.verify.as_ref().is_some_and(|v| v.repair),
        dry_run: false,
        progress: progress::on_terminal() && !a.dirs.json,
    };
    let records =
        firesafe::schedule::verify_job::verify_schedule(&config, schedule, &state, &options)
            .await?;
    print_verify(&records, a.dirs.json)
}

async fn repair_cmd(a: RepairArgs) -> Result<Outcome> {
    let config = firesafe::config::Config::load(&a.dirs.config_dir)?;
    let schedule = config.schedule(&a.dirs.schedule)?;
    let state = open_state(&a.dirs.state_dir)?;
    let options = firesafe::ops::verify::VerifyOptions {
        read: if a.read_data {
            firesafe::ops::verify::Read::All
        } else {
            firesafe::ops::verify::Read::Nothing
        },
        repair: true,
        dry_run: a.dry_run,
        progress: progress::on_terminal() && !a.dirs.json,
    };
    let records =
        firesafe::schedule::verify_job::verify_schedule(&config, schedule, &state, &options)
            .await?;
    print_verify(&records, a.dirs.json)
}

fn print_verify(records: &[firesafe::store::records::VerifyRecord], json: bool) -> Result<Outcome> {
    if json {
        println!("{}", serde_json::to_string_pretty(records).expect("JSON"));
    } else {
        for r in records {
            if r.result == firesafe::store::records::CheckOutcome::Error {
                println!("target {}: NOT VERIFIED: {}", r.target, r.error);
                continue;
            }
            println!(
                "target {}: {}: structure checked, {} of {} pack(s) read back ({} of {}); read back in the last 30 days: {:.0}%, 90 days: {:.0}%{}",
                r.target,
                if r.result == firesafe::store::records::CheckOutcome::Pass {
                    "OK"
                } else {
                    "PROBLEMS"
                },
                r.packs_read,
                r.packs_total,
                bytesize::ByteSize(r.bytes_read),
                bytesize::ByteSize(r.bytes_total),
                r.coverage_30d * 100.0,
                r.coverage_90d * 100.0,
                r.last_complete_read
                    .map(|t| format!("; last complete read {}", t.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default()
            );
            for f in &r.findings {
                println!("  {}: {}", f.object, f.problem);
                if !f.repair.is_empty() {
                    println!("    {}", f.repair);
                }
                for a in &f.affects {
                    println!("    affects {a}");
                }
            }
        }
    }
    Ok(
        if records
            .iter()
            .all(|r| r.result == firesafe::store::records::CheckOutcome::Pass)
        {
            Outcome::Success
        } else {
            Outcome::Findings
        },
    )
}

async fn drill_cmd(a: DrillArgs) -> Result<Outcome> {
    use firesafe::store::records::DrillKind;
    let config = firesafe::config::Config::load(&a.dirs.config_dir)?;
    let schedule = config.schedule(&a.dirs.schedule)?;
    let state = open_state(&a.dirs.state_dir)?;
    let configured = schedule.drill.as_ref();
    let kind = if a.site_loss {
        DrillKind::SiteLoss
    } else if a.full {
        DrillKind::Full
    } else {
        DrillKind::Sample
    };
    if a.key.is_some() && kind != DrillKind::SiteLoss {
        return Err(Error::Usage(
            "--key is the recovery key for --site-loss drills; other drills use the schedule's key"
                .into(),
        ));
    }
    let options = firesafe::ops::drill::DrillOptions {
        kind,
        target: a.target,
        sample_files: a.files.or(configured.map(|d| d.sample_files)).unwrap_or(20),
        seed: a.seed,
        recovery_key: a.key,
        scratch: a.scratch,
    };
    let records =
        firesafe::schedule::drill_job::drill_schedule(&config, schedule, &state, &options).await?;
    if a.dirs.json {
        println!("{}", serde_json::to_string_pretty(&records).expect("JSON"));
    } else {
        for r in &records {
            let what = match r.kind {
                DrillKind::Sample => "sample drill",
                DrillKind::Full => "full drill",
                DrillKind::SiteLoss => "site-loss drill",
            };
            if r.snapshot.is_empty() {
                println!(
                    "{} from {}: {what} FAILED: {}",
                    r.source, r.target, r.reason
                );
                continue;
            }
            println!(
                "{} from {}: {what} {}: snapshot {} ({}), {} file(s), {} restored in {:.1} s ({}/s); a full restore would take about {}{}{}",
                r.source,
                r.target,
                if r.result == firesafe::store::records::CheckOutcome::Pass {
                    "passed"
                } else {
                    "FAILED"
                },
                &r.snapshot[..8],
                r.snapshot_taken.format("%Y-%m-%d %H:%M UTC"),
                r.files,
                bytesize::ByteSize(r.bytes),
                r.restore_seconds,
                bytesize::ByteSize(r.bytes_per_second as u64),
                firesafe::plan::policy::describe_duration(r.estimated_recovery_seconds),
                r.rto_hours
                    .map(|h| format!(" (the policy allows {h} hours)"))
                    .unwrap_or_default(),
                r.seed.map(|s| format!("; seed {s}")).unwrap_or_default(),
            );
            if r.changed_since > 0 || r.live_identical > 0 {
                println!(
                    "  live share: {} file(s) identical, {} changed since the snapshot (not a failure)",
                    r.live_identical, r.changed_since
                );
            }
            for m in &r.mismatches {
                println!("  MISMATCH {}: {}", m.path, m.problem);
            }
            if !r.reason.is_empty() && r.result != firesafe::store::records::CheckOutcome::Pass {
                println!("  {}", r.reason);
            }
        }
    }
    Ok(
        if records
            .iter()
            .all(|r| r.result == firesafe::store::records::CheckOutcome::Pass)
        {
            Outcome::Success
        } else {
            Outcome::Findings
        },
    )
}

#[derive(Args, Debug)]
struct ReportArgs {
    /// Only these schedules (default: every schedule).
    schedules: Vec<String>,
    /// The start of the period (default: 90 days ago).
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// The end of the period (default: now).
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// Where to write: FILE.pdf and FILE.html (or FILE and its .html, when FILE ends in .pdf).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[arg(
        long,
        default_value = ".",
        env = "FIRESAFE_CONFIG_DIR",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
    /// Where the run, drill and verification records are kept (default /var/lib/firesafe for
    /// root, ~/.local/state/firesafe otherwise).
    #[arg(long, env = "FIRESAFE_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
struct SheetArgs {
    /// Only these schedules (default: every schedule).
    schedules: Vec<String>,
    /// Where to write: FILE.pdf and FILE.html (or FILE and its .html, when FILE ends in .pdf).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Print this key file's key on the sheet, as text and as a QR code.
    #[arg(long, value_name = "FILE")]
    include_key: Option<PathBuf>,
    #[arg(
        long,
        default_value = ".",
        env = "FIRESAFE_CONFIG_DIR",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
    /// Where the drill records are kept (default /var/lib/firesafe for root,
    /// ~/.local/state/firesafe otherwise).
    #[arg(long, env = "FIRESAFE_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

/// The PDF and HTML paths for `--out FILE`.
fn document_paths(out: &Path) -> (PathBuf, PathBuf) {
    let pdf = if out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pdf"))
    {
        out.to_path_buf()
    } else {
        let mut p = out.as_os_str().to_owned();
        p.push(".pdf");
        PathBuf::from(p)
    };
    let html = pdf.with_extension("html");
    (pdf, html)
}

/// Writes a document as PDF and HTML, refusing early when the place cannot be written.
fn write_document(out: &Path, doc: &firesafe::paper::doc::Doc) -> Result<(PathBuf, PathBuf)> {
    let (pdf, html) = document_paths(out);
    std::fs::write(&pdf, firesafe::paper::pdf::render(doc))
        .map_err(|e| Error::local(&pdf, "cannot write the PDF (check --out)", e))?;
    std::fs::write(&html, doc.html())
        .map_err(|e| Error::local(&html, "cannot write the HTML (check --out)", e))?;
    Ok((pdf, html))
}

/// Checks that `--out` names a place that can be written before the slow part starts.
fn check_out(out: &Path) -> Result<()> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "--out {}: the folder {} does not exist; create it or choose another place",
            out.display(),
            dir.display()
        )));
    }
    tempfile::NamedTempFile::new_in(&dir)
        .map(drop)
        .map_err(|e| Error::local(&dir, "cannot write here (check --out)", e))
}

async fn report_cmd(a: ReportArgs) -> Result<Outcome> {
    let now = chrono::Utc::now();
    let local = chrono::Local::now();
    let read = |text: &str, end: bool| -> Result<chrono::DateTime<chrono::Utc>> {
        let span = firesafe::plan::when::parse(text, &local).map_err(Error::Usage)?;
        Ok(if end { span.end } else { span.start })
    };
    let from = match &a.from {
        Some(t) => read(t, false)?,
        None => now - chrono::Duration::days(90),
    };
    let to = match &a.to {
        Some(t) => read(t, true)?,
        None => now,
    };
    if to < from {
        return Err(Error::Usage(format!(
            "--to {} is before --from {}; give the start of the period first",
            a.to.as_deref().unwrap_or("now"),
            a.from.as_deref().unwrap_or("(90 days ago)")
        )));
    }
    check_out(&a.out)?;
    let config = firesafe::config::Config::load(&a.config_dir)?;
    for s in &a.schedules {
        config.schedule(s)?;
    }
    let state = state_dir(a.state_dir)?;
    let options = firesafe::paper::report::ReportOptions {
        schedules: a.schedules,
        from,
        to,
        now,
    };
    let data = firesafe::paper::report::gather(&config, &state, &options).await?;
    let doc = firesafe::paper::report::build(&data);
    let (pdf, html) = write_document(&a.out, &doc)?;
    println!("wrote {} and {}", pdf.display(), html.display());
    Ok(Outcome::Success)
}

async fn sheet_cmd(a: SheetArgs) -> Result<Outcome> {
    check_out(&a.out)?;
    let config = firesafe::config::Config::load(&a.config_dir)?;
    for s in &a.schedules {
        config.schedule(s)?;
    }
    let state = state_dir(a.state_dir)?;
    let options = firesafe::paper::sheet::SheetOptions {
        schedules: a.schedules,
        include_key: a.include_key,
        now: chrono::Utc::now(),
    };
    let data = firesafe::paper::sheet::gather(&config, &state, &options).await?;
    let doc = firesafe::paper::sheet::build(&data);
    let (pdf, html) = write_document(&a.out, &doc)?;
    println!("wrote {} and {}", pdf.display(), html.display());
    if data.key.is_some() {
        println!(
            "the sheet holds the recovery key: print it, keep it locked away, and delete the files"
        );
    }
    Ok(Outcome::Success)
}
