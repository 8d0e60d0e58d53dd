//! Jobs: one run of a schedule, exactly as the scheduler would run it.
//!
//! Every target of a schedule holds one logical repository. A run opens every target, brings the
//! first reachable one (the primary) up to date from the others, backs each source up into it
//! once (read, chunked, compressed and encrypted once), then copies the new objects to every
//! other reachable target. A target that is down does not stop the others: the run ends degraded,
//! names it, and the next run brings it up to date.

use std::path::Path;

use crate::backup::{self, BackupOptions, BackupReport};
use crate::config::{Config, ScheduleSpec};
use crate::crypto::{self, Recipient, Unlock};
use crate::error::{Error, Result};
use crate::replicate::{self, ReplicateReport};
use crate::repo::{InitOptions, Repository};
use crate::target::Target;

/// Said of a store that overwrote a probe object despite `If-None-Match: *`.
pub const IGNORES_CONDITIONAL: &str = ": this store ignores conditional writes (If-None-Match), so firesafe read the new repository's config back after it settled to be sure no other init raced it; every other object is named by its content, so an overwrite cannot change it";

/// How a run should behave.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// Create the key file and repositories that do not exist yet (first run).
    pub init: bool,
    pub progress: bool,
    /// Set to stop gracefully (see [`BackupOptions::cancel`]).
    pub cancel: Option<std::sync::Arc<std::sync::atomic::AtomicBool>>,
}

/// What happened to one target.
#[derive(Debug)]
pub enum TargetOutcome {
    /// Received the backup directly.
    Primary,
    Replicated(ReplicateReport),
    Failed(Error),
}

/// The outcome of one run.
#[derive(Debug)]
pub struct RunReport {
    pub schedule: String,
    pub backups: Vec<(String, Result<BackupReport>)>,
    pub targets: Vec<(String, TargetOutcome)>,
    /// Messages about set-up done by `--init`.
    pub created: Vec<String>,
}

impl RunReport {
    /// Whether everything went to every target and every snapshot is complete.
    pub fn is_clean(&self) -> bool {
        self.backups
            .iter()
            .all(|(_, r)| r.as_ref().is_ok_and(|b| !b.snapshot.partial))
            && self.targets.iter().all(|(_, t)| match t {
                TargetOutcome::Failed(_) => false,
                TargetOutcome::Replicated(r) => r.damaged.is_empty(),
                TargetOutcome::Primary => true,
            })
    }
}

fn load_key(path: &Path, init: bool, created: &mut Vec<String>) -> Result<Unlock> {
    match std::fs::read_to_string(path) {
        Ok(text) => Unlock::parse_identity_file(&text)
            .map_err(|why| Error::WrongKey(format!("key_file {}: {why}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && init => {
            use std::io::Write;
            use std::os::unix::fs::OpenOptionsExt;
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::local(dir, "cannot create the key directory", e))?;
            }
            let (text, public) = crypto::generate_identity_file();
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .open(path)
                .map_err(|e| Error::local(path, "cannot create the key file", e))?;
            f.write_all(text.as_bytes())
                .map_err(|e| Error::local(path, "cannot write the key file", e))?;
            created.push(format!(
                "created key file {} (public key {public}); keep a copy somewhere safe: without it the backups cannot be read",
                path.display()
            ));
            Unlock::parse_identity_file(&text).map_err(Error::WrongKey)
        }
        Err(e) => Err(Error::WrongKey(format!(
            "key_file {}: cannot read it ({e}); check the schedule's key_file, or run with --init on the first run",
            path.display()
        ))),
    }
}

/// Runs one schedule now.
pub async fn run(
    config: &Config,
    schedule: &ScheduleSpec,
    options: &RunOptions,
) -> Result<RunReport> {
    let mut created = Vec::new();
    let unlock = load_key(
        &config.resolve(&schedule.key_file),
        options.init,
        &mut created,
    )?;

    // Open every target; note which hold the repository and which are down.
    let targets = open_targets(config, schedule, options.init).await;

    // The primary: the first reachable target that holds the repository, or, on a first run,
    // the first reachable target.
    let mut primary = None;
    for (i, (_, t)) in targets.iter().enumerate() {
        if let Ok(t) = t
            && Repository::read_config(t).await.is_ok()
        {
            primary = Some(i);
            break;
        }
    }
    if primary.is_none() && options.init {
        if let Some(i) = targets.iter().position(|(_, t)| t.is_ok()) {
            let t = targets[i].1.as_ref().expect("reachable").clone();
            let recipients: Vec<(Recipient, String)> = unlock
                .recipients()
                .into_iter()
                .map(|r| (r, format!("schedule {}", schedule.name)))
                .collect();
            let repo = Repository::init(t, &recipients, &InitOptions::default()).await?;
            created.push(format!(
                "created the repository on target \"{}\"",
                targets[i].0
            ));
            if repo.conditional_writes() == Some(false) {
                created.push(format!("{}{}", targets[i].0, IGNORES_CONDITIONAL));
            }
            primary = Some(i);
        }
    }
    let Some(p) = primary else {
        let reasons: Vec<String> = targets
            .iter()
            .map(|(n, t)| match t {
                Ok(_) => format!("target \"{n}\" holds no repository"),
                Err(e) => e.to_string(),
            })
            .collect();
        return Err(Error::NotFound(format!(
            "no target of schedule \"{}\" holds its repository ({}); run `firesafe run {} --init` on the first run",
            schedule.name,
            reasons.join("; "),
            schedule.name
        )));
    };
    let primary_target = targets[p].1.as_ref().expect("primary is reachable").clone();

    // Bring the primary up to date from the others (a run when it was down went elsewhere).
    // A target that fails here is left out of the run, not allowed to stop it.
    let mut targets = targets;
    for (i, (_, t)) in targets.iter_mut().enumerate() {
        if i != p
            && let Ok(target) = t
            && Repository::read_config(target).await.is_ok()
            && let Err(e) = replicate::replicate(target, &primary_target).await
        {
            *t = Err(e);
        }
    }

    let repo = Repository::open(primary_target.clone(), &unlock).await?;
    let mut backups = Vec::new();
    for source in &schedule.sources {
        let mut opts = BackupOptions::new(&source.name, vec![config.resolve(&source.path)]);
        opts.tags = source.tags.clone();
        opts.tags.push(format!("schedule:{}", schedule.name));
        opts.compression = schedule.compression;
        opts.progress = options.progress;
        opts.cancel = options.cancel.clone();
        let result = backup::backup(&repo, &opts).await;
        // A primary that goes down mid-run, or a signal, stops the run.
        if let Err(e @ (Error::Target { .. } | Error::Interrupted(_))) = result {
            return Err(e);
        }
        backups.push((source.name.clone(), result));
    }

    let outcomes = push(&primary_target, p, targets).await;
    Ok(RunReport {
        schedule: schedule.name.clone(),
        backups,
        targets: outcomes,
        created,
    })
}

/// Brings every reachable target of a schedule up to date with the others, without backing up:
/// each target ends with every object any of them holds.
pub async fn sync(
    config: &Config,
    schedule: &ScheduleSpec,
) -> Result<Vec<(String, TargetOutcome)>> {
    let targets = open_targets(config, schedule, false).await;
    let mut holders = Vec::new();
    for (i, (_, t)) in targets.iter().enumerate() {
        if let Ok(t) = t
            && Repository::read_config(t).await.is_ok()
        {
            holders.push(i);
        }
    }
    let Some(&p) = holders.first() else {
        return Err(Error::NotFound(format!(
            "no reachable target of schedule \"{}\" holds its repository; nothing to copy from",
            schedule.name
        )));
    };
    let primary = targets[p].1.as_ref().expect("reachable").clone();
    let mut targets = targets;
    for &i in holders.iter().skip(1) {
        let result = match &targets[i].1 {
            Ok(t) => replicate::replicate(t, &primary).await,
            Err(_) => continue,
        };
        if let Err(e) = result {
            targets[i].1 = Err(e);
        }
    }
    let outcomes = push(&primary, p, targets).await;
    Ok(outcomes)
}

/// Runs a schedule under its lock and records the run in the state directory's history.
/// `scheduled_for` is the timetable time a daemon run is for (`None` for a run by hand).
pub async fn run_recorded(
    config: &Config,
    schedule: &ScheduleSpec,
    state: &crate::state::StateDir,
    scheduled_for: Option<chrono::DateTime<chrono::Utc>>,
    options: &RunOptions,
) -> Result<RunReport> {
    let Some(_lock) = state.try_lock(&schedule.name)? else {
        return Err(Error::Usage(format!(
            "schedule \"{}\" is already running (its lock in {} is held); two runs of one schedule never overlap",
            schedule.name,
            state.path().display()
        )));
    };
    let started = chrono::Utc::now();
    let result = run(config, schedule, options).await;
    let (outcome, message) = match &result {
        Ok(r) if r.is_clean() => (
            "complete",
            "every source backed up to every target".to_string(),
        ),
        Ok(r) => (
            "degraded",
            r.targets
                .iter()
                .filter_map(|(n, t)| match t {
                    TargetOutcome::Failed(e) => Some(format!("{n}: {e}")),
                    _ => None,
                })
                .chain(r.backups.iter().filter_map(|(s, b)| match b {
                    Err(e) => Some(format!("{s}: {e}")),
                    Ok(b) if b.snapshot.partial => Some(format!(
                        "{s}: partial snapshot, {} warning(s)",
                        b.snapshot.warnings.len()
                    )),
                    Ok(_) => None,
                }))
                .collect::<Vec<_>>()
                .join("; "),
        ),
        Err(Error::Interrupted(m)) => ("interrupted", m.clone()),
        Err(e) => ("failed", e.to_string()),
    };
    let record = crate::state::RunRecord {
        schedule: schedule.name.clone(),
        scheduled_for,
        started,
        finished: chrono::Utc::now(),
        outcome: outcome.into(),
        message,
    };
    state.record(&record)?;

    // Monitoring: metrics from the run and from what the targets now hold, then the ping.
    let status =
        crate::status::status_with_records(config, schedule, Some(state), chrono::Utc::now())
            .await
            .ok();
    if let (Ok(report), Some(status)) = (&result, &status)
        && let Err(e) = crate::media::record_run(state, report, status, record.finished)
    {
        warn(&schedule.name, &e.to_string());
    }
    let metrics = crate::alert::metrics(&record, result.as_ref().ok(), status.as_ref());
    let path = match &schedule.alerts.metrics_file {
        Some(p) => config.resolve(p),
        None => state
            .path()
            .join("metrics")
            .join(format!("{}.prom", schedule.name)),
    };
    crate::alert::write_metrics(&path, &metrics)?;
    if let Some(url) = &schedule.alerts.ping_url {
        let verdicts_ok = status.as_ref().is_some_and(|s| {
            s.sources
                .iter()
                .all(|src| src.evaluation.verdict == crate::policy::Verdict::Ok)
        });
        if let Err(why) = crate::alert::ping(url, outcome == "complete" && verdicts_ok).await {
            warn(&schedule.name, &why);
        }
    }
    let attention = outcome != "complete"
        || status.as_ref().is_none_or(|s| {
            s.sources
                .iter()
                .any(|src| src.evaluation.verdict != crate::policy::Verdict::Ok)
        });
    if attention && !schedule.alerts.email_to.is_empty() {
        let ca = match &schedule.alerts.smtp_ca_file {
            Some(p) => Some(
                std::fs::read(config.resolve(p))
                    .map_err(|e| Error::local(p, "cannot read smtp_ca_file", e))?,
            ),
            None => None,
        };
        let (subject, body) =
            crate::alert::email_text(&record, status.as_ref(), &crate::repo::hostname());
        if let Err(why) =
            crate::alert::send_email(&schedule.alerts, ca.as_deref(), &subject, &body).await
        {
            warn(&schedule.name, &why);
        }
    }
    result
}

/// Opens every target of a schedule; a target answers if it holds the repository or is empty.
async fn open_targets(
    config: &Config,
    schedule: &ScheduleSpec,
    create: bool,
) -> Vec<(String, Result<Target>)> {
    let mut targets = Vec::new();
    for name in &schedule.targets {
        let spec = &config.targets[name];
        let location = match spec.location() {
            crate::target::Location::Path(p) => crate::target::Location::Path(config.resolve(&p)),
            other => other,
        };
        // A disk pool: only a disk of the pool is ever opened (and written).
        if let crate::target::Location::Path(p) = &location
            && let Err(e) = crate::media::attached(spec, p)
        {
            targets.push((name.clone(), Err(e)));
            continue;
        }
        let opened = match Target::open(name, &location, &spec.options(), create) {
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

/// Copies what the primary (at position `p`) holds to every other target.
async fn push(
    primary: &Target,
    p: usize,
    targets: Vec<(String, Result<Target>)>,
) -> Vec<(String, TargetOutcome)> {
    let mut outcomes = Vec::new();
    for (i, (name, t)) in targets.into_iter().enumerate() {
        let outcome = if i == p {
            TargetOutcome::Primary
        } else {
            match t {
                Ok(t) => match replicate::replicate(primary, &t).await {
                    Ok(r) => TargetOutcome::Replicated(r),
                    Err(e) => TargetOutcome::Failed(e),
                },
                Err(e) => TargetOutcome::Failed(e),
            }
        };
        outcomes.push((name, outcome));
    }
    outcomes
}

/// A warning from monitoring: to the log when the daemon has one, else to standard error.
fn warn(schedule: &str, why: &str) {
    if tracing::dispatcher::has_been_set() {
        tracing::warn!(schedule = %schedule, "{why}");
    } else {
        eprintln!("firesafe: warning: {why}");
    }
}

/// Opens every target of a schedule, as a run would (without creating anything).
pub async fn open_schedule_targets(
    config: &Config,
    schedule: &ScheduleSpec,
) -> Vec<(String, Result<Target>)> {
    open_targets(config, schedule, false).await
}

/// What `prune` did on one target of a schedule.
#[derive(Debug)]
pub enum PruneOutcome {
    Pruned(crate::prune::PruneReport),
    /// Left alone, and why (append-only, holds no repository).
    Skipped(String),
    Failed(Error),
}

/// Applies a schedule's retention on every reachable target it names. Targets marked
/// `append_only` are skipped unless `include_append_only`.
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
    let timezone: chrono_tz::Tz = schedule.timezone.parse().map_err(|_| {
        Error::Usage(format!(
            "schedule \"{}\": timezone \"{}\" is not an IANA time zone",
            schedule.name, schedule.timezone
        ))
    })?;
    let now = chrono::Utc::now();
    let mut outcomes = Vec::new();
    for (name, target) in open_targets(config, schedule, false).await {
        let spec = &config.targets[&name];
        if spec.append_only && !include_append_only {
            outcomes.push((
                name,
                PruneOutcome::Skipped(
                    "append-only: routine runs never delete here (use --include-append-only with credentials that may delete)".into(),
                ),
            ));
            continue;
        }
        let options = crate::prune::PruneOptions {
            retention: crate::prune::Retention {
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
            object_lock: spec
                .object_lock_days
                .map(|d| chrono::Duration::days(i64::from(d))),
            dry_run,
            now,
        };
        let outcome = match target {
            Err(e) => PruneOutcome::Failed(e),
            Ok(t) => match Repository::read_config(&t).await {
                Err(Error::NotARepository { .. }) => {
                    PruneOutcome::Skipped("holds no repository yet".into())
                }
                Err(e) => PruneOutcome::Failed(e),
                Ok(_) => match Repository::open(t, &unlock).await {
                    Ok(repo) => match crate::prune::prune(&repo, &options).await {
                        Ok(r) => PruneOutcome::Pruned(r),
                        Err(e) => PruneOutcome::Failed(e),
                    },
                    Err(e) => PruneOutcome::Failed(e),
                },
            },
        };
        outcomes.push((name, outcome));
    }
    Ok(outcomes)
}
