//! What is at the destination already, and what to do about it: whether the destination may
//! be restored into at all, whether a file there holds the snapshot's content (re-hashed against
//! its blob ids), the name a replaced file is kept under, and the leftovers of an interrupted
//! restore.
//!
//! This is what makes a restore safe to rerun: nothing here decides to overwrite; it only
//! reports what is there, and the destination itself is the record of what was finished.

use std::path::{Path, PathBuf};

use super::write;
use super::{RestoreOptions, RestoreReport, Step};
use crate::error::{Error, Result};
use crate::format::tree::Node;
use crate::store::index::Index;

/// Left in the destination while a restore runs there, and removed when it completes: a rerun
/// of an interrupted restore finds it and resumes without being asked.
pub const IN_PROGRESS: &str = ".firesafe-restore-in-progress";

/// Checks the destination: it must be new, or an empty directory unless `overwrite`, `resume`
/// or `in_place`. Creates it (not in a dry run). Returns whether it was new or empty, so that
/// nothing there needs comparing.
pub(super) fn prepare_destination(to: &Path, options: &RestoreOptions) -> Result<bool> {
    match std::fs::symlink_metadata(to) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !options.dry_run {
                write::create_dir_all(to)
                    .map_err(|e| Error::local(to, "cannot create the restore directory", e))?;
            }
            Ok(true)
        }
        Err(e) => Err(Error::local(to, "cannot use the restore directory", e)),
        Ok(m) if !m.is_dir() => Err(Error::Usage(format!(
            "restore target {} exists and is not a directory; choose a new or empty directory",
            to.display()
        ))),
        Ok(_) => {
            let mut entries = std::fs::read_dir(to)
                .map_err(|e| Error::local(to, "cannot list the restore directory", e))?;
            let empty = entries.next().is_none();
            // A restore interrupted here left its marker: running it again resumes it.
            let interrupted = to.join(IN_PROGRESS).exists();
            let may_hold_files =
                options.overwrite || options.resume || options.in_place || interrupted;
            if !empty && !may_hold_files {
                return Err(Error::Usage(format!(
                    "restore target {} is not empty; choose a new or empty directory, pass --resume to finish an interrupted restore there, or --overwrite to replace files there",
                    to.display()
                )));
            }
            Ok(empty)
        }
    }
}

/// What to do with one planned file, given what is at its destination.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Existing {
    Absent,
    /// A regular file with the snapshot's content.
    Same,
    Differs,
}

/// Compares what is at `dest` with a file node: size, then each blob's keyed hash. It is read
/// through [`write::open_read`]: reached without following a link, and only if it is a regular
/// file.
pub(super) fn existing(
    dest: &Path,
    node: &Node,
    index: &Index,
    key: &crate::format::crypto::RepoKey,
) -> Existing {
    use std::io::Read;
    let mut f = match write::open_read(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Existing::Absent,
        Err(_) => return Existing::Differs,
        Ok(f) => f,
    };
    if !f.metadata().is_ok_and(|m| m.len() == node.size) {
        return Existing::Differs;
    }
    let mut buf = Vec::new();
    for id in &node.content {
        let Some((_, loc)) = index.get(id) else {
            return Existing::Differs;
        };
        buf.resize(loc.raw_length as usize, 0);
        if f.read_exact(&mut buf).is_err() || key.blob_id(&buf) != *id {
            return Existing::Differs;
        }
    }
    Existing::Same
}

/// Where a replaced file is kept: `NAME.firesafe-YYYYMMDD-HHMMSS`, or with `-2`, `-3`, ... when
/// that is taken.
pub(super) fn kept_name(dest: &Path, now: &chrono::DateTime<chrono::Local>) -> PathBuf {
    let stamp = now.format("%Y%m%d-%H%M%S");
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".firesafe-{stamp}"));
    let first = dest.with_file_name(&name);
    let mut candidate = first.clone();
    let mut n = 2;
    while write::stat_at(&candidate).is_ok() {
        let mut other = name.clone();
        other.push(format!("-{n}"));
        candidate = dest.with_file_name(other);
        n += 1;
    }
    candidate
}

/// Whether a node's mode and modification time are those of `m`.
pub(super) fn same_metadata(m: &write::Found, node: &Node) -> bool {
    m.mode() == node.mode && m.mtime() == (node.mtime, i64::from(node.mtime_nsec))
}

/// Removes (or, in a dry run, lists) the temporary files an interrupted restore left in `dir`
/// (listed through [`write::list_dir`], never through a link).
pub(super) fn remove_leftovers(dir: &Path, dry_run: bool, report: &mut RestoreReport) {
    let Ok(names) = write::list_dir(dir) else {
        return;
    };
    for name in names {
        if name.as_encoded_bytes().starts_with(b".firesafe-partial-") {
            let path = dir.join(name);
            if dry_run {
                report.steps.push(Step::RemoveLeftover { path });
            } else if write::remove_file(&path).is_ok() {
                report.leftovers_removed += 1;
            }
        }
    }
}
