//! A schedule's restore drill job: which targets and key to drill with, a scratch directory
//! judged against every share, then [`crate::ops::drill`] for each source.

use std::path::{Path, PathBuf};

use crate::config::{Config, ScheduleSpec, Site};
use crate::error::{Error, Result};
use crate::format::crypto::Unlock;
use crate::ops::drill::{DrillOptions, DrillSchedule, drill_one, failed};
use crate::store::index::Index;
use crate::store::records::{DrillKind, DrillRecord};
use crate::store::repo::{DRILLS, Repository};
use crate::store::snapshot::Catalog;
use crate::store::state::StateDir;

/// Drills every source of `schedule` on each chosen target.
pub async fn drill_schedule(
    config: &Config,
    schedule: &ScheduleSpec,
    state: &StateDir,
    options: &DrillOptions,
) -> Result<Vec<DrillRecord>> {
    let (unlock, key_label) = drill_key(config, schedule, options)?;
    let drilled = DrillSchedule {
        name: schedule.name.clone(),
        rto_hours: schedule.policy.rto_hours,
    };
    let scratch_base = scratch_base(config, schedule, options)?;
    let mut records = Vec::new();
    let mut chosen = 0;
    for (name, target) in crate::config::targets::open_schedule_targets(config, schedule).await {
        let spec = &config.targets[&name];
        if options.target.as_ref().is_some_and(|t| *t != name) {
            continue;
        }
        if options.kind == DrillKind::SiteLoss && spec.location != Site::Offsite {
            continue;
        }
        chosen += 1;
        let run = TargetDrill {
            state,
            drilled: &drilled,
            options,
            key_label: &key_label,
            scratch_base: &scratch_base,
        };
        records.extend(run.drill(schedule, &name, target, &unlock).await?);
    }
    if chosen == 0 {
        return Err(Error::Usage(match (&options.target, options.kind) {
            (Some(t), _) => format!(
                "schedule \"{}\" has no target \"{t}\"{}",
                schedule.name,
                if options.kind == DrillKind::SiteLoss {
                    " with location = \"offsite\""
                } else {
                    ""
                }
            ),
            (None, DrillKind::SiteLoss) => format!(
                "schedule \"{}\" has no offsite target to drill a site loss from",
                schedule.name
            ),
            (None, _) => format!("schedule \"{}\" has no targets", schedule.name),
        }));
    }
    for why in crate::schedule::beacon::write_now(config, schedule, state).await {
        crate::schedule::backup_job::warn(&schedule.name, &why);
    }
    Ok(records)
}

/// One target's part of a drill: every source's newest complete snapshot drilled from it.
struct TargetDrill<'a> {
    state: &'a StateDir,
    drilled: &'a DrillSchedule,
    options: &'a DrillOptions,
    key_label: &'a str,
    scratch_base: &'a Path,
}

impl TargetDrill<'_> {
    async fn drill(
        &self,
        schedule: &ScheduleSpec,
        name: &str,
        target: Result<crate::store::target::Target>,
        unlock: &Unlock,
    ) -> Result<Vec<DrillRecord>> {
        let mut records = Vec::new();
        let opened = match target {
            Ok(t) => Repository::open(t, unlock).await,
            Err(e) => Err(e),
        };
        let repo = match opened {
            Ok(r) => r,
            Err(e) => {
                for source in &schedule.sources {
                    let r = failed(
                        self.drilled,
                        self.options,
                        &source.name,
                        name,
                        self.key_label,
                        e.to_string(),
                    );
                    self.state.append_drill(&r)?;
                    records.push(r);
                }
                return Ok(records);
            }
        };
        let catalog = Catalog::load(&repo).await?;
        let index = Index::load(&repo).await?.index;
        for source in &schedule.sources {
            let record = match catalog
                .latest_complete(&source.name)
                .filter(|l| !l.snapshot.partial)
            {
                None => failed(
                    self.drilled,
                    self.options,
                    &source.name,
                    name,
                    self.key_label,
                    format!(
                        "target {name} holds no complete snapshot of {}",
                        source.name
                    ),
                ),
                Some(snap) => {
                    let scratch = tempfile::Builder::new()
                        .prefix("firesafe-drill-")
                        .tempdir_in(self.scratch_base)
                        .map_err(|e| {
                            Error::local(self.scratch_base, "cannot create a drill directory", e)
                        })?;
                    let r = drill_one(
                        &repo,
                        &index,
                        self.drilled,
                        self.options,
                        snap,
                        scratch.path(),
                        self.key_label,
                    )
                    .await;
                    drop(scratch);
                    r?
                }
            };
            self.state.append_drill(&record)?;
            // The record also goes into the repository, so that the history survives the
            // server; a target that refuses it does not undo the drill.
            if let Err(e) = repo.save_sealed(DRILLS, &record).await {
                tracing::warn!(target = name, error = %e, "could not store the drill record in the repository");
            }
            records.push(record);
        }
        Ok(records)
    }
}

/// The key a drill opens the repository with: the recovery key for site-loss drills (which
/// must not be the nightly key), the schedule's key otherwise.
fn drill_key(
    config: &Config,
    schedule: &ScheduleSpec,
    options: &DrillOptions,
) -> Result<(Unlock, String)> {
    let nightly = schedule.key_file.clone();
    let (path, label) = if options.kind == DrillKind::SiteLoss {
        let path = options
            .recovery_key
            .clone()
            .or_else(|| schedule.drill.as_ref().and_then(|d| d.recovery_key_file.clone()))
            .map(|p| config.resolve(&p))
            .ok_or_else(|| {
                Error::Usage(
                    "a site-loss drill needs the recovery key: pass --key FILE (or set recovery_key_file in [drill])".into(),
                )
            })?;
        let same_file = std::fs::canonicalize(&path).ok() == std::fs::canonicalize(&nightly).ok();
        let same_text = std::fs::read(&path).ok() == std::fs::read(&nightly).ok();
        if same_file || same_text {
            return Err(Error::Usage(format!(
                "{} is the schedule's own key; a site-loss drill proves the recovery key kept apart from the server, so give that one",
                path.display()
            )));
        }
        let label = format!("recovery key ({})", path.display());
        (path, label)
    } else {
        (nightly, "schedule key".to_string())
    };
    let unlock = crate::ops::keys::read_identity_file(&path)?;
    Ok((unlock, label))
}

/// Where drills restore to; never inside a share.
fn scratch_base(
    config: &Config,
    schedule: &ScheduleSpec,
    options: &DrillOptions,
) -> Result<PathBuf> {
    let base = options
        .scratch
        .clone()
        .or_else(|| schedule.drill.as_ref().and_then(|d| d.scratch_dir.clone()))
        .map(|p| config.resolve(&p))
        .unwrap_or_else(std::env::temp_dir);
    // Judged before anything is created: the nearest existing ancestor, resolved, plus the rest.
    let absolute = std::path::absolute(&base)
        .map_err(|e| Error::local(&base, "cannot use the drill scratch directory", e))?;
    let mut existing = absolute.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        rest.push(existing.file_name().unwrap_or_default().to_os_string());
        existing = existing.parent().unwrap_or(Path::new("/"));
    }
    let mut real = std::fs::canonicalize(existing)
        .map_err(|e| Error::local(existing, "cannot use the drill scratch directory", e))?;
    real.extend(rest.iter().rev());
    for s in config.schedules.values() {
        for source in &s.sources {
            if let Ok(share) = std::fs::canonicalize(&source.path)
                && real.starts_with(&share)
            {
                return Err(Error::Usage(format!(
                    "the drill scratch directory {} is inside the share {} ({}); drills never write to a live share, choose another directory",
                    base.display(),
                    source.name,
                    share.display()
                )));
            }
        }
    }
    std::fs::create_dir_all(&base)
        .map_err(|e| Error::local(&base, "cannot create the drill scratch directory", e))?;
    Ok(base)
}
