//! Command-line parsing and printing, one file per command group. No logic lives here: each
//! command parses its flags, calls the library and prints what it returns.

use clap::{Parser, Subcommand};
use firesafe::Result;

mod args;
mod audit;
mod backup;
mod browse;
mod check;
mod find;
mod fleet;
mod key;
mod key_list;
mod media;
mod mount;
mod paper;
mod prune;
mod repo;
mod restore;
mod run;
mod status;
mod suspect;
mod verify;

/// How a command ended, as the process exit code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Success = 0,
    /// Completed, with findings or warnings (a partial snapshot, check findings, files not restored).
    Findings = 1,
}

impl Outcome {
    /// `Success` when nothing was found amiss, else `Findings`.
    fn clean_if(clean: bool) -> Outcome {
        if clean {
            Outcome::Success
        } else {
            Outcome::Findings
        }
    }
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
    #[command(after_help = repo::INIT_HELP)]
    Init(repo::InitArgs),
    /// Back up files and directories as a new snapshot of a source (share).
    #[command(after_help = backup::HELP)]
    Backup(backup::BackupArgs),
    /// List snapshots.
    #[command(after_help = browse::SNAPSHOTS_HELP)]
    Snapshots(browse::SnapshotsArgs),
    /// List the files in a snapshot.
    #[command(after_help = browse::LS_HELP)]
    Ls(browse::LsArgs),
    /// Restore a snapshot, or one file or folder from it, into a directory.
    #[command(after_help = restore::HELP)]
    Restore(restore::RestoreArgs),
    /// Find files and folders by name in every snapshot, and the versions of each.
    #[command(after_help = find::FIND_HELP)]
    Find(find::FindArgs),
    /// Show every version of one file or folder, and when each appeared, changed or went.
    #[command(after_help = find::VERSIONS_HELP)]
    Versions(find::VersionsArgs),
    /// Compare two snapshots: what was added, removed and modified.
    #[command(after_help = browse::DIFF_HELP)]
    Diff(browse::DiffArgs),
    /// Check that every snapshot in the repository can be restored.
    #[command(after_help = check::HELP)]
    Check(check::CheckArgs),
    /// Manage the keys that can open the repository.
    #[command(subcommand, after_help = key::HELP)]
    Key(key::KeyCommand),
    /// Run one schedule now, exactly as the nightly run would: back up its sources and copy the
    /// result to every one of its targets.
    #[command(after_help = run::RUN_HELP)]
    Run(run::RunArgs),
    /// Show, per source, where its copies are, how old they are, and the 3-2-1 verdict.
    #[command(after_help = status::STATUS_HELP)]
    Status(status::StatusArgs),
    /// Bring every target of a schedule up to date with the others, without backing up.
    #[command(after_help = run::SYNC_HELP)]
    Sync(run::SyncArgs),
    /// Check the configuration in targets/ and schedules/.
    #[command(subcommand)]
    Config(run::ConfigCommand),
    /// Run every schedule at its times (the nightly service).
    #[command(after_help = run::DAEMON_HELP)]
    Daemon(run::DaemonArgs),
    /// Apply a schedule's retention: forget old snapshots and delete the data nothing uses.
    #[command(after_help = prune::HELP)]
    Prune(prune::PruneArgs),
    /// Verify a schedule's copies: structure, a rotating share of the data read back, and the
    /// copies compared with each other.
    #[command(after_help = verify::VERIFY_HELP)]
    Verify(verify::VerifyArgs),
    /// Repair one copy from another: replace damaged or missing objects with a healthy copy,
    /// and index again packs whose index object was lost.
    #[command(after_help = verify::REPAIR_HELP)]
    Repair(verify::RepairArgs),
    /// Restore drill: restore from each copy into scratch space, check every byte, and time it.
    #[command(after_help = verify::DRILL_HELP)]
    Drill(verify::DrillArgs),
    /// Rotated removable disks: which disk holds what, and the log of disks going off site.
    #[command(after_help = media::HELP)]
    Media(media::MediaArgs),
    /// Print, or email, a schedule's summary of the last 7 days.
    #[command(after_help = status::SUMMARY_HELP)]
    Summary(status::SummaryArgs),
    /// Write the governors' backup and disaster-recovery report (PDF and HTML).
    #[command(after_help = paper::REPORT_HELP)]
    Report(paper::ReportArgs),
    /// Write the printable recovery sheet for the fire safe (PDF and HTML).
    #[command(after_help = paper::SHEET_HELP)]
    RecoverySheet(paper::SheetArgs),
    /// List the restores recorded in the audit log: who, when, what, where to, how it went.
    #[command(after_help = audit::HELP)]
    Audit(audit::AuditArgs),
    /// Snapshots marked as possible ransomware, and the technician's decision about each.
    #[command(subcommand, after_help = suspect::HELP)]
    Suspect(suspect::SuspectCommand),
    /// This school's status beacon for the trust that looks after it.
    #[command(subcommand, after_help = fleet::BEACON_HELP)]
    Beacon(fleet::BeaconCommand),
    /// For a trust: every school's status, from the beacons they write.
    #[command(subcommand, after_help = fleet::FLEET_HELP)]
    Fleet(fleet::FleetCommand),
    /// Show snapshots as read-only folders (FUSE): DIR/SOURCE/2026-11-23T0200/...
    #[command(after_help = mount::HELP)]
    Mount(mount::MountArgs),
}

pub async fn run(cli: Cli) -> Result<Outcome> {
    let repo_url = cli.repo.as_deref();
    match cli.command {
        Command::Init(a) => repo::init(repo_url, a).await,
        Command::Backup(a) => backup::backup_cmd(repo_url, a).await,
        Command::Snapshots(a) => browse::snapshots(repo_url, a).await,
        Command::Ls(a) => browse::ls_cmd(repo_url, a).await,
        Command::Restore(a) => restore::restore_cmd(repo_url, a).await,
        Command::Audit(a) => audit::audit_cmd(repo_url, a).await,
        Command::Mount(a) => mount::mount_cmd(repo_url, a).await,
        Command::Suspect(c) => suspect::suspect_cmd(repo_url, c).await,
        Command::Find(a) => find::find_cmd(repo_url, a).await,
        Command::Versions(a) => find::versions_cmd(repo_url, a).await,
        Command::Diff(a) => browse::diff_cmd(repo_url, a).await,
        Command::Check(a) => check::check_cmd(repo_url, a).await,
        Command::Key(k) => key::key_cmd(repo_url, k).await,
        Command::Run(a) => run::run_cmd(a).await,
        Command::Status(a) => status::status_cmd(a).await,
        Command::Sync(a) => run::sync_cmd(a).await,
        Command::Config(c) => run::config_cmd(c),
        Command::Daemon(a) => run::daemon_cmd(a).await,
        Command::Prune(a) => prune::prune_cmd(a).await,
        Command::Verify(a) => verify::verify_cmd(a).await,
        Command::Repair(a) => verify::repair_cmd(a).await,
        Command::Drill(a) => verify::drill_cmd(a).await,
        Command::Media(a) => media::media_cmd(a).await,
        Command::Summary(a) => status::summary_cmd(a).await,
        Command::Report(a) => paper::report_cmd(a).await,
        Command::RecoverySheet(a) => paper::sheet_cmd(a).await,
        Command::Beacon(c) => fleet::beacon_cmd(c).await,
        Command::Fleet(c) => fleet::fleet_cmd(c).await,
    }
}
