//! `media`: the rotated removable disks of pool targets, and the log of disks going off site.

use chrono::{DateTime, Local, Utc};
use clap::{Args, Subcommand};
use firesafe::Result;
use firesafe::config::{Config, Site};
use firesafe::schedule::media::{self, Move, Place, PoolStatus};
use firesafe::store::state::StateDir;

use super::Outcome;
use super::args::{ConfigDir, StateDirFlag, state_help};

/// The `media` command's long help.
pub(super) const HELP: &str =
    "A path target with `pool = [\"FIRESAFE-A\", \"FIRESAFE-B\"]` (filesystem labels, or UUID=...)
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
  firesafe media offsite usb-rotation FIRESAFE-A --note \\
      \"to the business manager's safe\"
  firesafe media onsite usb-rotation FIRESAFE-B
  firesafe media offsite usb-rotation FIRESAFE-C --at \"2026-03-02 16:30\"
  firesafe media log --json";

#[derive(Args, Debug)]
#[command(mut_arg("config_dir", |a| {
    a.global(true)
        .help("The directory holding targets/ and schedules/")
}))]
#[command(mut_arg("state_dir", |a| {
    a.global(true)
        .help(state_help("Where the media records and the rotation log are kept"))
}))]
pub(super) struct MediaArgs {
    #[command(flatten)]
    config: ConfigDir,
    #[command(flatten)]
    state: StateDirFlag,
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

pub(super) async fn media_cmd(a: MediaArgs) -> Result<Outcome> {
    let config = a.config.load()?;
    let state = a.state.open(Some(&a.config))?;
    let now = Utc::now();
    match a.command {
        MediaCommand::List { target, json } => media_list(&config, &state, target, json, now),
        MediaCommand::Offsite(m) => media_move(&config, &state, m, Site::Offsite, now),
        MediaCommand::Onsite(m) => media_move(&config, &state, m, Site::Onsite, now),
        MediaCommand::Log { json } => {
            print_log(&media::log(&state)?, json);
            Ok(Outcome::Success)
        }
    }
}

/// Each disk of the pool of `target`, or of every pool; findings when a rotation is overdue.
fn media_list(
    config: &Config,
    state: &StateDir,
    target: Option<String>,
    json: bool,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let names: Vec<String> = match &target {
        Some(t) => vec![media::pool_target(config, t, None)?.name.clone()],
        None => config
            .targets
            .values()
            .filter(|t| !t.pool.is_empty())
            .map(|t| t.name.clone())
            .collect(),
    };
    let pools = media::pools(config, &names, Some(state), now)?;
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
    Ok(Outcome::clean_if(!overdue))
}

/// The rotation log, oldest first, or as JSON.
fn print_log(log: &[Move], json: bool) {
    if json {
        println!("{}", serde_json::to_string_pretty(log).expect("JSON"));
        return;
    }
    if log.is_empty() {
        println!(
            "the rotation log is empty: record moves with `firesafe media offsite TARGET DISK`"
        );
    }
    for m in log {
        println!(
            "{}  {}  {}  {}  by {} on {}{}{}",
            local_time(m.at),
            m.target,
            m.disk,
            match m.to {
                Site::Offsite => "went off site",
                Site::Onsite => "came back on site",
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

fn media_move(
    config: &Config,
    state: &StateDir,
    m: MoveArgs,
    to: Site,
    now: DateTime<Utc>,
) -> Result<Outcome> {
    let spec = media::pool_target(config, &m.target, Some(&m.disk))?;
    let at = match &m.at {
        Some(t) => media::parse_time(t, now)?,
        None => now,
    };
    let entry = Move {
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
            Site::Offsite => "went off site",
            Site::Onsite => "came back on site",
        },
        local_time(at),
        entry.who,
        entry.host
    );
    if to == Site::Offsite
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

pub(super) fn print_pools(pools: &[PoolStatus], indent: &str) {
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
                    firesafe::format::tree::printable(&h.source),
                    h.snapshot,
                    local_time(h.taken),
                    if d.place == Place::Attached {
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

fn local_time(t: DateTime<Utc>) -> String {
    t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string()
}
