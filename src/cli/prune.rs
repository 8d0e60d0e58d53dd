//! `prune`: a schedule's retention applied on every target. (Kept as it was while the lock
//! that keeps a prune and a run apart moves into the library.)

use std::path::PathBuf;

use clap::Args;
use firesafe::format::tree::printable;
use firesafe::plan::words::{count_s, noun};
use firesafe::{Error, Result};

use super::Outcome;

/// The `prune` command's long help.
pub(super) const HELP: &str =
    "Each schedule's [retention] says which snapshots of its sources to keep (keep_last,
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
    firesafe prune --config-dir /etc/firesafe";

#[derive(Args, Debug)]
pub(super) struct PruneArgs {
    /// The schedule (schedules/NAME.toml); default: every schedule with [retention].
    schedule: Option<String>,
    #[arg(
        long,
        default_value = ".",
        env = "FIRESAFE_CONFIG_DIR",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
    /// Where run history and locks are kept (default: a folder for this configuration
    /// directory under /var/lib/firesafe/configs for root, ~/.local/state/firesafe/configs
    /// otherwise).
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

pub(super) async fn prune_cmd(a: PruneArgs) -> Result<Outcome> {
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
            .unwrap_or_else(|| firesafe::store::state::StateDir::default_for(&a.config_dir)),
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
                            "{}: target {name}: given {from}'s new objects and the same deletions ({} deleted{})",
                            schedule.name,
                            count_s(deleted as u64, "object"),
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
    for h in &r.held {
        println!("  {} (on every target)", h.sentence());
    }
    for d in &r.kept {
        println!(
            "  keep   {} {:<12} {}  ({})",
            d.id.short(),
            printable(&d.source),
            when(d),
            d.reasons.join(", ")
        );
    }
    for d in &r.forgotten {
        println!(
            "  {would}forget {} {:<12} {}",
            d.id.short(),
            printable(&d.source),
            when(d)
        );
    }
    let (delete, rewrite) = if r.dry_run {
        ("would delete", "would rewrite")
    } else {
        ("deleted", "rewrote")
    };
    println!(
        "  {delete} {} ({}); {rewrite} {}",
        count_s(r.packs_deleted, "pack"),
        bytesize::ByteSize(r.bytes_freed),
        count_s(r.index_objects_rewritten, "index object")
    );
    if r.packs_repacked > 0 {
        println!(
            "  {} {} with much unused space, copying {} still in use into new packs",
            if r.dry_run {
                "would rewrite"
            } else {
                "rewrote"
            },
            count_s(r.packs_repacked, "pack"),
            bytesize::ByteSize(r.bytes_repacked)
        );
    }
    if r.packs_partly_used > 0 {
        println!(
            "  kept {} still partly in use, holding {} no snapshot uses",
            count_s(r.packs_partly_used, "pack"),
            bytesize::ByteSize(r.bytes_unused_in_kept_packs)
        );
    }
    if r.packs_in_grace > 0 {
        println!(
            "  kept {} younger than the grace period (a backup may still be using {})",
            count_s(r.packs_in_grace, "unindexed pack"),
            noun(r.packs_in_grace, "it", "them")
        );
    }
    if r.blobs_unlocated > 0 {
        println!(
            "  kept {} whatever {} age: {} the snapshots use {} in no indexed pack here (an index object or pack is missing); run `firesafe repair {schedule}`",
            count_s(r.packs_unindexed_kept, "unindexed pack"),
            noun(r.packs_unindexed_kept, "its", "their"),
            count_s(r.blobs_unlocated, "blob"),
            noun(r.blobs_unlocated, "is", "are")
        );
    }
    if let Some(until) = r.locked_until {
        println!(
            "  could not delete {} yet: under object lock, the first until {}; a later prune deletes {}",
            count_s(r.locked.len() as u64, "object"),
            until.format("%Y-%m-%d %H:%M UTC"),
            noun(r.locked.len() as u64, "it", "them")
        );
    }
    if !r.stale_locks_removed.is_empty() {
        println!(
            "  removed {} left by processes that are gone",
            firesafe::plan::words::count_s(r.stale_locks_removed.len() as u64, "lock object")
        );
    }
    if r.scratch_removed > 0 {
        println!(
            "  removed {} left in tmp/ by killed backups",
            firesafe::plan::words::count_s(r.scratch_removed, "scratch file")
        );
    }
}
