//! Jobs: one run of a schedule, exactly as the scheduler would run it.
//!
//! Every target of a schedule holds one logical repository. A run opens every target, brings the
//! first reachable one (the primary) up to date from the others, backs each source up into it
//! once (read, chunked, compressed and encrypted once), then copies the new objects to every
//! other reachable target. A target that is down does not stop the others: the run ends degraded,
//! names it, and the next run brings it up to date.

use std::path::Path;

use crate::config::targets::open_targets;
use crate::config::{Config, ScheduleSpec};
use crate::error::{Error, Result};
use crate::format::crypto::{Recipient, Unlock};
use crate::ops::backup::{self, BackupOptions, BackupReport};
use crate::ops::keys;
use crate::ops::replicate::{self, ReplicateReport};
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
    /// Received the backup directly (or, in a sync, was the copy the others were brought up to
    /// date from), after receiving from other targets what they held and it lacked: (target,
    /// objects copied, bytes).
    Primary(Vec<(String, u64, u64)>),
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
        self.backups.iter().all(|(_, r)| {
            r.as_ref().is_ok_and(|b| {
                !b.snapshot.partial && b.damaged_packs.is_empty() && b.snapshot.suspect.is_none()
            })
        }) && self.targets.iter().all(|(_, t)| match t {
            TargetOutcome::Failed(_) => false,
            TargetOutcome::Replicated(r) => r.damaged.is_empty(),
            TargetOutcome::Primary(_) => true,
        })
    }
}

fn load_key(path: &Path, init: bool, created: &mut Vec<String>) -> Result<Unlock> {
    if path.exists() {
        crate::ops::keys::check_private(path)?;
    }
    match std::fs::read_to_string(path) {
        Ok(text) => Unlock::parse_identity_file(&text)
            .map_err(|why| Error::WrongKey(format!("key_file {}: {why}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && init => {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::local(dir, "cannot create the key directory", e))?;
            }
            let (text, public) = keys::create_identity_file(path)?;
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
    let unlock = load_key(&schedule.key_file, options.init, &mut created)?;

    // Open every target; note which hold the repository and which are down.
    let mut targets = open_targets(config, schedule, options.init).await;

    // The primary: the first reachable target that holds a repository the schedule's key
    // opens, or, on a first run, the first reachable target. A repository the key does not
    // open is another one (another school's disk, a share mounted in the wrong place): it is
    // left out, named, and never written.
    let mut primary = None;
    for (i, (name, t)) in targets.iter_mut().enumerate() {
        let Ok(target) = t else { continue };
        if Repository::read_config(target).await.is_err() {
            continue;
        }
        match Repository::open(target.clone(), &unlock).await {
            Ok(_) => {
                primary = Some(i);
                break;
            }
            Err(Error::WrongKey(_)) => {
                *t = Err(Error::NotFound(format!(
                    "target \"{name}\" holds a repository the schedule's key does not open (another repository?); nothing was written there: check that the right share or disk is mounted"
                )));
            }
            Err(e) => *t = Err(e),
        }
    }
    if primary.is_none()
        && options.init
        && let Some(i) = targets.iter().position(|(_, t)| t.is_ok())
    {
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
    refuse_strangers(&repo, p, &mut targets).await;
    let received = catch_up(&repo, p, &mut targets, &unlock).await;

    let mut backups = Vec::new();
    for source in &schedule.sources {
        let mut opts = BackupOptions::new(&source.name, vec![source.path.clone()]);
        opts.tags = source.tags.clone();
        opts.tags.push(format!("schedule:{}", schedule.name));
        opts.compression = schedule.compression;
        opts.progress = options.progress;
        opts.cancel = options.cancel.clone();
        opts.ransomware = schedule.ransomware.detection();
        let result = backup::backup(&repo, &opts).await;
        // A primary that goes down mid-run, or a signal, stops the run.
        if let Err(e @ (Error::Target { .. } | Error::Interrupted(_))) = result {
            return Err(e);
        }
        backups.push((source.name.clone(), result));
    }

    let outcomes = push(&primary_target, p, targets, received).await;
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
    init: bool,
) -> Result<Vec<(String, TargetOutcome)>> {
    let targets = open_targets(config, schedule, init).await;
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
    refuse_strangers(&repo, p, &mut targets).await;
    let received = catch_up(&repo, p, &mut targets, &unlock).await;
    let outcomes = push(&primary, p, targets, received).await;
    Ok(outcomes)
}

/// Leaves out of the run every target that holds another repository than the primary's (a
/// disk or share of something else mounted where the copy should be): nothing is read from or
/// written to it, and the run names it.
async fn refuse_strangers(
    primary: &Repository,
    p: usize,
    targets: &mut [(String, Result<Target>)],
) {
    let id = primary.config().id;
    for (i, (name, t)) in targets.iter_mut().enumerate() {
        let Ok(target) = t else { continue };
        if i == p {
            continue;
        }
        if let Ok(other) = Repository::read_config(target).await
            && other.id != id
        {
            *t = Err(Error::NotFound(format!(
                "target \"{name}\" holds another repository (id {}) than the schedule's ({id}); nothing was written there: check that the right share or disk is mounted",
                other.id
            )));
        }
    }
}

/// Brings the primary (at position `p`) the snapshots the other targets hold and it lacks, with
/// the data they need (see [`replicate::pull`]). A target that fails is marked failed.
async fn catch_up(
    primary: &Repository,
    p: usize,
    targets: &mut [(String, Result<Target>)],
    unlock: &Unlock,
) -> Vec<(String, u64, u64)> {
    let mut received = Vec::new();
    for (i, (name, t)) in targets.iter_mut().enumerate() {
        let Ok(target) = t else { continue };
        if i == p || Repository::read_config(target).await.is_err() {
            continue;
        }
        let result = match Repository::open(target.clone(), unlock).await {
            Ok(other) => replicate::pull(&other, primary).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(r) if r.copied > 0 => received.push((name.clone(), r.copied, r.bytes)),
            Ok(_) => {}
            Err(e) => *t = Err(e),
        }
    }
    received
}

/// Copies what the primary (at position `p`) holds to every other target.
async fn push(
    primary: &Target,
    p: usize,
    targets: Vec<(String, Result<Target>)>,
    received: Vec<(String, u64, u64)>,
) -> Vec<(String, TargetOutcome)> {
    let mut outcomes = Vec::new();
    for (i, (name, t)) in targets.into_iter().enumerate() {
        let outcome = if i == p {
            TargetOutcome::Primary(received.clone())
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
