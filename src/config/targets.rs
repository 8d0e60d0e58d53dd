//! The one place that opens configured targets: a path is resolved against the configuration
//! directory, and a disk pool is opened only when a disk of the pool is attached.

use crate::config::{Config, ScheduleSpec};
use crate::error::{Error, Result};
use crate::format::crypto::Unlock;
use crate::store::repo::Repository;
use crate::store::target::Target;

/// Opens every target of a schedule; a target answers if it holds the repository or is empty.
pub async fn open_targets(
    config: &Config,
    schedule: &ScheduleSpec,
    create: bool,
) -> Vec<(String, Result<Target>)> {
    let mut targets = Vec::new();
    for name in &schedule.targets {
        let opened = match open_target(config, name, create) {
            Ok(t) => match Repository::read_config(&t).await {
                Ok(_) | Err(Error::NotARepository { .. }) => Ok(t),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        targets.push((name.clone(), opened));
    }
    targets
}

/// Opens one configured target: a path is resolved against the configuration directory, and a
/// disk pool is opened (and so written) only when a disk of the pool is mounted there.
pub fn open_target(config: &Config, name: &str, create: bool) -> Result<Target> {
    let spec = &config.targets[name];
    let location = spec.location();
    if let crate::store::target::Location::Path(p) = &location {
        crate::store::target::disk::attached(&spec.name, &spec.pool, p)?;
    }
    Target::open(name, &location, &spec.options(), create)
}

/// Opens every target of a schedule, as a run would (without creating anything).
pub async fn open_schedule_targets(
    config: &Config,
    schedule: &ScheduleSpec,
) -> Vec<(String, Result<Target>)> {
    open_targets(config, schedule, false).await
}

/// The copies of a schedule's repository that open with `unlock`, in the schedule's order (the
/// onsite NAS first), and a note for each target not used and why: unreachable, not opened by
/// the key, or holding another repository than the first. An error when none opens.
pub async fn open_schedule_repos(
    config: &Config,
    schedule: &ScheduleSpec,
    unlock: &Unlock,
) -> Result<(Vec<Repository>, Vec<String>)> {
    let mut repos = Vec::new();
    let mut notes = Vec::new();
    for (target, opened) in open_schedule_targets(config, schedule).await {
        let result = match opened {
            Ok(t) => Repository::open(t, unlock).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(r)
                if repos
                    .first()
                    .is_none_or(|f: &Repository| f.config().id == r.config().id) =>
            {
                repos.push(r)
            }
            Ok(_) => notes.push(format!(
                "target \"{target}\" holds a different repository; not used"
            )),
            Err(e) => notes.push(format!("target \"{target}\" not used: {e}")),
        }
    }
    if repos.is_empty() {
        return Err(Error::NotFound(format!(
            "no target of schedule \"{}\" could be opened ({})",
            schedule.name,
            notes.join("; ")
        )));
    }
    Ok((repos, notes))
}
