//! The one place that opens configured targets: a path is resolved against the configuration
//! directory, and a disk pool is opened only when a disk of the pool is attached.

use crate::config::{Config, ScheduleSpec};
use crate::error::{Error, Result};
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
