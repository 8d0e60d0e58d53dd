//! `verify`, `repair` and `drill`: a schedule's copies checked, mended, and restored for real.

use std::path::PathBuf;

use clap::Args;
use firesafe::format::tree::printable;
use firesafe::ops::drill::{DEFAULT_SAMPLE_FILES, DrillOptions};
use firesafe::ops::verify::{DEFAULT_READ_PERCENT, Read, VerifyOptions};
use firesafe::schedule::drill_job::drill_schedule;
use firesafe::schedule::verify_job::verify_schedule;
use firesafe::store::records::{CheckOutcome, DrillKind, DrillRecord, VerifyRecord};
use firesafe::{Error, Result};

use super::Outcome;
use super::args::{ConfigDir, StateDirFlag, state_help};

/// The `verify` command's long help.
pub(super) const VERIFY_HELP: &str =
    "Each target's structure is checked in full (every snapshot, index object and directory
listing, every pack a snapshot needs). A share of the data (--read-percent, default the
schedule's [verify] read_percent or 5) is downloaded and verified byte for byte, in rotation, so
that every pack is read once every 100/P runs; the coverage is recorded, and `firesafe status`
and the governors' report show how much of each copy was read back in the last 30 and 90 days.
Objects that one target lacks or holds at another size than the others are findings too. With
--repair, damaged or missing objects are replaced from a healthy copy on another target.

EXAMPLES:
  firesafe verify nightly
  firesafe verify nightly --read-all --repair";

/// The `repair` command's long help.
pub(super) const REPAIR_HELP: &str =
    "Every object is named by the hash of its bytes and is the same on every target, so a
damaged or missing object on one target is replaced exactly by a copy from another that passes
every check. What no target holds intact is listed with the snapshots and files it affects.
Without --read-data only what the structure check and the comparison find is repaired; with it
every pack is read.

EXAMPLES:
  firesafe repair nightly --dry-run
  firesafe repair nightly --read-data";

/// The `drill` command's long help.
pub(super) const DRILL_HELP: &str =
    "A sample drill (the default) restores a random sample of files (--files, default 20) from
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
  firesafe drill nightly --site-loss --key /mnt/usb/recovery.key";

// The schedule and the directories that verify, repair and drill share.
#[derive(Args, Debug)]
#[command(mut_arg("state_dir", |a| a.help(state_help("Where run history and records are kept"))))]
struct ScheduleDirs {
    /// The schedule (schedules/NAME.toml).
    schedule: String,
    #[command(flatten)]
    config: ConfigDir,
    #[command(flatten)]
    state: StateDirFlag,
    /// Print the records as JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub(super) struct VerifyArgs {
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
pub(super) struct RepairArgs {
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
pub(super) struct DrillArgs {
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

pub(super) async fn verify_cmd(a: VerifyArgs) -> Result<Outcome> {
    let config = a.dirs.config.load()?;
    let schedule = config.schedule(&a.dirs.schedule)?;
    let state = a.dirs.state.open(Some(&a.dirs.config))?;
    let percent = a
        .read_percent
        .or_else(|| schedule.verify.as_ref().map(|v| v.read_percent))
        .unwrap_or(DEFAULT_READ_PERCENT);
    if !(percent > 0.0 && percent <= 100.0) {
        return Err(Error::Usage(format!(
            "--read-percent {percent}: give a percentage above 0 and at most 100"
        )));
    }
    let options = VerifyOptions {
        read: if a.read_all {
            Read::All
        } else {
            Read::Rotating(percent)
        },
        repair: a.repair || schedule.verify.as_ref().is_some_and(|v| v.repair),
        dry_run: false,
        progress: !a.dirs.json,
    };
    let records = verify_schedule(&config, schedule, &state, &options).await?;
    print_verify(&records, a.dirs.json)
}

pub(super) async fn repair_cmd(a: RepairArgs) -> Result<Outcome> {
    let config = a.dirs.config.load()?;
    let schedule = config.schedule(&a.dirs.schedule)?;
    let state = a.dirs.state.open(Some(&a.dirs.config))?;
    let options = VerifyOptions {
        read: if a.read_data {
            Read::All
        } else {
            Read::Nothing
        },
        repair: true,
        dry_run: a.dry_run,
        progress: !a.dirs.json,
    };
    let records = verify_schedule(&config, schedule, &state, &options).await?;
    print_verify(&records, a.dirs.json)
}

fn print_verify(records: &[VerifyRecord], json: bool) -> Result<Outcome> {
    if json {
        println!("{}", serde_json::to_string_pretty(records).expect("JSON"));
    } else {
        for r in records {
            if r.result == CheckOutcome::Error {
                println!("target {}: NOT VERIFIED: {}", r.target, r.error);
                continue;
            }
            println!(
                "target {}: {}: structure checked, {} of {} read back ({} of {}); read back in the last 30 days: {:.0}%, 90 days: {:.0}%{}",
                r.target,
                if r.result == CheckOutcome::Pass {
                    "OK"
                } else {
                    "PROBLEMS"
                },
                r.packs_read,
                firesafe::plan::words::count_s(r.packs_total, "pack"),
                bytesize::ByteSize(r.bytes_read),
                bytesize::ByteSize(r.bytes_total),
                r.coverage_30d * 100.0,
                r.coverage_90d * 100.0,
                r.last_complete_read
                    .map(|t| format!("; last complete read {}", t.format("%Y-%m-%d %H:%M UTC")))
                    .unwrap_or_default()
            );
            for f in &r.findings {
                // Source and file names (in the paths and in some problems) are shown
                // escaped, exact in the JSON.
                println!("  {}: {}", f.object, printable(&f.problem));
                if !f.repair.is_empty() {
                    println!("    {}", printable(&f.repair));
                }
                for a in &f.affects {
                    println!("    affects {}", printable(a));
                }
            }
        }
        let names: Vec<&str> = records.iter().map(|r| r.target.as_str()).collect();
        if records.len() > 1
            && records
                .iter()
                .all(|r| r.result == CheckOutcome::Pass && r.findings.is_empty())
        {
            println!(
                "copies compared: {} hold the same objects ({} compared)",
                names.join(" and "),
                records.iter().map(|r| r.compared).max().unwrap_or(0)
            );
        }
    }
    Ok(Outcome::clean_if(
        records.iter().all(|r| r.result == CheckOutcome::Pass),
    ))
}

pub(super) async fn drill_cmd(a: DrillArgs) -> Result<Outcome> {
    let config = a.dirs.config.load()?;
    let schedule = config.schedule(&a.dirs.schedule)?;
    let state = a.dirs.state.open(Some(&a.dirs.config))?;
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
    let options = DrillOptions {
        kind,
        target: a.target,
        sample_files: a
            .files
            .or(configured.map(|d| d.sample_files))
            .unwrap_or(DEFAULT_SAMPLE_FILES),
        seed: a.seed,
        recovery_key: a.key,
        scratch: a.scratch,
    };
    let records = drill_schedule(&config, schedule, &state, &options).await?;
    print_drills(&records, a.dirs.json)
}

/// Each drill's result, or the records as JSON.
fn print_drills(records: &[DrillRecord], json: bool) -> Result<Outcome> {
    if json {
        println!("{}", serde_json::to_string_pretty(records).expect("JSON"));
    } else {
        for r in records {
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
            // A full drill measured the whole restore; a sample only gives an estimate.
            let recovery = firesafe::plan::words::duration(r.estimated_recovery_seconds);
            let recovery = if r.kind == DrillKind::Sample {
                format!("a full restore would take about {recovery} (estimated from the sample)")
            } else {
                format!("the whole restore took {recovery} (measured)")
            };
            println!(
                "{} from {}: {what} {}: snapshot {} ({}), {}, {} restored in {:.1} s ({}/s); {recovery}{}{}",
                r.source,
                r.target,
                if r.result == CheckOutcome::Pass {
                    "passed"
                } else {
                    "FAILED"
                },
                &r.snapshot[..8],
                r.snapshot_taken.format("%Y-%m-%d %H:%M UTC"),
                firesafe::plan::words::count_s(r.files, "file"),
                bytesize::ByteSize(r.bytes),
                r.restore_seconds,
                bytesize::ByteSize(r.bytes_per_second as u64),
                r.rto_hours
                    .map(|h| format!(" (the policy allows {h} hours)"))
                    .unwrap_or_default(),
                r.seed.map(|s| format!("; seed {s}")).unwrap_or_default(),
            );
            if r.changed_since > 0 || r.live_identical > 0 {
                println!(
                    "  live share: {} identical, {} since the snapshot (not a failure)",
                    firesafe::plan::words::count_s(r.live_identical, "file"),
                    firesafe::plan::words::count(r.changed_since, "file changed", "files changed")
                );
            }
            for m in &r.mismatches {
                println!("  MISMATCH {}: {}", m.path, m.problem);
            }
            if !r.reason.is_empty() && r.result != CheckOutcome::Pass {
                println!("  {}", r.reason);
            }
        }
    }
    Ok(Outcome::clean_if(
        records.iter().all(|r| r.result == CheckOutcome::Pass),
    ))
}
