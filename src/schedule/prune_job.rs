//! A schedule's prune job: retention worked out once, on the first target, and mirrored to the
//! others under exclusive locks, so that the targets stay object-for-object identical. It holds
//! the schedule's lock in the state directory throughout, as a run does, so that a prune and a
//! run of one schedule never overlap on this machine, whoever starts the prune.

use chrono::{DateTime, Utc};

use crate::config::targets::open_targets;
use crate::config::{Config, ScheduleSpec};
use crate::error::{Error, Result};
use crate::ops::prune::{PruneOptions, PruneReport};
use crate::ops::replicate;
use crate::store::lock::TargetLock;
use crate::store::repo::Repository;
use crate::store::state::StateDir;

/// What `prune` did on one target of a schedule.
#[derive(Debug)]
pub enum PruneOutcome {
    /// The target retention was worked out on (the first reachable one).
    Pruned(PruneReport),
    /// Another target, given the pruned target's new objects and then the same deletions, so
    /// that every target keeps holding the same objects.
    Mirrored {
        from: String,
        deleted: usize,
        /// Deletions left for later: the objects are under object lock.
        locked: usize,
        dry_run: bool,
    },
    /// Left alone, and why (append-only, holds no repository).
    Skipped(String),
    Failed(Error),
}

/// One outcome per target of the schedule, in its order, filled in as the prune goes.
struct Outcomes(Vec<(String, Option<PruneOutcome>)>);

impl Outcomes {
    fn name(&self, slot: usize) -> &str {
        &self.0[slot].0
    }

    fn set(&mut self, slot: usize, outcome: PruneOutcome) {
        self.0[slot].1 = Some(outcome);
    }

    /// The members after the first were not pruned, because the first could not be (`why`).
    fn others_failed(&mut self, members: &[Member], why: &str) {
        let primary = self.name(members[0].slot).to_string();
        for m in members.iter().skip(1) {
            let e = Error::Usage(format!("not pruned: {primary} could not be: {why}"));
            self.set(m.slot, PruneOutcome::Failed(e));
        }
    }

    fn finish(self) -> Vec<(String, PruneOutcome)> {
        self.0
            .into_iter()
            .map(|(n, o)| (n, o.expect("every target has an outcome")))
            .collect()
    }
}

/// A target taking part in the prune: its place among the outcomes and its repository.
struct Member {
    slot: usize,
    repo: Repository,
}

/// Applies a schedule's retention to its targets, under the schedule's lock in `state` (a run
/// and a prune of one schedule never overlap on this machine). Every target taking part is
/// locked exclusively first; the first one is brought the snapshots the others hold (so it holds
/// everything any of them holds), pruned, and the others are then given its new objects and
/// the same deletions. Working retention out once keeps the targets identical: pruning each on
/// its own would write different index objects and packs on each (encryption is randomised),
/// which replication would then copy across. Targets marked `append_only` are left alone unless
/// `include_append_only`. With `dry_run` only the first target is read, and nothing changes.
pub async fn prune_schedule(
    config: &Config,
    schedule: &ScheduleSpec,
    state: &StateDir,
    dry_run: bool,
    include_append_only: bool,
) -> Result<Vec<(String, PruneOutcome)>> {
    let Some(_lock) = state.try_lock(&schedule.name)? else {
        return Err(Error::Busy(format!(
            "schedule \"{}\" is running; prune it when the run has finished",
            schedule.name
        )));
    };
    let Some(retention) = &schedule.retention else {
        return Err(Error::Usage(format!(
            "schedule \"{}\" has no [retention] section, so prune keeps everything; add keep_daily, keep_weekly, ... to schedules/{}.toml",
            schedule.name, schedule.name
        )));
    };
    let unlock = config.schedule_key(schedule)?;
    let mut options = prune_options(schedule, retention, Utc::now())?;
    let (mut outcomes, members) = gather(config, schedule, &unlock, include_append_only).await;
    let Some(first) = members.first() else {
        return Ok(outcomes.finish());
    };
    let primary_name = outcomes.name(first.slot).to_string();
    options.object_lock = object_lock(config, &primary_name);

    if dry_run {
        forecast(&mut outcomes, &members, &options).await;
        return Ok(outcomes.finish());
    }

    // Every member locked before anything changes; one that is busy stops them all.
    let locks = match lock_members(&members).await {
        Ok(locks) => locks,
        Err((busy, text)) => {
            for (n, m) in members.iter().enumerate() {
                let e = if n == busy {
                    Error::Busy(text.clone())
                } else {
                    Error::Busy(format!("not pruned, because {text}"))
                };
                outcomes.set(m.slot, PruneOutcome::Failed(e));
            }
            return Ok(outcomes.finish());
        }
    };
    let result = prune_members(config, &members, &locks, &options, &primary_name).await;
    for l in locks {
        l.release().await;
    }
    match result {
        Ok(done) => {
            for (m, outcome) in members.iter().zip(done) {
                outcomes.set(m.slot, outcome);
            }
        }
        Err(e) => {
            let text = e.to_string();
            outcomes.set(first.slot, PruneOutcome::Failed(Error::Usage(text.clone())));
            outcomes.others_failed(&members, &text);
        }
    }
    Ok(outcomes.finish())
}

/// A dry run: the plan for the first member, and for the others what mirroring it would do.
async fn forecast(outcomes: &mut Outcomes, members: &[Member], options: &PruneOptions) {
    let first = &members[0];
    let primary_name = outcomes.name(first.slot).to_string();
    match crate::ops::prune::plan(&first.repo, options).await {
        Ok(plan) => {
            let r = plan.report();
            let n =
                r.forgotten.len() + r.packs_deleted as usize + r.index_objects_rewritten as usize;
            outcomes.set(first.slot, PruneOutcome::Pruned(r));
            for m in members.iter().skip(1) {
                let mirrored = PruneOutcome::Mirrored {
                    from: primary_name.clone(),
                    deleted: n,
                    locked: 0,
                    dry_run: true,
                };
                outcomes.set(m.slot, mirrored);
            }
        }
        Err(e) => {
            let text = e.to_string();
            outcomes.set(first.slot, PruneOutcome::Failed(e));
            outcomes.others_failed(members, &text);
        }
    }
}

/// The schedule's retention as prune options (object lock left for the caller to set: it is the
/// pruned target's).
fn prune_options(
    schedule: &ScheduleSpec,
    retention: &crate::config::RetentionSpec,
    now: DateTime<Utc>,
) -> Result<PruneOptions> {
    let timezone = schedule.times().timezone;
    Ok(PruneOptions {
        retention: crate::plan::retention::Retention {
            last: retention.keep_last,
            hourly: retention.keep_hourly,
            daily: retention.keep_daily,
            weekly: retention.keep_weekly,
            monthly: retention.keep_monthly,
            yearly: retention.keep_yearly,
        },
        sources: schedule.sources.iter().map(|s| s.name.clone()).collect(),
        timezone,
        grace: chrono::Duration::hours(i64::from(retention.grace_hours.unwrap_or(24))),
        object_lock: None,
        now,
    })
}

/// How long a configured target's objects are under object lock.
fn object_lock(config: &Config, target: &str) -> Option<chrono::Duration> {
    config.targets[target]
        .object_lock_days
        .map(|d| chrono::Duration::days(i64::from(d)))
}

/// Who takes part: every target of the schedule holding the repository, except append-only
/// ones unless `include_append_only`. The others' outcomes are filled in already.
async fn gather(
    config: &Config,
    schedule: &ScheduleSpec,
    unlock: &crate::format::crypto::Unlock,
    include_append_only: bool,
) -> (Outcomes, Vec<Member>) {
    let mut outcomes = Outcomes(Vec::new());
    let mut members = Vec::new();
    for (name, target) in open_targets(config, schedule, false).await {
        let spec = &config.targets[&name];
        let slot = outcomes.0.len();
        let outcome = if spec.append_only && !include_append_only {
            Some(PruneOutcome::Skipped(
                "append-only: routine runs never delete here (use --include-append-only with credentials that may delete)".into(),
            ))
        } else {
            match target {
                Err(e) => Some(PruneOutcome::Failed(e)),
                Ok(t) => match Repository::read_config(&t).await {
                    Err(Error::NotARepository { .. }) => {
                        Some(PruneOutcome::Skipped("holds no repository yet".into()))
                    }
                    Err(e) => Some(PruneOutcome::Failed(e)),
                    Ok(_) => match Repository::open(t, unlock).await {
                        Ok(repo) => {
                            members.push(Member { slot, repo });
                            None
                        }
                        Err(e) => Some(PruneOutcome::Failed(e)),
                    },
                },
            }
        };
        outcomes.0.push((name, outcome));
    }
    (outcomes, members)
}

/// Every member's exclusive lock, or (the position of the member that is busy, why), every lock
/// taken so far released again.
async fn lock_members(members: &[Member]) -> std::result::Result<Vec<TargetLock>, (usize, String)> {
    let mut locks = Vec::new();
    for (n, m) in members.iter().enumerate() {
        match TargetLock::exclusive(m.repo.target(), "prune").await {
            Ok(l) => locks.push(l),
            Err(e) => {
                let text = e.to_string();
                for l in locks {
                    l.release().await;
                }
                return Err((n, text));
            }
        }
    }
    Ok(locks)
}

/// The locked part of a prune: catch the first member up, prune it, mirror it to the others.
async fn prune_members(
    config: &Config,
    members: &[Member],
    locks: &[TargetLock],
    options: &PruneOptions,
    primary_name: &str,
) -> Result<Vec<PruneOutcome>> {
    let primary = &members[0].repo;
    for other in members.iter().skip(1) {
        replicate::pull_with(&other.repo, primary, Some(&locks[0])).await?;
    }
    let report = crate::ops::prune::prune_locked(primary, options, &locks[0]).await?;
    let mut done = Vec::new();
    for (other, lock) in members.iter().zip(locks).skip(1) {
        let (from, to) = (primary.target(), other.repo.target());
        let outcome = async {
            replicate::replicate_with(from, to, Some(lock)).await?;
            let held = object_lock(config, to.name());
            let deleted = &report.deleted;
            let m = replicate::mirror_deletions(from, to, deleted, lock, held, options.now).await?;
            Ok::<_, Error>(PruneOutcome::Mirrored {
                from: primary_name.to_string(),
                deleted: m.deleted,
                locked: m.locked,
                dry_run: false,
            })
        }
        .await
        .unwrap_or_else(PruneOutcome::Failed);
        done.push(outcome);
    }
    done.insert(0, PruneOutcome::Pruned(report));
    Ok(done)
}
