//! `find` and `versions`: the versions of files and folders across every snapshot.

use chrono::Local;
use clap::Args;
use firesafe::plan::words::count_s;
use firesafe::store::blobs::BlobReader;
use firesafe::store::index::Index;
use firesafe::store::snapshot::Catalog;
use firesafe::{Error, Result};

use super::Outcome;
use super::args::open;

/// The `find` command's long help.
pub(super) const FIND_HELP: &str =
    "PATTERN is a glob: * matches any characters but /, ** any characters including /,
? one character, [a-z] one of a set. Without a / it matches names (the last component of a
path); with a / it matches whole paths as `firesafe ls` shows them. Case does not matter unless
--case-sensitive is given. Each distinct version of each path (same content, size and
modification time) is listed once, with the snapshots that hold it and the first snapshot where
it had changed or was gone. Nothing matching is an error (exit status 2).

EXAMPLES:
  Which versions of a worksheet exist, and when did it disappear?
    firesafe --repo /mnt/nas/firesafe find fractions.docx --source \\
        curriculum
  Every spreadsheet in year 7's folder backed up since the start of term:
    firesafe --repo /mnt/nas/firesafe find 'curriculum/year7/**.xlsx' \\
        --since 2026-09-01
    firesafe --repo /mnt/nas/firesafe find '*report*' --until yesterday \\
        --json";

/// The `versions` command's long help.
pub(super) const VERSIONS_HELP: &str =
    "PATH is as `firesafe ls` shows it. Each version (same content, size and
modification time) is listed once, with the snapshots that hold it, when it was first and last
seen, and the first snapshot where it had changed or no longer existed. A path in no snapshot is
an error (exit status 2).

EXAMPLES:
  firesafe --repo /mnt/nas/firesafe versions \\
      curriculum/year7/fractions.docx --source curriculum
  firesafe --repo /mnt/nas/firesafe versions curriculum/year7 --json
  Then restore the version wanted, by a snapshot that holds it:
    firesafe --repo /mnt/nas/firesafe restore \\
        1a2b3c4d:curriculum/year7/fractions.docx --to /tmp/restore";

#[derive(Args, Debug)]
pub(super) struct FindArgs {
    /// A name or glob (*.docx, 'fractions*', 'curriculum/year7/**').
    pattern: String,
    /// Only snapshots of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Only snapshots taken at or after DATE (local time; a date alone means that whole day).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Only snapshots taken at or before DATE (local time; a date alone means that whole day).
    #[arg(long, value_name = "DATE")]
    until: Option<String>,
    /// Match upper and lower case exactly.
    #[arg(long)]
    case_sensitive: bool,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(Args, Debug)]
pub(super) struct VersionsArgs {
    /// A file or folder, as `firesafe ls` shows it (curriculum/year7/fractions.docx).
    path: String,
    /// Only snapshots of this source.
    #[arg(long, value_name = "NAME")]
    source: Option<String>,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn find_cmd(url: Option<&str>, a: FindArgs) -> Result<Outcome> {
    let now = Local::now();
    let read = |date: &Option<String>| {
        date.as_deref()
            .map(|d| firesafe::plan::when::parse(d, &now).map_err(Error::Usage))
            .transpose()
    };
    let options = firesafe::ops::find::FindOptions {
        pattern: a.pattern,
        case_sensitive: a.case_sensitive,
        source: a.source,
        since: read(&a.since)?.map(|s| s.start),
        until: read(&a.until)?.map(|s| s.end),
    };
    let repo = open(url).await?;
    let catalog = Catalog::load(&repo).await?;
    let index = Index::load(&repo).await?.index;
    let reader = BlobReader::new(&repo, &index, 64 << 20);
    let report = firesafe::ops::find::find(&reader, &catalog.snapshots, &options).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
        return Ok(Outcome::Success);
    }
    print_versions(&report.versions);
    let paths: std::collections::HashSet<(&str, &str)> = report
        .versions
        .iter()
        .map(|v| (v.source.as_str(), v.path.as_str()))
        .collect();
    println!(
        "{} of {} in {}",
        count_s(report.versions.len() as u64, "version"),
        count_s(paths.len() as u64, "path"),
        count_s(report.snapshots as u64, "snapshot")
    );
    Ok(Outcome::Success)
}

pub(super) async fn versions_cmd(url: Option<&str>, a: VersionsArgs) -> Result<Outcome> {
    let repo = open(url).await?;
    let catalog = Catalog::load(&repo).await?;
    let index = Index::load(&repo).await?.index;
    let reader = BlobReader::new(&repo, &index, 64 << 20);
    let options = firesafe::ops::find::VersionsOptions {
        path: a.path,
        source: a.source,
    };
    let report = firesafe::ops::find::versions(&reader, &catalog.snapshots, &options).await?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&report).expect("JSON"));
        return Ok(Outcome::Success);
    }
    print_versions(&report.versions);
    println!(
        "{} of {} in {}; restore one with `firesafe restore SNAPSHOT:{} --to DIR`, SNAPSHOT being one that holds it",
        count_s(report.versions.len() as u64, "version"),
        firesafe::format::tree::printable(&report.path),
        count_s(report.snapshots as u64, "snapshot"),
        firesafe::format::tree::printable(report.path.trim_start_matches('/'))
    );
    Ok(Outcome::Success)
}

/// Versions grouped under their path: size, modification time, where they were seen, and how
/// each ended.
fn print_versions(versions: &[firesafe::ops::find::Version]) {
    let local = |t: chrono::DateTime<chrono::Utc>| {
        t.with_timezone(&Local).format("%Y-%m-%d %H:%M").to_string()
    };
    let mut heading = None;
    for v in versions {
        if heading != Some((&v.source, &v.path)) {
            heading = Some((&v.source, &v.path));
            println!(
                "{} (source {})",
                firesafe::format::tree::printable(&v.path),
                firesafe::format::tree::printable(&v.source)
            );
        }
        let ids: Vec<String> = v.snapshots.iter().map(|s| s.snapshot.short()).collect();
        let shown = if ids.len() > 6 {
            format!(
                "{} ... {}",
                ids[..3].join(" "),
                ids[ids.len() - 2..].join(" ")
            )
        } else {
            ids.join(" ")
        };
        let ended = match &v.ended {
            None => "still there in the newest snapshot searched".to_string(),
            Some(e) => format!(
                "{} in {} ({})",
                match e.reason {
                    firesafe::ops::find::Ending::Changed => "changed",
                    firesafe::ops::find::Ending::Deleted => "gone",
                },
                e.snapshot.short(),
                local(e.time)
            ),
        };
        println!(
            "  {} {}, modified {}: seen {} to {} in {} [{shown}]; {ended}",
            format!("{:?}", v.kind).to_lowercase(),
            bytesize::ByteSize(v.size),
            local(v.mtime),
            local(v.first_seen),
            local(v.last_seen),
            count_s(v.snapshots.len() as u64, "snapshot"),
        );
    }
}
