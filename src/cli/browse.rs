//! `snapshots`, `ls` and `diff`: what the repository of `--repo` holds, or every copy of a
//! schedule's (`--schedule`).

use chrono::Local;
use clap::Args;
use firesafe::Result;
use firesafe::format::tree::printable;
use firesafe::ops::ls;
use firesafe::store::blobs::{BlobReader, Copies, load_all};
use firesafe::store::index::Index;
use firesafe::store::repo::Repository;
use firesafe::store::snapshot::Catalog;
use serde_json::json;

use super::Outcome;
use super::args::{ConfigDir, open_copies, pick};

/// The `snapshots` command's long help.
pub(super) const SNAPSHOTS_HELP: &str = "EXAMPLES:
  firesafe --repo /mnt/nas/firesafe snapshots
  firesafe --repo /mnt/nas/firesafe snapshots --source admin --json
  Every snapshot any copy of the nightly schedule holds:
    firesafe snapshots --schedule nightly --config-dir /etc/firesafe

With --schedule NAME instead of --repo, every copy of the schedule's that opens is read (with
the key from FIRESAFE_KEY_FILE or the schedule's key_file) and a snapshot is listed once.";

/// The `ls` command's long help.
pub(super) const LS_HELP: &str =
    "SNAPSHOT is an id (or its first digits) from `firesafe snapshots`, `latest`, or
SOURCE@DATE: the newest snapshot of SOURCE taken at or before DATE, in local time. A date alone
means the end of that day, a time without seconds the end of that minute: curriculum@2026-11-20,
curriculum@\"2026-11-20 18:00\", curriculum@yesterday, curriculum@\"last friday 18:00\".
SOURCE@clean is the newest clean snapshot of SOURCE taken outside every incident: an incident
runs from a suspect snapshot (possible ransomware) that no technician accepted until its hold is
lifted, so SOURCE@clean is the state before an attack, or after one that is over.

EXAMPLES:
  firesafe --repo /mnt/nas/firesafe ls latest --source curriculum
  firesafe --repo /mnt/nas/firesafe ls 1a2b3c4d curriculum/year7
  firesafe --repo /mnt/nas/firesafe ls curriculum@yesterday curriculum/year7
  firesafe --repo /mnt/nas/firesafe ls latest --source curriculum --as-of \\
      \"last friday 18:00\"
  During an incident, from whichever copies of the nightly schedule answer:
    firesafe ls admin@clean --schedule nightly --config-dir /etc/firesafe

With --schedule NAME instead of --repo, the schedule's copies are read in order: a folder
listing missing or damaged on the first comes from the next.";

/// The `diff` command's long help.
pub(super) const DIFF_HELP: &str =
    "SNAPSHOT_A and SNAPSHOT_B are ids, `latest`, or SOURCE@DATE, as for `firesafe ls`.
Lines start with + (added), - (removed) or M (modified, with what differs: content, target,
mode, mtime, owner, xattrs) and give the sizes. Folders that are the same in both snapshots are
skipped without being read.

EXAMPLES:
  What did a suspected attack change in the admin share?
    firesafe --repo /mnt/nas/firesafe diff admin@clean latest
  What changed in the curriculum share since yesterday evening?
    firesafe --repo /mnt/nas/firesafe diff curriculum@\"yesterday 18:00\" \\
        latest --source curriculum
  Between two snapshots, in year 7's folder only:
    firesafe --repo /mnt/nas/firesafe diff 1a2b3c4d 5e6f7a8b \\
        curriculum/year7 --json
  The same over every copy of the nightly schedule:
    firesafe diff admin@clean latest --schedule nightly --config-dir \\
        /etc/firesafe";

#[derive(Args, Debug)]
#[command(mut_arg("config_dir", |a| {
    a.help("The directory holding targets/ and schedules/ (with --schedule)")
}))]
pub(super) struct SnapshotsArgs {
    /// Only snapshots of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Read every copy of this schedule's instead of --repo (the key from FIRESAFE_KEY_FILE or
    /// the schedule's).
    #[arg(long, value_name = "NAME")]
    schedule: Option<String>,
    #[command(flatten)]
    config: ConfigDir,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
#[command(mut_arg("config_dir", |a| {
    a.help("The directory holding targets/ and schedules/ (with --schedule)")
}))]
pub(super) struct LsArgs {
    /// Snapshot id (or prefix), `latest`, or SOURCE@DATE.
    snapshot: String,
    /// A path inside the snapshot to list.
    path: Option<String>,
    /// With `latest`: the newest snapshot of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// With `latest`: the newest snapshot taken at or before DATE (local time; a date alone means
    /// the end of that day).
    #[arg(long, value_name = "DATE")]
    as_of: Option<String>,
    /// Read every copy of this schedule's instead of --repo (the key from FIRESAFE_KEY_FILE or
    /// the schedule's).
    #[arg(long, value_name = "NAME")]
    schedule: Option<String>,
    #[command(flatten)]
    config: ConfigDir,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
#[command(mut_arg("config_dir", |a| {
    a.help("The directory holding targets/ and schedules/ (with --schedule)")
}))]
pub(super) struct DiffArgs {
    /// The earlier snapshot: id (or prefix), `latest`, or SOURCE@DATE.
    snapshot_a: String,
    /// The later snapshot: id (or prefix), `latest` (after SOURCE@..., of that source unless
    /// --source), or SOURCE@DATE.
    snapshot_b: String,
    /// Compare only this file or folder.
    path: Option<String>,
    /// With `latest` or @DATE: snapshots of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Read every copy of this schedule's instead of --repo (the key from FIRESAFE_KEY_FILE or
    /// the schedule's).
    #[arg(long, value_name = "NAME")]
    schedule: Option<String>,
    #[command(flatten)]
    config: ConfigDir,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The copies of `--repo` or `--schedule`, with every snapshot and index entry they hold.
async fn open_view(
    url: Option<&str>,
    schedule: Option<&str>,
    config: &ConfigDir,
) -> Result<(Vec<Repository>, Catalog, Index)> {
    let repos = open_copies(url, schedule, config).await?;
    let (catalog, index) = load_all(&repos).await?;
    Ok((repos, catalog, index))
}

/// A reader over the copies, first to last.
fn reader<'a>(repos: &'a [Repository], index: &'a Index) -> BlobReader<'a> {
    let copies = Copies::new(repos.iter().collect()).expect("at least one copy");
    BlobReader::with_copies(copies, index, 64 << 20)
}

pub(super) async fn snapshots(url: Option<&str>, a: SnapshotsArgs) -> Result<Outcome> {
    let repos = open_copies(url, a.schedule.as_deref(), &a.config).await?;
    let catalog = Catalog::load_all(&repos).await?;
    for (key, e) in &catalog.damaged {
        eprintln!("firesafe: warning: snapshot object {key} could not be read: {e}");
    }
    let list: Vec<_> = catalog
        .snapshots
        .iter()
        .filter(|l| a.source.as_ref().is_none_or(|s| &l.snapshot.source == s))
        .collect();
    if a.json {
        let out: Vec<_> = list
            .iter()
            .map(|l| {
                let mut v = serde_json::to_value(&l.snapshot).expect("snapshot to JSON");
                v["standing"] = json!(catalog.standing(l).word().to_lowercase());
                v["id"] = json!(l.id.to_hex());
                v["short_id"] = json!(l.id.short());
                v
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out).expect("JSON"));
        return Ok(Outcome::Success);
    }
    println!(
        "{:<8}  {:<19}  {:<14}  {:<12}  {:>8}  {:>10}  {:<8}  TAGS",
        "ID", "TAKEN (LOCAL TIME)", "SOURCE", "HOST", "FILES", "SIZE", "STATUS"
    );
    for l in &list {
        let s = &l.snapshot;
        println!(
            "{:<8}  {:<19}  {:<14}  {:<12}  {:>8}  {:>10}  {:<8}  {}",
            l.id.short(),
            s.start.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S"),
            printable(&s.source),
            printable(&s.host),
            s.stats.files,
            bytesize::ByteSize(s.stats.bytes).to_string(),
            status_word(&catalog, l),
            printable(&s.tags.join(","))
        );
    }
    println!(
        "{}",
        firesafe::plan::words::count_s(list.len() as u64, "snapshot")
    );
    Ok(Outcome::Success)
}

/// The STATUS column: SUSPECT (or CONFIRMED) while a snapshot is not clean, else partial or
/// complete (and `accepted` or `lifted` after a decision).
fn status_word(catalog: &Catalog, l: &firesafe::store::snapshot::Listed) -> String {
    use firesafe::store::decisions::Standing;
    let done = if l.snapshot.partial {
        "partial"
    } else {
        "complete"
    };
    match catalog.standing(l) {
        Standing::Clean => done.to_string(),
        Standing::Suspect => "SUSPECT".to_string(),
        Standing::Confirmed(_) => "SUSPECT (confirmed)".to_string(),
        Standing::Lifted(_) => "SUSPECT (lifted)".to_string(),
        Standing::Accepted(_) => format!("{done} (accepted)"),
    }
}

pub(super) async fn ls_cmd(url: Option<&str>, a: LsArgs) -> Result<Outcome> {
    let (repos, catalog, index) = open_view(url, a.schedule.as_deref(), &a.config).await?;
    let snap = pick(
        &catalog,
        &a.snapshot,
        a.source.as_deref(),
        a.as_of.as_deref(),
    )?;
    let reader = reader(&repos, &index);
    let standing = catalog.standing(snap);
    if !standing.is_clean() {
        eprintln!(
            "firesafe: SUSPECT: snapshot {} of {} may hold files damaged by ransomware ({}); `firesafe suspect list` says why, {}@clean is the newest clean one",
            snap.id.short(),
            printable(&snap.snapshot.source),
            standing.word(),
            printable(&snap.snapshot.source)
        );
    }
    // Each entry is printed as it is read, so that a million-file listing needs no more memory
    // than a small one; JSON is one array, written an element at a time.
    let mut shown = 0u64;
    let listed = ls::each(&reader, snap, a.path.as_deref(), |e| {
        if a.json {
            let json = serde_json::to_string_pretty(&e).expect("JSON");
            print!("{}{}", if shown == 0 { "[\n" } else { ",\n" }, json);
        } else {
            print_entry(&e);
        }
        shown += 1;
    })
    .await;
    if a.json && (shown > 0 || listed.is_ok()) {
        println!("{}", if shown == 0 { "[]" } else { "\n]" });
    }
    listed?;
    Ok(Outcome::Success)
}

/// One line of `ls`: kind and mode, size, time, path (and a link's target).
fn print_entry(e: &ls::Entry) {
    let kind = match e.kind {
        firesafe::format::tree::NodeKind::Dir => 'd',
        firesafe::format::tree::NodeKind::Symlink => 'l',
        firesafe::format::tree::NodeKind::File => '-',
        _ => '?',
    };
    let target = e
        .target
        .as_ref()
        .map(|t| format!(" -> {}", printable(&t.to_string())))
        .unwrap_or_default();
    println!(
        "{kind}{:04o} {:>12} {} {}{target}",
        e.mode,
        e.size,
        e.mtime.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
        printable(&e.path)
    );
}

pub(super) async fn diff_cmd(url: Option<&str>, a: DiffArgs) -> Result<Outcome> {
    let (repos, catalog, index) = open_view(url, a.schedule.as_deref(), &a.config).await?;
    let from = catalog.resolve(&a.snapshot_a, a.source.as_deref())?;
    // `diff admin@clean latest`: `latest` is of the source SNAPSHOT_A names (SOURCE@...)
    // unless --source.
    let names_source = a
        .snapshot_a
        .split_once('@')
        .is_some_and(|(n, _)| !n.is_empty());
    let source_b = match (&a.source, a.snapshot_b.as_str()) {
        (None, "latest") if names_source => Some(from.snapshot.source.as_str()),
        (s, _) => s.as_deref(),
    };
    let to = catalog.resolve(&a.snapshot_b, source_b)?;
    let reader = reader(&repos, &index);
    let options = firesafe::ops::diff::DiffOptions { path: a.path };
    let report = firesafe::ops::diff::diff(&reader, from, to, &options).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
        return Ok(Outcome::Success);
    }
    use firesafe::ops::diff::ChangeKind;
    let size = |s: Option<u64>| {
        s.map(|b| bytesize::ByteSize(b).to_string())
            .unwrap_or_default()
    };
    for c in &report.changes {
        let kind = format!("{:?}", c.kind).to_lowercase();
        let path = printable(&c.path);
        match c.change {
            ChangeKind::Added => println!("+ {kind:<7} {:>10}  {}", size(c.size_after), path),
            ChangeKind::Removed => println!("- {kind:<7} {:>10}  {}", size(c.size_before), path),
            ChangeKind::Modified => println!(
                "M {kind:<7} {:>10}  {} ({}{})",
                size(c.size_after),
                path,
                c.what.join(", "),
                if c.size_before != c.size_after {
                    format!("; was {}", size(c.size_before))
                } else {
                    String::new()
                }
            ),
        }
    }
    let side = |s: &firesafe::ops::diff::Side| {
        format!(
            "{} ({}, taken {})",
            s.snapshot.short(),
            printable(&s.source),
            s.time.with_timezone(&Local).format("%Y-%m-%d %H:%M")
        )
    };
    println!(
        "from {} to {}: {} added ({}), {} removed ({}), {} modified",
        side(&report.from),
        side(&report.to),
        report.added,
        bytesize::ByteSize(report.bytes_added),
        report.removed,
        bytesize::ByteSize(report.bytes_removed),
        report.modified
    );
    Ok(Outcome::Success)
}
