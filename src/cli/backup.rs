//! `backup`: one snapshot of the paths given, into the repository of `--repo`.

use std::path::PathBuf;

use clap::Args;
use firesafe::Result;
use firesafe::ops::backup::{self, BackupOptions};

use super::args::open;
use super::{Outcome, run};

/// The `backup` command's long help.
pub(super) const HELP: &str = "EXAMPLES:
  firesafe --repo /mnt/nas/firesafe backup /srv/shares/curriculum --source \\
      curriculum
  firesafe --repo /mnt/nas/firesafe backup /srv/shares/admin --source \\
      admin --tag end-of-term

Files that cannot be read are listed as warnings; the snapshot is still saved, marked partial,
and the exit status is 1.";

#[derive(Args, Debug)]
pub(super) struct BackupArgs {
    /// Files and directories to back up. Each appears in the snapshot under its last component.
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,
    /// The source (share) name recorded in the snapshot, such as curriculum, admin or staff.
    #[arg(long, value_name = "NAME")]
    source: String,
    /// A tag recorded in the snapshot. Repeatable.
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// zstd level for this backup (0 = off); default: the repository's.
    #[arg(long, value_name = "LEVEL")]
    compression: Option<i32>,
    /// Read every file, even those unchanged since the previous snapshot.
    #[arg(long)]
    force_read: bool,
}

pub(super) async fn backup_cmd(url: Option<&str>, a: BackupArgs) -> Result<Outcome> {
    let repo = open(url).await?;
    let mut options = BackupOptions::new(a.source, a.paths);
    options.tags = a.tags;
    options.compression = a.compression;
    options.force_read = a.force_read;
    options.progress = true;
    options.cancel = Some(run::stop_on_signal().0);
    let report = backup::backup(&repo, &options).await?;
    let s = &report.snapshot;
    let st = &s.stats;
    for key in &report.damaged_index {
        eprintln!(
            "firesafe: warning: index object {key} could not be read; its data was stored again (run `firesafe check`)"
        );
    }
    for (key, why) in &report.damaged_packs {
        eprintln!(
            "firesafe: warning: pack {key} is damaged ({}); it is marked, and its data was stored again (run `firesafe repair` to replace it from another copy)",
            firesafe::format::tree::printable(why)
        );
    }
    for w in &s.warnings {
        eprintln!(
            "firesafe: warning: {}: {}",
            firesafe::format::tree::printable(&w.path),
            firesafe::format::tree::printable(&w.message)
        );
    }
    println!(
        "snapshot {} saved{}: source {}, {} ({}), {} new, {} changed, {} unchanged, {} removed since the last snapshot; added {} ({} stored) in {:.1}s{}",
        report.id.short(),
        if s.partial { " (partial)" } else { "" },
        firesafe::format::tree::printable(&s.source),
        firesafe::plan::words::count_s(st.files, "file"),
        bytesize::ByteSize(st.bytes),
        st.files_new,
        st.files_changed,
        st.files_unchanged,
        st.files_removed,
        bytesize::ByteSize(st.bytes_added),
        bytesize::ByteSize(st.bytes_stored),
        (s.end - s.start).num_milliseconds() as f64 / 1000.0,
        if s.warnings.is_empty() {
            String::new()
        } else {
            format!(
                "; {}: some files could not be read",
                firesafe::plan::words::count_s(s.warnings.len() as u64, "warning")
            )
        },
    );
    Ok(Outcome::clean_if(!s.partial))
}
