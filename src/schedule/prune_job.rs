//! A schedule's prune job: retention worked out once, on the first target, and mirrored to the
//! others under exclusive locks, so that the targets stay object-for-object identical.

use crate::config::targets::open_targets;
use crate::config::{Config, ScheduleSpec};
use crate::error::{Error, Result};
use crate::ops::replicate;
use crate::store::lock::TargetLock;
use crate::store::repo::Repository;

/// What `prune` did on one target of a schedule.
#[derive(Debug)]
pub enum PruneOutcome {
    /// The target retention was worked out on (the first reachable one).
    Pruned(crate::ops::prune::PruneReport),
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

/// Applies a schedule's retention to its targets. Every target taking part is locked
/// exclusively first; the first one is brought the snapshots the others hold (so it holds
/// everything any of them holds), pruned, and the others are then given its new objects and
/// the same deletions. Working retention out once keeps the targets identical: pruning each on
/// its own would write different index objects and packs on each (encryption is randomised),
/// which replication would then copy across. Targets marked `append_only` are left alone unless
/// `include_append_only`.
pub async fn prune_schedule(
    config: &Config,
    schedule: &ScheduleSpec,
    dry_run: bool,
    include_append_only: bool,
) -> Result<Vec<(String, PruneOutcome)>> {
    let Some(retention) = &schedule.retention else {
        return Err(Error::Usage(format!(
            "schedule \"{}\" has no [retention] section, so prune keeps everything; add keep_daily, keep_weekly, ... to schedules/{}.toml",
            schedule.name, schedule.name
        )));
    };
    let unlock = config.schedule_key(schedule)?;
    let timezone = schedule.times().timezone;
    let now = chrono::Utc::now();
    let lock_of = |name: &str| {
        config.targets[name]
            .object_lock_days
            .map(|d| chrono::Duration::days(i64::from(d)))
    };

    // Who takes part.
    let mut outcomes: Vec<(String, Option<PruneOutcome>)> = Vec::new();
    let mut members: Vec<(usize, Repository)> = Vec::new();
    for (name, target) in open_targets(config, schedule, false).await {
        let spec = &config.targets[&name];
        let i = outcomes.len();
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
                    Ok(_) => match Repository::open(t, &unlock).await {
                        Ok(repo) => {
                            members.push((i, repo));
                            None
                        }
                        Err(e) => Some(PruneOutcome::Failed(e)),
                    },
                },
            }
        };
        outcomes.push((name, outcome));
    }
    let finish = |outcomes: Vec<(String, Option<PruneOutcome>)>| {
        outcomes
            .into_iter()
            .map(|(n, o)| (n, o.expect("every target has an outcome")))
            .collect()
    };
    let Some((first, primary)) = members.first() else {
        return Ok(finish(outcomes));
    };
    let primary_name = outcomes[*first].0.clone();
    let options = crate::ops::prune::PruneOptions {
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
        object_lock: lock_of(&primary_name),
        dry_run,
        now,
    };

    if dry_run {
        match crate::ops::prune::prune_locked(primary, &options, None).await {
            Ok(r) => {
                let n = r.forgotten.len()
                    + r.packs_deleted as usize
                    + r.index_objects_rewritten as usize;
                outcomes[*first].1 = Some(PruneOutcome::Pruned(r));
                for (i, _) in members.iter().skip(1) {
                    outcomes[*i].1 = Some(PruneOutcome::Mirrored {
                        from: primary_name.clone(),
                        deleted: n,
                        locked: 0,
                        dry_run: true,
                    });
                }
            }
            Err(e) => {
                let text = e.to_string();
                outcomes[*first].1 = Some(PruneOutcome::Failed(e));
                for (i, _) in members.iter().skip(1) {
                    outcomes[*i].1 = Some(PruneOutcome::Failed(Error::Usage(format!(
                        "not pruned: {primary_name} could not be: {text}"
                    ))));
                }
            }
        }
        return Ok(finish(outcomes));
    }

    // Every member locked before anything changes; one that is busy stops them all.
    let mut locks = Vec::new();
    for (i, repo) in &members {
        match TargetLock::exclusive(repo.target(), "prune").await {
            Ok(l) => locks.push(l),
            Err(e) => {
                let text = e.to_string();
                for l in locks {
                    l.release().await;
                }
                for (j, _) in &members {
                    outcomes[*j].1 = Some(PruneOutcome::Failed(if j == i {
                        Error::Busy(text.clone())
                    } else {
                        Error::Busy(format!("not pruned, because {text}"))
                    }));
                }
                return Ok(finish(outcomes));
            }
        }
    }
    let result = prune_members(&members, &locks, &options, &primary_name, &lock_of, now).await;
    for l in locks {
        l.release().await;
    }
    match result {
        Ok(done) => {
            for ((i, _), outcome) in members.iter().zip(done) {
                outcomes[*i].1 = Some(outcome);
            }
        }
        Err(e) => {
            let text = e.to_string();
            for (n, (i, _)) in members.iter().enumerate() {
                outcomes[*i].1 = Some(PruneOutcome::Failed(if n == 0 {
                    Error::Usage(text.clone())
                } else {
                    Error::Usage(format!("not pruned: {primary_name} could not be: {text}"))
                }));
            }
        }
    }
    Ok(finish(outcomes))
}

/// The locked part of a prune: catch the first member up, prune it, mirror it to the others.
async fn prune_members(
    members: &[(usize, Repository)],
    locks: &[TargetLock],
    options: &crate::ops::prune::PruneOptions,
    primary_name: &str,
    lock_of: &dyn Fn(&str) -> Option<chrono::Duration>,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Vec<PruneOutcome>> {
    let primary = &members[0].1;
    for (_, other) in members.iter().skip(1) {
        replicate::pull_with(other, primary, Some(&locks[0])).await?;
    }
    let report = crate::ops::prune::prune_locked(primary, options, Some(&locks[0])).await?;
    let mut done = Vec::new();
    for ((_, other), lock) in members.iter().zip(locks).skip(1) {
        let outcome = async {
            replicate::replicate_with(primary.target(), other.target(), Some(lock)).await?;
            let target = other.target();
            let held = lock_of(target.name());
            let mut modified = std::collections::HashMap::new();
            if held.is_some() {
                for dir in [
                    crate::store::repo::SNAPSHOTS,
                    crate::store::repo::INDEX,
                    crate::store::repo::DATA,
                ] {
                    for l in target.list(dir).await? {
                        modified.insert(l.key, l.modified);
                    }
                }
            }
            // Also what the first target no longer has: index objects only this target holds
            // (it now has every index object of the first, which lists all that its snapshots
            // need) and snapshots a prune forgot.
            let mut extra = Vec::new();
            let theirs: std::collections::HashSet<String> = primary
                .target()
                .list(crate::store::repo::INDEX)
                .await?
                .into_iter()
                .map(|l| l.key)
                .collect();
            for l in target.list(crate::store::repo::INDEX).await? {
                if !theirs.contains(&l.key) && !report.deleted.contains(&l.key) {
                    extra.push(l.key);
                }
            }
            let forgotten: std::collections::HashSet<String> = target
                .list(crate::store::repo::FORGOTTEN)
                .await?
                .into_iter()
                .filter_map(|l| l.key.rsplit('/').next().map(str::to_string))
                .collect();
            for l in target.list(crate::store::repo::SNAPSHOTS).await? {
                let id = l.key.rsplit('/').next().unwrap_or_default();
                if forgotten.contains(id) && !report.deleted.contains(&l.key) {
                    extra.insert(0, l.key);
                }
            }
            let (mut deleted, mut locked) = (0, 0);
            let snapshots_first = extra
                .iter()
                .filter(|k| k.starts_with(crate::store::repo::SNAPSHOTS))
                .chain(
                    report
                        .deleted
                        .iter()
                        .filter(|k| k.starts_with(crate::store::repo::SNAPSHOTS)),
                )
                .chain(
                    extra
                        .iter()
                        .filter(|k| !k.starts_with(crate::store::repo::SNAPSHOTS)),
                )
                .chain(
                    report
                        .deleted
                        .iter()
                        .filter(|k| !k.starts_with(crate::store::repo::SNAPSHOTS)),
                );
            for key in snapshots_first {
                lock.ensure_fresh()?;
                let under_lock = held
                    .zip(modified.get(key))
                    .is_some_and(|(d, m)| *m + d > now);
                if under_lock {
                    locked += 1;
                    continue;
                }
                target.delete(key).await?;
                deleted += 1;
            }
            Ok::<_, Error>(PruneOutcome::Mirrored {
                from: primary_name.to_string(),
                deleted,
                locked,
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
