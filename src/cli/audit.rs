//! `audit`: the restores recorded in the audit log of the state directory, or in the
//! repository.

use chrono::Local;
use clap::Args;
use firesafe::format::tree::printable;
use firesafe::store::audit::{self, AuditRecord};
use firesafe::store::repo::Repository;
use firesafe::{Error, Result};

use super::Outcome;
use super::args::{ConfigDir, StateDirFlag, open_copies, state_help};

/// The `audit` command's long help.
pub(super) const HELP: &str =
    "Every restore (not a dry run) is appended to STATE/audit.jsonl and stored, encrypted, in
the repository (audit/ID, on every target the restore read from; replication copies it to the
others), so the trail survives the loss of the server. Without --repo or --schedule the state
directory is read; with them, the repository.

EXAMPLES:
  firesafe audit --since \"last monday\"
  firesafe audit --schedule nightly --config-dir /etc/firesafe --json
  firesafe --repo /mnt/nas/firesafe audit";

#[derive(Args, Debug)]
#[command(mut_arg("state_dir", |a| a.help(state_help("Where the audit log is kept"))))]
pub(super) struct AuditArgs {
    /// Only restores started at or after DATE (local time; a date alone means that whole day).
    #[arg(long, value_name = "DATE")]
    since: Option<String>,
    /// Read the records stored in this schedule's repository (its first reachable target)
    /// instead of the state directory.
    #[arg(long, value_name = "NAME")]
    schedule: Option<String>,
    #[command(flatten)]
    config: ConfigDir,
    #[command(flatten)]
    state: StateDirFlag,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

pub(super) async fn audit_cmd(url: Option<&str>, a: AuditArgs) -> Result<Outcome> {
    let mut records = if a.schedule.is_some() || url.is_some() {
        let repos = open_copies(url, a.schedule.as_deref(), &a.config).await?;
        read_repo(&repos[0]).await?
    } else {
        a.state.open(Some(&a.config))?.audit_records()?
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
    // The paths and the destination are names a pupil may have chosen, and a record read
    // from the repository may be forged: every text field is shown escaped.
    let shown = |names: &[String]| printable(&names.join(", ")).into_owned();
    for r in &records {
        println!(
            "{:<16}  {:<12}  {:<12}  {:<8}  {:<12}  {:>7}  {:>10}  {:<10}  {}{}",
            r.started.with_timezone(&Local).format("%Y-%m-%d %H:%M"),
            format!("{} ({})", printable(&r.user), r.uid),
            printable(&r.host),
            printable(r.snapshot.get(..8).unwrap_or(&r.snapshot)),
            if r.paths.is_empty() {
                "(all)".to_string()
            } else {
                shown(&r.paths)
            },
            r.files,
            bytesize::ByteSize(r.bytes).to_string(),
            printable(&r.result),
            if r.in_place {
                format!("in place: {}", shown(&r.to))
            } else {
                shown(&r.to)
            },
            if r.copies.packs.len() > 1 || !r.copies.fallbacks.is_empty() {
                format!(" ({})", printable(&r.copies.describe()))
            } else {
                String::new()
            }
        );
    }
    println!(
        "{}",
        firesafe::plan::words::count_s(records.len() as u64, "restore")
    );
    Ok(Outcome::Success)
}

async fn read_repo(repo: &Repository) -> Result<Vec<AuditRecord>> {
    let (records, damaged) = audit::load(repo).await?;
    for (key, e) in &damaged {
        eprintln!("firesafe: warning: audit record {key} could not be read: {e}");
    }
    Ok(records)
}
