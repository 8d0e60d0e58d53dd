//! `report` and `recovery-sheet`: the governors' documents, written as PDF and HTML.

use std::path::{Path, PathBuf};

use clap::Args;
use firesafe::{Error, Result};

use super::Outcome;
use super::args::{ConfigDir, StateDirFlag, state_help};

/// The `report` command's long help.
pub(super) const REPORT_HELP: &str =
    "The report covers a period (default: the last 90 days) and is built only from what
was recorded and measured: the 3-2-1 status read from every target now, the runs in
STATE/history.jsonl, the restore drills in STATE/drills.jsonl, the verifications in
STATE/verify.jsonl, and the snapshots in the repository (for storage growth). The runs,
verifications and drills are counted against what each schedule's cron times made due in the
period (in its time zone): a due run with no complete run before the next due time is missed,
and any gap between complete backups longer than the policy's max_age_hours is an incident.
Where nothing was recorded it says so, in red; when the records begin after the period starts,
page 1 says so and those lights are not OK. The first page is a plain-English summary with
traffic lights (OK, ATTENTION, ACTION NEEDED), each saying who should do what; then incidents
and risks (open until later evidence resolves them), each share in detail, a glossary, a
sign-off block for the headteacher and the chair of governors, and a technician's appendix.
The school's name comes from site.toml in the configuration directory.

--out FILE writes FILE.pdf (or FILE, when it ends in .pdf) and the same report as a
self-contained HTML page beside it (FILE.html). Dates are read like the rest of firesafe:
2026-09-01, \"2026-09-01 08:00\", yesterday, \"last friday\".

EXAMPLES:
  firesafe report --out /srv/reports/dr-autumn-2026
  firesafe report nightly --from 2026-09-01 --to 2026-12-19 --out \\
      dr-autumn-2026.pdf";

/// The `recovery-sheet` command's long help.
pub(super) const SHEET_HELP: &str =
    "The sheet lists where every copy lives (targets, locations, media, paths, S3
endpoints, regions, buckets and prefixes), the repository id, every key that opens it (label,
kind and fingerprint, as `key list` shows them), the last restore drill that passed for each
share, whom to call and where the storage credentials, the recovery key and firesafe are kept
(site.toml: credentials_kept, recovery_key_kept, firesafe_source), and the commands that
restore each share onto a new machine after a fire, one per line starting with $. They always
use an offsite copy; one that did not answer when printed is still named, marked NOT CHECKED
in red. No storage credential is ever printed.

The key itself is printed, as text and as a QR code, only with --include-key FILE; without it
the sheet says where the key is kept and that it is not on the sheet. A sheet with the key on
it must be kept locked away.

EXAMPLES:
  firesafe recovery-sheet --out /root/recovery-sheet
  firesafe recovery-sheet nightly --out sheet.pdf --include-key \\
      /etc/firesafe/recovery.key";

#[derive(Args, Debug)]
#[command(mut_arg("state_dir", |a| {
    a.help(state_help("Where the run, drill and verification records are kept"))
}))]
pub(super) struct ReportArgs {
    /// Only these schedules (default: every schedule).
    schedules: Vec<String>,
    /// The start of the period (default: 90 days ago).
    #[arg(long, value_name = "DATE")]
    from: Option<String>,
    /// The end of the period (default: now).
    #[arg(long, value_name = "DATE")]
    to: Option<String>,
    /// Where to write: FILE.pdf and FILE.html (or FILE and its .html, when FILE ends in .pdf).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    #[command(flatten)]
    config: ConfigDir,
    #[command(flatten)]
    state: StateDirFlag,
}

#[derive(Args, Debug)]
#[command(mut_arg("state_dir", |a| a.help(state_help("Where the drill records are kept"))))]
pub(super) struct SheetArgs {
    /// Only these schedules (default: every schedule).
    schedules: Vec<String>,
    /// Where to write: FILE.pdf and FILE.html (or FILE and its .html, when FILE ends in .pdf).
    #[arg(long, value_name = "FILE")]
    out: PathBuf,
    /// Print this key file's key on the sheet, as text and as a QR code.
    #[arg(long, value_name = "FILE")]
    include_key: Option<PathBuf>,
    #[command(flatten)]
    config: ConfigDir,
    #[command(flatten)]
    state: StateDirFlag,
}

pub(super) async fn report_cmd(a: ReportArgs) -> Result<Outcome> {
    let now = chrono::Utc::now();
    let local = chrono::Local::now();
    let read = |text: &str, end: bool| -> Result<chrono::DateTime<chrono::Utc>> {
        let span = firesafe::plan::when::parse(text, &local).map_err(Error::Usage)?;
        Ok(if end { span.end } else { span.start })
    };
    let from = match &a.from {
        Some(t) => read(t, false)?,
        None => now - chrono::Duration::days(90),
    };
    let to = match &a.to {
        Some(t) => read(t, true)?,
        None => now,
    };
    if to < from {
        return Err(Error::Usage(format!(
            "--to {} is before --from {}; give the start of the period first",
            a.to.as_deref().unwrap_or("now"),
            a.from.as_deref().unwrap_or("(90 days ago)")
        )));
    }
    check_out(&a.out)?;
    let config = a.config.load()?;
    for s in &a.schedules {
        config.schedule(s)?;
    }
    let state = a.state.open(Some(&a.config))?;
    let options = firesafe::paper::report::ReportOptions {
        schedules: a.schedules,
        from,
        to,
        now,
    };
    let data = firesafe::paper::report::gather(&config, &state, &options).await?;
    let doc = firesafe::paper::report::build(&data);
    let (pdf, html) = write_document(&a.out, &doc, false)?;
    println!("wrote {} and {}", pdf.display(), html.display());
    Ok(Outcome::Success)
}

pub(super) async fn sheet_cmd(a: SheetArgs) -> Result<Outcome> {
    check_out(&a.out)?;
    let config = a.config.load()?;
    for s in &a.schedules {
        config.schedule(s)?;
    }
    let state = a.state.open(Some(&a.config))?;
    let options = firesafe::paper::sheet::SheetOptions {
        schedules: a.schedules,
        include_key: a.include_key,
        now: chrono::Utc::now(),
    };
    let data = firesafe::paper::sheet::gather(&config, &state, &options).await?;
    // A key that could not be read (one others can read is refused) leaves its fingerprint
    // off the sheet; said here too, so that it is not found only on paper.
    for s in &data.schedules {
        if let Err(why) = &s.fingerprint {
            eprintln!(
                "firesafe: warning: schedule {}: the key's fingerprint is not on the sheet: {}",
                s.name,
                firesafe::format::tree::printable(why)
            );
        }
    }
    let doc = firesafe::paper::sheet::build(&data);
    let (pdf, html) = write_document(&a.out, &doc, data.key.is_some())?;
    println!("wrote {} and {}", pdf.display(), html.display());
    if data.key.is_some() {
        println!(
            "the sheet holds the recovery key: print it, keep it locked away, and delete the files"
        );
    }
    Ok(Outcome::Success)
}

/// The PDF and HTML paths for `--out FILE`.
fn document_paths(out: &Path) -> (PathBuf, PathBuf) {
    let pdf = if out
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("pdf"))
    {
        out.to_path_buf()
    } else {
        let mut p = out.as_os_str().to_owned();
        p.push(".pdf");
        PathBuf::from(p)
    };
    let html = pdf.with_extension("html");
    (pdf, html)
}

/// Writes a document as PDF and HTML, refusing early when the place cannot be written.
/// Writes the PDF and HTML beside each other. A document holding a key is readable by its
/// owner only (0600, also when it replaces an older file); others are 0644.
pub(super) fn write_document(
    out: &Path,
    doc: &firesafe::paper::doc::Doc,
    holds_key: bool,
) -> Result<(PathBuf, PathBuf)> {
    let (pdf, html) = document_paths(out);
    let mode = if holds_key { 0o600 } else { 0o644 };
    write_file(&pdf, &firesafe::paper::pdf::render(doc), mode)
        .map_err(|e| Error::local(&pdf, "cannot write the PDF (check --out)", e))?;
    write_file(&html, doc.html().as_bytes(), mode)
        .map_err(|e| Error::local(&html, "cannot write the HTML (check --out)", e))?;
    Ok((pdf, html))
}

fn write_file(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)?;
    f.set_permissions(std::fs::Permissions::from_mode(mode))?;
    f.write_all(bytes)
}

/// Checks that `--out` names a place that can be written before the slow part starts.
pub(super) fn check_out(out: &Path) -> Result<()> {
    let dir = match out.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    if !dir.is_dir() {
        return Err(Error::Usage(format!(
            "--out {}: the folder {} does not exist; create it or choose another place",
            out.display(),
            dir.display()
        )));
    }
    tempfile::NamedTempFile::new_in(&dir)
        .map(drop)
        .map_err(|e| Error::local(&dir, "cannot write here (check --out)", e))
}
