//! `run`, `sync`, `daemon` and `config check`: a schedule's runs, and the signals that stop one
//! gracefully.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use clap::{Args, Subcommand};
use firesafe::config::Config;
use firesafe::schedule::backup_job;
use firesafe::schedule::daemon::{self, DaemonOptions};
use firesafe::schedule::run::{RunOptions, TargetOutcome};
use firesafe::{Error, Result};
use tokio::sync::Notify;

use super::Outcome;
use super::args::{ConfigDir, StateDirFlag, state_help};

/// The `run` command's long help.
pub(super) const RUN_HELP: &str =
    "The schedule is schedules/NAME.toml and its targets targets/*.toml under the
configuration directory (--config-dir, default: the current directory). Every target holds the
same repository: the backup goes to the first target that is reachable, and the new objects are
then copied to the others. A target that is down does not stop the others; the run ends with
exit status 1 and names it, and the next run brings it up to date.

EXAMPLES:
  First run of the shipped example (creates the key file and the repositories):
    firesafe run nightly --init
  Later runs:
    firesafe run nightly";

/// The `sync` command's long help.
pub(super) const SYNC_HELP: &str = "EXAMPLES:
  After the offsite store was unreachable during the night:
    firesafe sync nightly";

/// The `daemon` command's long help.
pub(super) const DAEMON_HELP: &str =
    "Times are read in each schedule's time zone; the clock changes in March and
October neither skip nor double a run. A run missed while the machine was off runs once at
start-up. Two runs of one schedule never overlap (a `firesafe run` of the same schedule waits its
turn by refusing to start). On SIGTERM the current backup stores and indexes what it has read
and the daemon exits; the next run continues from there. Each run is recorded in the state
directory (history.jsonl). Logs go to standard error, as text or JSON lines, without secrets.

A systemd unit is in docs/systemd/firesafe.service. Without systemd, cron can call
`firesafe run SCHEDULE` instead (see README).

EXAMPLES:
  firesafe daemon --config-dir /etc/firesafe
  firesafe daemon --config-dir /etc/firesafe --log-format json";

#[derive(Args, Debug)]
#[command(mut_arg("config_dir", |a| a.help("The directory holding targets/ and schedules/")))]
#[command(mut_arg("state_dir", |a| a.help(state_help("Where run history and locks are kept"))))]
pub(super) struct RunArgs {
    /// The schedule's name (schedules/NAME.toml).
    schedule: String,
    #[command(flatten)]
    config: ConfigDir,
    /// First run: create the schedule's key file and repositories where they do not exist.
    #[arg(long)]
    init: bool,
    #[command(flatten)]
    state: StateDirFlag,
}

#[derive(Args, Debug)]
pub(super) struct SyncArgs {
    /// The schedule whose targets to bring up to date.
    schedule: String,
    #[command(flatten)]
    config: ConfigDir,
    /// Create the repository on targets that are empty (a new NAS share or disk), as a copy of
    /// the others. Without it an empty target is missing (not mounted?) and nothing is written.
    #[arg(long)]
    init: bool,
}

#[derive(Subcommand, Debug)]
pub(super) enum ConfigCommand {
    /// Validate every file and report each problem with its file, line and key.
    #[command(after_help = "EXAMPLES:
  firesafe config check
  firesafe config check --config-dir /etc/firesafe")]
    Check(ConfigDir),
}

#[derive(Args, Debug)]
#[command(mut_arg("state_dir", |a| a.help(state_help("Where run history and locks are kept"))))]
pub(super) struct DaemonArgs {
    #[command(flatten)]
    config: ConfigDir,
    #[command(flatten)]
    state: StateDirFlag,
    /// Log lines on standard error as text or JSON (one object per line).
    #[arg(long, value_enum, default_value = "text")]
    log_format: LogFormat,
}

#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum LogFormat {
    Text,
    Json,
}

pub(super) async fn run_cmd(a: RunArgs) -> Result<Outcome> {
    let config = a.config.load()?;
    let schedule = config.schedule(&a.schedule)?;
    let state = a.state.open(Some(&a.config))?;
    let (cancel, _) = stop_on_signal();
    let options = RunOptions {
        init: a.init,
        progress: true,
        cancel: Some(cancel),
    };
    let report = backup_job::run_recorded(&config, schedule, &state, None, &options).await?;
    for line in &report.created {
        println!("{line}");
    }
    for (source, result) in &report.backups {
        match result {
            Ok(b) => {
                if let Some(x) = &b.snapshot.suspect {
                    eprintln!(
                        "firesafe: warning: {source}: POSSIBLE RANSOMWARE: {} (snapshot {} is kept, marked suspect; see `firesafe status`)",
                        firesafe::format::tree::printable(&x.headline),
                        b.id.short()
                    );
                }
                for (key, why) in &b.damaged_packs {
                    eprintln!(
                        "firesafe: warning: {source}: pack {key} is damaged ({}); it is marked, and its data was stored again (run `firesafe verify {} --repair`)",
                        firesafe::format::tree::printable(why),
                        schedule.name
                    );
                }
                for w in &b.snapshot.warnings {
                    eprintln!(
                        "firesafe: warning: {source}: {}: {}",
                        firesafe::format::tree::printable(&w.path),
                        firesafe::format::tree::printable(&w.message)
                    );
                }
                let st = &b.snapshot.stats;
                println!(
                    "{source}: snapshot {} saved{}: {} ({}), {} new, {} changed, {} unchanged, {} removed; added {} ({} stored)",
                    b.id.short(),
                    if b.snapshot.partial { " (partial)" } else { "" },
                    firesafe::plan::words::count_s(st.files, "file"),
                    bytesize::ByteSize(st.bytes),
                    st.files_new,
                    st.files_changed,
                    st.files_unchanged,
                    st.files_removed,
                    bytesize::ByteSize(st.bytes_added),
                    bytesize::ByteSize(st.bytes_stored),
                );
            }
            Err(e) => println!("{source}: not backed up: {e}"),
        }
    }
    print_targets(
        &report.targets,
        "received the backup",
        " (run `firesafe check --read-data`)",
    );
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
    Ok(Outcome::clean_if(clean))
}

pub(super) async fn sync_cmd(a: SyncArgs) -> Result<Outcome> {
    let config = a.config.load()?;
    let schedule = config.schedule(&a.schedule)?;
    let outcomes = firesafe::schedule::run::sync(&config, schedule, a.init).await?;
    let clean = print_targets(&outcomes, "source of the copy", "");
    Ok(Outcome::clean_if(clean))
}

/// What each target of a run or sync got. `primary` says what the target the others were
/// brought up to date from did; `damaged_hint` follows each object not copied because it is
/// damaged at the source. Whether every target is up to date with nothing left out.
fn print_targets(targets: &[(String, TargetOutcome)], primary: &str, damaged_hint: &str) -> bool {
    let mut clean = true;
    for (name, outcome) in targets {
        match outcome {
            TargetOutcome::Primary(received) => {
                for (from, n, bytes) in received {
                    println!(
                        "target {name}: received from {from} what it lacked ({}, {} copied)",
                        firesafe::plan::words::count_s(*n, "object"),
                        bytesize::ByteSize(*bytes)
                    );
                }
                println!("target {name}: {primary}");
            }
            TargetOutcome::Replicated(r) => {
                println!(
                    "target {name}: up to date ({}, {} copied)",
                    firesafe::plan::words::count_s(r.copied, "object"),
                    bytesize::ByteSize(r.bytes)
                );
                for k in &r.repaired {
                    println!("target {name}: replaced damaged object {k} with the intact copy");
                }
                for k in &r.keys_removed {
                    println!("target {name}: removed key {k} (removed on another copy)");
                }
                for n in &r.notes {
                    println!("target {name}: note: {n}");
                }
                for k in &r.damaged {
                    clean = false;
                    println!("target {name}: not copied, damaged at the source: {k}{damaged_hint}");
                }
            }
            TargetOutcome::Failed(e) => {
                clean = false;
                println!("target {name}: NOT UPDATED: {e}");
            }
        }
    }
    clean
}

pub(super) fn config_cmd(c: ConfigCommand) -> Result<Outcome> {
    match c {
        ConfigCommand::Check(dir) => config_check(&dir.config_dir),
    }
}

fn config_check(dir: &Path) -> Result<Outcome> {
    match Config::load(dir) {
        Ok(c) => {
            println!(
                "configuration in {} is valid: {} ({}), {} ({})",
                dir.display(),
                firesafe::plan::words::count_s(c.targets.len() as u64, "target"),
                c.targets.keys().cloned().collect::<Vec<_>>().join(", "),
                firesafe::plan::words::count_s(c.schedules.len() as u64, "schedule"),
                c.schedules.keys().cloned().collect::<Vec<_>>().join(", ")
            );
            for w in c.warnings() {
                println!("{w}");
            }
            for spec in c.targets.values().filter(|t| t.needs_mount()) {
                if let firesafe::store::target::Location::Path(p) = spec.location()
                    && !firesafe::store::target::disk::on_mounted_filesystem(&p)
                {
                    println!(
                        "warning: target {}: {} is not on a mounted filesystem now; runs treat the target as missing until the {} is mounted (set require_mount = false in targets/{}.toml if the directory is meant to be on this server's disk)",
                        spec.name,
                        p.display(),
                        if spec.medium == "nas" {
                            "NAS share"
                        } else {
                            "disk"
                        },
                        spec.name
                    );
                }
            }
            Ok(Outcome::Success)
        }
        Err(Error::Config(problems)) => {
            for p in &problems {
                println!("{p}");
            }
            println!(
                "{} found",
                firesafe::plan::words::count_s(problems.len() as u64, "problem")
            );
            Ok(Outcome::Findings)
        }
        Err(e) => Err(e),
    }
}

pub(super) async fn daemon_cmd(a: DaemonArgs) -> Result<Outcome> {
    let builder = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false);
    match a.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    let config = a.config.load()?;
    let state = a.state.open(Some(&a.config))?;
    let (cancel, wake) = stop_on_signal();
    daemon::daemon(DaemonOptions {
        config,
        state,
        cancel,
        wake,
    })
    .await?;
    Ok(Outcome::Success)
}

/// A flag set (and a notification sent) on SIGTERM or SIGINT, so that a backup can stop after
/// storing what it has read.
pub(super) fn stop_on_signal() -> (Arc<AtomicBool>, Arc<Notify>) {
    use tokio::signal::unix::{SignalKind, signal};
    let flag = Arc::new(AtomicBool::new(false));
    let wake = Arc::new(Notify::new());
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
        f.store(true, Ordering::Relaxed);
        w.notify_one();
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        std::process::exit(2);
    });
    (flag, wake)
}
