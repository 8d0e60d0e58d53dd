//! `restore` and `audit`: parsing and printing for the technician's restores.

use std::path::PathBuf;

use chrono::{Local, Utc};
use clap::Args;
use firesafe::config::Config;
use firesafe::ops::progress;
use firesafe::ops::restore::{self, RestoreOptions, Step};
use firesafe::store::audit::{self, AuditRecord};
use firesafe::store::blobs::Copies;
use firesafe::store::index::Index;
use firesafe::store::repo::Repository;
use firesafe::store::snapshot::{Catalog, Listed};
use firesafe::store::state::StateDir;
use firesafe::{Error, Result};

use super::{Outcome, open, pick, unlock_from_env};

#[derive(Args, Debug)]
pub(super) struct RestoreArgs {
    /// SNAPSHOT or SNAPSHOT:PATH.
    #[arg(value_name = "SNAPSHOT[:PATH]")]
    what: String,
    /// Directory to restore into (new or empty unless --overwrite or --resume).
    #[arg(
        long,
        value_name = "DIR",
        required_unless_present = "in_place",
        conflicts_with = "in_place"
    )]
    to: Option<PathBuf>,
    /// Put the file or folder back where it was on the live share (the absolute path the
    /// snapshot read it from). Files that differ are left alone unless --overwrite.
    #[arg(long)]
    in_place: bool,
    /// With `latest`: the newest snapshot of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// With `latest`: the newest snapshot taken at or before DATE (local time; a date alone means
    /// the end of that day).
    #[arg(long, value_name = "DATE")]
    as_of: Option<String>,
    /// Replace existing files that differ from the snapshot; each old file is kept beside it as
    /// NAME.firesafe-YYYYMMDD-HHMMSS unless --no-keep.
    #[arg(long)]
    overwrite: bool,
    /// With --overwrite: discard replaced files instead of keeping them aside.
    #[arg(long, requires = "overwrite")]
    no_keep: bool,
    /// List what would be written, kept aside and skipped; write nothing.
    #[arg(long)]
    dry_run: bool,
    /// Finish an interrupted restore into the same directory: complete files already there are
    /// kept, leftover temporary files removed. Not needed when the directory holds the marker an
    /// interrupted restore leaves (running the same command again resumes it).
    #[arg(long)]
    resume: bool,
    /// Read from a schedule's targets instead of --repo: the first (normally the onsite NAS)
    /// first, and any pack missing or damaged there from the next that has it intact.
    #[arg(long, value_name = "NAME")]
    schedule: Option<String>,
    /// The directory holding targets/ and schedules/ (with --schedule).
    #[arg(
        long,
        default_value = ".",
        env = "FIRESAFE_CONFIG_DIR",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
    /// Where the audit log is kept (default /var/lib/firesafe for root,
    /// ~/.local/state/firesafe otherwise).
    #[arg(long, env = "FIRESAFE_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

#[derive(Args, Debug)]
pub(super) struct AuditArgs {
    /// Only restores started at or after DATE (local time; a date alone means that whole day).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Read the records stored in this schedule's repository (its first reachable target)
    /// instead of the state directory.
    #[arg(long, value_name = "NAME")]
    schedule: Option<String>,
    #[arg(
        long,
        default_value = ".",
        env = "FIRESAFE_CONFIG_DIR",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
    /// Where the audit log is kept (default /var/lib/firesafe for root,
    /// ~/.local/state/firesafe otherwise).
    #[arg(long, env = "FIRESAFE_STATE_DIR", value_name = "DIR")]
    state_dir: Option<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The copies of a schedule's repository that open with `unlock` (or the schedule's key), in
/// the schedule's order, and why the others did not.
async fn open_schedule(
    config_dir: &std::path::Path,
    name: &str,
) -> Result<(Vec<Repository>, Vec<String>)> {
    let config = Config::load(config_dir)?;
    let schedule = config.schedule(name)?;
    let unlock = match unlock_from_env()? {
        Some(u) => u,
        None => config.schedule_key(schedule)?,
    };
    let mut repos = Vec::new();
    let mut notes = Vec::new();
    for (target, opened) in
        firesafe::config::targets::open_schedule_targets(&config, schedule).await
    {
        let result = match opened {
            Ok(t) => Repository::open(t, &unlock).await,
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
            "no target of schedule \"{name}\" could be opened ({})",
            notes.join("; ")
        )));
    }
    Ok((repos, notes))
}

/// Every snapshot any copy holds, and the index of every copy, merged.
async fn load_all(repos: &[Repository]) -> Result<(Catalog, Index)> {
    let mut catalog: Option<Catalog> = None;
    let mut index: Option<Index> = None;
    for repo in repos {
        let c = Catalog::load(repo).await?;
        let i = Index::load(repo).await?.index;
        match (&mut catalog, &mut index) {
            (Some(all), Some(idx)) => {
                for l in c.snapshots {
                    if !all.snapshots.iter().any(|s| s.id == l.id) {
                        all.snapshots.push(l);
                    }
                }
                idx.absorb(&i);
            }
            _ => {
                catalog = Some(c);
                index = Some(i);
            }
        }
    }
    let mut catalog = catalog.expect("at least one copy");
    catalog.snapshots.sort_by_key(|l| (l.snapshot.start, l.id));
    Ok((catalog, index.expect("at least one copy")))
}

fn state_dir(dir: Option<PathBuf>) -> Result<StateDir> {
    StateDir::open(&dir.unwrap_or_else(StateDir::default_path))
}

pub(super) async fn restore_cmd(url: Option<&str>, a: RestoreArgs) -> Result<Outcome> {
    let (spec, path) = firesafe::store::snapshot::split_path(&a.what);
    let (spec, path) = (spec.to_string(), path.map(str::to_string));
    let (repos, notes) = match &a.schedule {
        Some(name) => open_schedule(&a.config_dir, name).await?,
        None => (vec![open(url).await?], Vec::new()),
    };
    for n in &notes {
        eprintln!("firesafe: warning: {n}");
    }
    let (catalog, index) = load_all(&repos).await?;
    let snap = pick(&catalog, &spec, a.source.as_deref(), a.as_of.as_deref())?;
    let copies = Copies::new(repos.iter().collect()).expect("at least one copy");

    let mut options = RestoreOptions::new(a.to.clone().unwrap_or_default());
    options.overwrite = a.overwrite;
    options.keep_replaced = !a.no_keep;
    options.in_place = a.in_place;
    options.resume = a.resume;
    options.dry_run = a.dry_run;
    options.progress = progress::on_terminal() && !a.dry_run;
    let started = Utc::now();
    let clock = std::time::Instant::now();
    let result = restore::restore_snapshot(&copies, &index, snap, path.as_deref(), &options).await;

    if !a.dry_run {
        let to: Vec<String> = if a.in_place {
            restore::in_place_roots(snap, path.as_deref())
                .map(|r| {
                    r.into_iter()
                        .map(|(_, d)| d.display().to_string())
                        .collect()
                })
                .unwrap_or_default()
        } else {
            vec![options.to.display().to_string()]
        };
        let record = audit_record(snap, path.as_deref(), to, &a, started, &result, &copies);
        let state = state_dir(a.state_dir.clone()).and_then(|s| s.append_audit(&record));
        if let Err(e) = state {
            eprintln!("firesafe: warning: restore not recorded in the audit log: {e}");
        }
        for (target, e) in audit::store(copies.repos(), &record).await {
            eprintln!(
                "firesafe: warning: restore not recorded in the repository on target \"{target}\": {e}"
            );
        }
    }
    let report = result?;

    if a.dry_run {
        for step in &report.steps {
            println!("would {step}");
        }
        if !report.steps.iter().any(Step::writes) {
            println!(
                "nothing to restore: every file of {} is already as in snapshot {}",
                path.as_deref().unwrap_or("the snapshot"),
                snap.id.short()
            );
        } else {
            println!(
                "dry run: nothing was written ({} to write, {} unchanged, {} skipped)",
                report
                    .steps
                    .iter()
                    .filter(|s| matches!(s, Step::Write { .. } | Step::Replace { .. }))
                    .count(),
                report.unchanged,
                report.skipped.len()
            );
        }
        return Ok(Outcome::Success);
    }

    for w in &report.warnings {
        eprintln!("firesafe: warning: {w}");
    }
    for (p, why) in &report.failed {
        eprintln!("firesafe: not restored: {}: {why}", p.display());
    }
    for p in &report.skipped {
        eprintln!(
            "firesafe: left alone: {} differs from the snapshot (--overwrite replaces it, keeping the old file beside it)",
            p.display()
        );
    }
    for (p, k) in &report.kept {
        println!("kept the old {} as {}", p.display(), k.display());
    }
    let where_to = if a.in_place {
        "its original place".to_string()
    } else {
        options.to.display().to_string()
    };
    let mut extra = String::new();
    if report.unchanged > 0 {
        extra.push_str(&format!(
            "; {} already as in the snapshot, left alone",
            report.unchanged
        ));
    }
    if report.leftovers_removed > 0 {
        extra.push_str(&format!(
            "; removed {} unfinished file(s) of an earlier restore",
            report.leftovers_removed
        ));
    }
    if !report.skipped.is_empty() {
        extra.push_str(&format!(
            "; {} differ from the snapshot and were left alone",
            report.skipped.len()
        ));
    }
    if !report.failed.is_empty() {
        extra.push_str(&format!(
            "; {} file(s) could not be restored (run `firesafe check --read-data`)",
            report.failed.len()
        ));
    }
    println!(
        "restored snapshot {} ({}, taken {}) to {}: {} files ({}), {} directories, {} links in {:.1}s{extra}",
        snap.id.short(),
        snap.snapshot.source,
        snap.snapshot
            .start
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M"),
        where_to,
        report.files,
        bytesize::ByteSize(report.bytes),
        report.dirs,
        report.links,
        clock.elapsed().as_secs_f64(),
    );
    if copies.repos().len() > 1 || !report.copies.fallbacks.is_empty() {
        println!("{}", report.copies.describe());
    }
    Ok(if report.failed.is_empty() && report.skipped.is_empty() {
        Outcome::Success
    } else {
        Outcome::Findings
    })
}

fn audit_record(
    snap: &Listed,
    path: Option<&str>,
    to: Vec<String>,
    a: &RestoreArgs,
    started: chrono::DateTime<Utc>,
    result: &Result<restore::RestoreReport>,
    copies: &Copies<'_>,
) -> AuditRecord {
    let (user, uid) = audit::who();
    let mut record = AuditRecord {
        id: audit::new_id(),
        user,
        uid,
        host: firesafe::store::repo::hostname(),
        started,
        finished: Utc::now(),
        snapshot: snap.id.to_hex(),
        source: snap.snapshot.source.clone(),
        snapshot_taken: snap.snapshot.start,
        paths: path.map(|p| vec![p.to_string()]).unwrap_or_default(),
        to,
        in_place: a.in_place,
        files: 0,
        bytes: 0,
        unchanged: 0,
        skipped: 0,
        kept: 0,
        failed: 0,
        result: "failed".into(),
        error: String::new(),
        copies: copies.used(),
    };
    match result {
        Ok(r) => {
            record.files = r.files;
            record.bytes = r.bytes;
            record.unchanged = r.unchanged;
            record.skipped = r.skipped.len() as u64;
            record.kept = r.kept.len() as u64;
            record.failed = r.failed.len() as u64;
            record.result = if r.failed.is_empty() && r.skipped.is_empty() {
                "complete"
            } else {
                "incomplete"
            }
            .into();
        }
        Err(e) => record.error = e.to_string(),
    }
    record
}

#[derive(Args, Debug)]
pub(super) struct MountArgs {
    /// A source (every snapshot of it), one snapshot (id, `latest`, SOURCE@DATE), or `all`.
    #[arg(value_name = "SNAPSHOT_OR_SOURCE")]
    what: String,
    /// An empty directory to mount the view on.
    #[arg(value_name = "DIR")]
    dir: PathBuf,
    /// Read from a schedule's targets instead of --repo, the first first (as `restore --schedule`).
    #[arg(long, value_name = "NAME")]
    schedule: Option<String>,
    #[arg(
        long,
        default_value = ".",
        env = "FIRESAFE_CONFIG_DIR",
        value_name = "DIR"
    )]
    config_dir: PathBuf,
}

pub(super) async fn mount_cmd(url: Option<&str>, a: MountArgs) -> Result<Outcome> {
    firesafe::ops::mount::available()?;
    let (repos, notes) = match &a.schedule {
        Some(name) => open_schedule(&a.config_dir, name).await?,
        None => (vec![open(url).await?], Vec::new()),
    };
    for n in &notes {
        eprintln!("firesafe: warning: {n}");
    }
    let (catalog, index) = load_all(&repos).await?;
    let s = &a.what;
    let selected: Vec<Listed> = if s == "all" {
        catalog.snapshots.clone()
    } else if catalog.snapshots.iter().any(|l| &l.snapshot.source == s) {
        catalog
            .snapshots
            .iter()
            .filter(|l| &l.snapshot.source == s)
            .cloned()
            .collect()
    } else {
        vec![pick(&catalog, s, None, None)?.clone()]
    };
    // The view lives until the process ends.
    let repos: &'static [Repository] = Box::leak(repos.into_boxed_slice());
    let index: &'static Index = Box::leak(Box::new(index));
    let copies = Copies::new(repos.iter().collect()).expect("at least one copy");
    let reader = firesafe::store::blobs::BlobReader::with_copies(copies, index, 256 << 20);
    let fs = firesafe::ops::mount::SnapshotFs::new(reader, &selected);
    println!(
        "mounted {} snapshot(s) read-only at {}; unmount with `fusermount -u {}` or Ctrl-C",
        selected.len(),
        a.dir.display(),
        a.dir.display()
    );
    let stop = async {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("signal handler");
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    firesafe::ops::mount::serve(fs, &a.dir, stop).await?;
    Ok(Outcome::Success)
}

pub(super) async fn audit_cmd(url: Option<&str>, a: AuditArgs) -> Result<Outcome> {
    let mut records = if let Some(name) = &a.schedule {
        let (repos, notes) = open_schedule(&a.config_dir, name).await?;
        for n in &notes {
            eprintln!("firesafe: warning: {n}");
        }
        read_repo(&repos[0]).await?
    } else if url.is_some() {
        read_repo(&open(url).await?).await?
    } else {
        state_dir(a.state_dir.clone())?.audit_records()?
    };
    if let Some(since) = &a.since {
        let span = firesafe::plan::when::parse(since, &Local::now()).map_err(Error::Usage)?;
        records.retain(|r| r.started >= span.start);
    }
    if a.json {
        println!("{}", serde_json::to_string_pretty(&records).expect("JSON"));
        return Ok(Outcome::Success);
    }
    println!(
        "{:<16}  {:<12}  {:<12}  {:<8}  {:<12}  {:>7}  {:>10}  {:<10}  TO",
        "WHEN (LOCAL)", "WHO", "HOST", "SNAPSHOT", "PATH", "FILES", "SIZE", "RESULT"
    );
    for r in &records {
        println!(
            "{:<16}  {:<12}  {:<12}  {:<8}  {:<12}  {:>7}  {:>10}  {:<10}  {}{}",
            r.started.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
            format!("{} ({})", r.user, r.uid),
            r.host,
            &r.snapshot[..8.min(r.snapshot.len())],
            if r.paths.is_empty() {
                "(all)".to_string()
            } else {
                r.paths.join(", ")
            },
            r.files,
            bytesize::ByteSize(r.bytes).to_string(),
            r.result,
            if r.in_place {
                format!("in place: {}", r.to.join(", "))
            } else {
                r.to.join(", ")
            },
            if r.copies.packs.len() > 1 || !r.copies.fallbacks.is_empty() {
                format!(" ({})", r.copies.describe())
            } else {
                String::new()
            }
        );
    }
    println!("{} restore(s)", records.len());
    Ok(Outcome::Success)
}

async fn read_repo(repo: &Repository) -> Result<Vec<AuditRecord>> {
    let (records, damaged) = audit::load(repo).await?;
    for (key, e) in &damaged {
        eprintln!("firesafe: warning: audit record {key} could not be read: {e}");
    }
    Ok(records)
}
