//! `restore`: a snapshot, or a file or folder of one, back from the repository of `--repo` or
//! from the best copy among a schedule's targets; every restore is recorded in the audit log.

use firesafe::format::tree::printable;
use std::path::PathBuf;

use chrono::{Local, Utc};
use clap::Args;
use firesafe::Result;
use firesafe::ops::restore::{self, RestoreOptions, RestoreReport, Step};
use firesafe::store::audit::{self, AuditRecord};
use firesafe::store::blobs::{Copies, load_all};
use firesafe::store::snapshot::Listed;

use super::Outcome;
use firesafe::plan::words::{count, count_s};

use super::args::{ConfigDir, StateDirFlag, open_copies, pick, state_help};

/// The `restore` command's long help.
pub(super) const HELP: &str =
    "SNAPSHOT is an id (or its first digits) from `firesafe snapshots`, `latest`, or
SOURCE@DATE (the newest snapshot of SOURCE taken at or before DATE, local time; a date alone
means the end of that day), or SOURCE@clean (the newest clean snapshot of SOURCE taken outside
a ransomware incident: the state before an attack, or after one was lifted); add :PATH to
restore one file or folder (paths as `firesafe ls` shows them).
The target directory must be new or empty (unless --overwrite or --resume). With --in-place the
file or folder goes back where the snapshot read it from. Either way a file already there with
the snapshot's content is left alone, and one that differs is never replaced unless --overwrite
is given; the old file is then kept beside it as NAME.firesafe-YYYYMMDD-HHMMSS (not with
--no-keep). --dry-run lists all this and writes nothing. Files are written under temporary names
and appear under their own names only when complete; an interrupted restore is finished by
running it again with --resume, which keeps the files already complete (their content is
re-hashed against the snapshot) and removes the unfinished ones.

With --schedule NAME instead of --repo, the schedule's targets are read in order (the onsite NAS
first): a pack missing or damaged on one is read from the next that has it intact, and the
summary says which copies were used. Every restore is recorded in the audit log (see
`firesafe audit`). Owners are restored when run as root; otherwise a warning says so.

EXAMPLES:
  Put a deleted folder back on the live share, changing nothing that differs:
    firesafe --repo /mnt/nas/firesafe restore latest:curriculum/year7 \\
        --source curriculum --in-place --dry-run
    firesafe --repo /mnt/nas/firesafe restore latest:curriculum/year7 \\
        --source curriculum --in-place
  From the best copy among the nightly schedule's targets:
    firesafe restore --schedule nightly latest:admin --source admin --to \\
        /tmp/restore --config-dir /etc/firesafe
  Finish a restore that was interrupted:
    firesafe --repo /mnt/nas/firesafe restore 1a2b3c4d --to \\
        /srv/shares-restored --resume
  Restore a deleted worksheet to a scratch folder:
    firesafe --repo /mnt/nas/firesafe restore \\
        latest:curriculum/year7/fractions.docx --to /tmp/restore --source \\
        curriculum
  Restore a whole share after a disaster:
    firesafe --repo /mnt/nas/firesafe restore 1a2b3c4d --to \\
        /srv/shares-restored
  Every share's newest snapshot, each into /srv/shares-restored/SHARE:
    firesafe restore --schedule nightly --all-sources --to /srv/shares-restored
  Restore a folder as it was on Friday evening:
    firesafe --repo /mnt/nas/firesafe restore \\
        curriculum@\"last friday 18:00\":curriculum/year7 --to /tmp/restore
    firesafe --repo /mnt/nas/firesafe restore latest:curriculum/year7 \\
        --source curriculum --as-of 2026-11-20 --to /tmp/restore";

#[derive(Args, Debug)]
#[command(mut_arg("config_dir", |a| {
    a.help("The directory holding targets/ and schedules/ (with --schedule)")
}))]
#[command(mut_arg("state_dir", |a| a.help(state_help("Where the audit log is kept"))))]
pub(super) struct RestoreArgs {
    /// SNAPSHOT or SNAPSHOT:PATH.
    #[arg(
        value_name = "SNAPSHOT[:PATH]",
        required_unless_present = "all_sources"
    )]
    what: Option<String>,
    /// After a disaster: restore the newest snapshot of every share, each into DIR/SOURCE.
    #[arg(
        long,
        requires = "to",
        conflicts_with_all = ["what", "in_place", "source", "as_of"]
    )]
    all_sources: bool,
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
    #[command(flatten)]
    config: ConfigDir,
    #[command(flatten)]
    state: StateDirFlag,
}

pub(super) async fn restore_cmd(url: Option<&str>, a: RestoreArgs) -> Result<Outcome> {
    let repos = open_copies(url, a.schedule.as_deref(), &a.config).await?;
    let (catalog, index) = load_all(&repos).await?;
    let copies = Copies::new(repos.iter().collect()).expect("at least one copy");
    if a.all_sources {
        let to = a.to.clone().expect("clap requires --to");
        let sources = catalog.sources();
        if sources.is_empty() {
            return Err(firesafe::Error::NotFound(
                "the repository has no snapshots yet; nothing to restore".into(),
            ));
        }
        let mut outcome = Outcome::Success;
        for source in sources {
            let snap = catalog.resolve("latest", Some(source))?;
            let into = to.join(source);
            println!(
                "{}: the newest snapshot, {}, into {}",
                printable(source),
                snap.id.short(),
                printable(&into.to_string_lossy())
            );
            let o = restore_one(&a, &copies, &index, snap, None, into).await?;
            if o != Outcome::Success {
                outcome = o;
            }
        }
        return Ok(outcome);
    }
    let what = a
        .what
        .clone()
        .expect("clap requires SNAPSHOT unless --all-sources");
    let (spec, path) = firesafe::store::snapshot::split_path(&what);
    let (spec, path) = (spec.to_string(), path.map(str::to_string));
    let snap = pick(&catalog, &spec, a.source.as_deref(), a.as_of.as_deref())?;
    let to = a.to.clone().unwrap_or_default();
    restore_one(&a, &copies, &index, snap, path.as_deref(), to).await
}

/// Restores one snapshot (or a path of it) to `to` (or in place), records it in the audit log
/// and prints what was done.
async fn restore_one(
    a: &RestoreArgs,
    copies: &Copies<'_>,
    index: &firesafe::store::index::Index,
    snap: &Listed,
    path: Option<&str>,
    to: PathBuf,
) -> Result<Outcome> {
    let mut options = RestoreOptions::new(to);
    options.overwrite = a.overwrite;
    options.keep_replaced = !a.no_keep;
    options.in_place = a.in_place;
    options.resume = a.resume;
    options.dry_run = a.dry_run;
    options.progress = !a.dry_run;
    let started = Utc::now();
    let clock = std::time::Instant::now();
    let result = restore::restore_snapshot(copies, index, snap, path, &options).await;

    if !a.dry_run {
        let to: Vec<String> = if a.in_place {
            restore::in_place_roots(snap, path)
                .map(|r| {
                    r.into_iter()
                        .map(|(_, d)| d.display().to_string())
                        .collect()
                })
                .unwrap_or_default()
        } else {
            vec![options.to.display().to_string()]
        };
        let record = audit_record(snap, path, to, a, started, &result, copies);
        // A restore from a schedule's copies is recorded with that configuration's records.
        let config = a.schedule.is_some().then_some(&a.config);
        record_restore(&a.state, config, copies, &record).await;
    }
    let report = result?;

    if a.dry_run {
        print_dry_run(&report, snap, path);
        return Ok(Outcome::Success);
    }
    let where_to = if a.in_place {
        "its original place".to_string()
    } else {
        options.to.display().to_string()
    };
    print_restored(&report, snap, &where_to, clock, copies);
    Ok(Outcome::clean_if(
        report.failed.is_empty() && report.skipped.is_empty(),
    ))
}

/// Appends the restore to the audit log in the state directory and stores it in the repository
/// on every copy read from; a record that cannot be written is a warning, not a failure.
async fn record_restore(
    state: &StateDirFlag,
    config: Option<&ConfigDir>,
    copies: &Copies<'_>,
    record: &AuditRecord,
) {
    if let Err(e) = state.open(config).and_then(|s| s.append_audit(record)) {
        eprintln!("firesafe: warning: restore not recorded in the audit log: {e}");
    }
    for (target, e) in audit::store(copies.repos(), record).await {
        eprintln!(
            "firesafe: warning: restore not recorded in the repository on target \"{target}\": {e}"
        );
    }
}

/// What a dry run would do, step by step, and a count.
fn print_dry_run(report: &RestoreReport, snap: &Listed, path: Option<&str>) {
    for step in &report.steps {
        println!("would {}", printable(&step.to_string()));
    }
    if !report.steps.iter().any(Step::writes) {
        println!(
            "nothing to restore: every file of {} is already as in snapshot {}",
            path.unwrap_or("the snapshot"),
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
}

/// The files not restored or left alone, the old files kept aside, and the summary line.
fn print_restored(
    report: &RestoreReport,
    snap: &Listed,
    where_to: &str,
    clock: std::time::Instant,
    copies: &Copies<'_>,
) {
    let shown = |p: &std::path::Path| printable(&p.to_string_lossy()).into_owned();
    for w in &report.warnings {
        eprintln!("firesafe: warning: {}", printable(w));
    }
    for (p, why) in &report.failed {
        eprintln!("firesafe: not restored: {}: {}", shown(p), printable(why));
    }
    for p in &report.skipped {
        eprintln!(
            "firesafe: left alone: {} differs from the snapshot (--overwrite replaces it, keeping the old file beside it)",
            shown(p)
        );
    }
    for (p, k) in &report.kept {
        println!("kept the old {} as {}", shown(p), shown(k));
    }
    let mut extra = String::new();
    if report.unchanged > 0 {
        extra.push_str(&format!(
            "; {} already as in the snapshot, left alone",
            report.unchanged
        ));
    }
    if report.leftovers_removed > 0 {
        extra.push_str(&format!(
            "; removed {} of an earlier restore",
            count_s(report.leftovers_removed, "unfinished file")
        ));
    }
    if !report.skipped.is_empty() {
        extra.push_str(&format!(
            "; {} differ from the snapshot and were left alone",
            report.skipped.len()
        ));
    }
    if !report.failed.is_empty() {
        // Refused folders (a link or not a folder where one should be) are not damage.
        let refused = report
            .failed
            .iter()
            .filter(|(_, why)| why.contains(restore::REFUSED))
            .count();
        extra.push_str(&format!(
            "; {} could not be restored ({})",
            count(report.failed.len() as u64, "entry", "entries"),
            if refused == report.failed.len() {
                "each is named above with why"
            } else {
                "each is named above with why; for damaged data run `firesafe check --read-data`"
            }
        ));
    }
    println!(
        "restored snapshot {} ({}, taken {}) to {}: {} ({}), {}, {} in {:.1}s{extra}",
        snap.id.short(),
        printable(&snap.snapshot.source),
        snap.snapshot
            .start
            .with_timezone(&Local)
            .format("%Y-%m-%d %H:%M"),
        printable(where_to),
        count_s(report.files, "file"),
        bytesize::ByteSize(report.bytes),
        count(report.dirs, "directory", "directories"),
        count_s(report.links, "link"),
        clock.elapsed().as_secs_f64(),
    );
    if copies.repos().len() > 1 || !report.copies.fallbacks.is_empty() {
        println!("{}", printable(&report.copies.describe()));
    }
}

fn audit_record(
    snap: &Listed,
    path: Option<&str>,
    to: Vec<String>,
    a: &RestoreArgs,
    started: chrono::DateTime<Utc>,
    result: &Result<RestoreReport>,
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
