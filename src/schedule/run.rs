//! Jobs: one run of a schedule, exactly as the scheduler would run it.
//!
//! Every target of a schedule holds one logical repository. A run opens every target, brings the
//! first reachable one (the primary) up to date from the others, backs each source up into it
//! once (read, chunked, compressed and encrypted once), then copies the new objects to every
//! other reachable target. A target that is down does not stop the others: the run ends degraded,
//! names it, and the next run brings it up to date.

use std::path::Path;

use crate::config::{Config, ScheduleSpec};
use crate::error::{Error, Result};
use crate::format::crypto::{self, Recipient, Unlock};
use crate::ops::backup::{self, BackupOptions, BackupReport};
use crate::ops::replicate::{self, ReplicateReport};
use crate::store::lock::TargetLock;
use crate::store::repo::{InitOptions, Repository};
use crate::store::target::Target;

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
    let repo = Repository::open(primary_target.clone(), &unlock).await?;
    let mut targets = targets;
    catch_up(&repo, p, &mut targets, &unlock).await;

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
    let unlock = config.schedule_key(schedule)?;
    let repo = Repository::open(primary.clone(), &unlock).await?;
    let mut targets = targets;
    catch_up(&repo, p, &mut targets, &unlock).await;
    let outcomes = push(&primary, p, targets).await;
    Ok(outcomes)
}

/// Brings the primary (at position `p`) the snapshots the other targets hold and it lacks, with
/// the data they need (see [`replicate::pull`]). A target that fails is marked failed.
async fn catch_up(
    primary: &Repository,
    p: usize,
    targets: &mut [(String, Result<Target>)],
    unlock: &Unlock,
) {
    for (i, (_, t)) in targets.iter_mut().enumerate() {
        let Ok(target) = t else { continue };
        if i == p || Repository::read_config(target).await.is_err() {
            continue;
        }
        let result = match Repository::open(target.clone(), unlock).await {
            Ok(other) => replicate::pull(&other, primary).await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            *t = Err(e);
        }
    }
}

/// Runs a schedule under its lock and records the run in the state directory's history.
/// `scheduled_for` is the timetable time a daemon run is for (`None` for a run by hand).
pub async fn run_recorded(
    config: &Config,
    schedule: &ScheduleSpec,
    state: &crate::store::state::StateDir,
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
    // What a first run set up (and what it found out about each store) stays in the history.
    let message = match &result {
        Ok(r) if !r.created.is_empty() => format!("{}; {message}", r.created.join("; ")),
        _ => message,
    };
    let record = crate::store::state::RunRecord {
        schedule: schedule.name.clone(),
        scheduled_for,
        started,
        finished: chrono::Utc::now(),
        outcome: outcome.into(),
        message,
    };
    state.record(&record)?;

    // Monitoring: metrics from the run and from what the targets now hold, then the ping.
    let status = crate::schedule::status::status_with_records(
        config,
        schedule,
        Some(state),
        chrono::Utc::now(),
    )
    .await
    .ok();
    if let (Ok(report), Some(status)) = (&result, &status)
        && let Err(e) = crate::schedule::media::record_run(state, report, status, record.finished)
    {
        warn(&schedule.name, &e.to_string());
    }
    let metrics = crate::schedule::alert::metrics(&record, result.as_ref().ok(), status.as_ref());
    let path = match &schedule.alerts.metrics_file {
        Some(p) => config.resolve(p),
        None => state
            .path()
            .join("metrics")
            .join(format!("{}.prom", schedule.name)),
    };
    crate::schedule::alert::write_metrics(&path, &metrics)?;
    if let Some(url) = &schedule.alerts.ping_url {
        let verdicts_ok = status.as_ref().is_some_and(|s| {
            s.sources
                .iter()
                .all(|src| src.evaluation.verdict == crate::plan::policy::Verdict::Ok)
        });
        if let Err(why) =
            crate::schedule::alert::ping(url, outcome == "complete" && verdicts_ok).await
        {
            warn(&schedule.name, &why);
        }
    }
    let attention = outcome != "complete"
        || status.as_ref().is_none_or(|s| {
            s.sources
                .iter()
                .any(|src| src.evaluation.verdict != crate::plan::policy::Verdict::Ok)
        });
    if attention && !schedule.alerts.email_to.is_empty() {
        let ca = match &schedule.alerts.smtp_ca_file {
            Some(p) => Some(
                std::fs::read(config.resolve(p))
                    .map_err(|e| Error::local(p, "cannot read smtp_ca_file", e))?,
            ),
            None => None,
        };
        let (subject, body) = crate::schedule::alert::email_text(
            &record,
            status.as_ref(),
            &crate::store::repo::hostname(),
        );
        if let Err(why) =
            crate::schedule::alert::send_email(&schedule.alerts, ca.as_deref(), &subject, &body)
                .await
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
    let location = match spec.location() {
        crate::store::target::Location::Path(p) => {
            crate::store::target::Location::Path(config.resolve(&p))
        }
        other => other,
    };
    if let crate::store::target::Location::Path(p) = &location {
        crate::schedule::media::attached(spec, p)?;
    }
    Target::open(name, &location, &spec.options(), create)
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
    let timezone: chrono_tz::Tz = schedule.timezone.parse().map_err(|_| {
        Error::Usage(format!(
            "schedule \"{}\": timezone \"{}\" is not an IANA time zone",
            schedule.name, schedule.timezone
        ))
    })?;
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
        retention: crate::ops::prune::Retention {
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
