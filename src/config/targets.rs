//! The one place that opens configured targets: a path is resolved against the configuration
//! directory, and a disk pool is opened only when a disk of the pool is attached.

use crate::config::{Config, ScheduleSpec};
use crate::error::{Error, Result};
use crate::format::crypto::Unlock;
use crate::store::repo::Repository;
use crate::store::target::Target;

/// Opens every target of a schedule. A target answers if it holds a repository; with `create`
/// (`run --init`, `sync --init`) an empty one answers too, and so does an empty disk of a pool
/// (identified by its label, so a new disk of the rotation is filled by the next run). Any other
/// empty target is missing: a NAS share that is not mounted leaves an empty directory, and a
/// run must not fill the server's own disk there.
pub async fn open_targets(
    config: &Config,
    schedule: &ScheduleSpec,
    create: bool,
) -> Vec<(String, Result<Target>)> {
    let mut targets = Vec::new();
    for name in &schedule.targets {
        let pooled = !config.targets[name].pool.is_empty();
        let opened = match open_target(config, name, create) {
            Ok(t) => match Repository::read_config(&t).await {
                Ok(_) => Ok(t),
                Err(Error::NotARepository { .. }) if create || pooled => Ok(t),
                Err(Error::NotARepository { .. }) => Err(missing(config, schedule, name)),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        targets.push((name.clone(), opened));
    }
    targets
}

/// The words every "target is missing" error holds (an empty directory or bucket, or a NAS or
/// disk directory not on a mounted filesystem), by which a report tells it from other errors.
pub const MISSING: &str = "is missing (not mounted?)";

/// The error for a target of `schedule` that holds no repository.
pub fn missing(config: &Config, schedule: &ScheduleSpec, name: &str) -> Error {
    let spec = &config.targets[name];
    let place = match spec.location() {
        crate::store::target::Location::Path(p) => format!("{} is empty", p.display()),
        _ => "the bucket and prefix hold no repository".to_string(),
    };
    Error::NotFound(format!(
        "target \"{name}\" {MISSING}: {place}, so nothing was written there; check that it is mounted, or, for a new empty disk or share, run `firesafe sync {} --init`",
        schedule.name
    ))
}

/// Opens one configured target: a path is resolved against the configuration directory, a
/// disk pool is opened (and so written) only when a disk of the pool is mounted there, and a
/// NAS or removable disk must be on a mounted filesystem unless `require_mount = false`.
pub fn open_target(config: &Config, name: &str, create: bool) -> Result<Target> {
    let spec = &config.targets[name];
    let location = spec.location();
    if let crate::store::target::Location::Path(p) = &location {
        crate::store::target::disk::attached(&spec.name, &spec.pool, p)?;
        if spec.needs_mount() && !crate::store::target::disk::on_mounted_filesystem(p) {
            return Err(Error::NotFound(format!(
                "target \"{name}\" {MISSING}: {} is on the server's own disk, not on a mounted {}; mount it, or set require_mount = false in targets/{name}.toml if the directory is meant to be there",
                p.display(),
                if spec.medium == "nas" {
                    "NAS share"
                } else {
                    "disk"
                }
            )));
        }
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
