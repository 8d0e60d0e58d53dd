//! Restore: rebuild files from a snapshot, byte for byte, with their metadata.
//!
//! The restore is planned first ([`RestorePlan`]: every directory, file, link and special file
//! with its destination), then carried out pack by pack, so that each pack is downloaded once
//! however many files share its blobs. Each file is written under a temporary name
//! (`.firesafe-partial-...`) in its directory and renamed into place only when complete, so a
//! file is never left half-written under its final name. Blobs of zeros are skipped rather than
//! written, so sparse files stay sparse.
//!
//! What is already at the destination is never destroyed by default. A file that is there and
//! holds the snapshot's content (re-hashed against the snapshot's blob ids) is left alone, its
//! metadata restored if that differs; a file that differs is skipped unless `overwrite`, and
//! then, with `keep_replaced`, it is first renamed aside to `NAME.firesafe-YYYYMMDD-HHMMSS`.
//! This is also how an interrupted restore resumes (`resume`, or on its own when the destination
//! holds the [`IN_PROGRESS`] marker an interrupted restore leaves): files already renamed into place
//! are complete, and re-hashing proves it, so they are kept and not rewritten; leftover
//! `.firesafe-partial-*` files in the restored directories are removed. No journal is kept: the
//! destination itself is the record of what was finished.
//!
//! `in_place` restores to where the snapshot read the files from ([`in_place_roots`]): each entry
//! of the root tree goes back beside its original path, which must be absolute and whose parent
//! must exist.
//!
//! Names come from trees, which [`crate::format::tree::Tree::decode`] has already checked: no entry can
//! be `..`, absolute, or contain `/`. Directories are created by the restore itself and symlinks
//! are created last, so no file is ever written through a symlink; an existing symlink in the
//! way of a directory is refused.

mod destination;
mod files;
mod links;
mod plan;
mod write;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::format::tree::{Node, NodeKind};
use crate::store::blobs::{self, BlobReader, Copies};
use crate::store::index::Index;
use crate::store::repo::Repository;
use crate::store::snapshot::Listed;

pub use destination::IN_PROGRESS;
pub use plan::{PlanEntry, RestorePlan, find_node, in_place_roots, plan};

/// What to restore and where.
#[derive(Clone, Debug)]
pub struct RestoreOptions {
    /// The destination: a new or empty directory (any directory with `overwrite`).
    pub to: PathBuf,
    /// A path inside the snapshot (`curriculum/year7`); `None` restores everything.
    pub path: Option<String>,
    /// Replace existing files that differ from the snapshot (identical ones are always kept).
    pub overwrite: bool,
    /// With `overwrite`, rename each replaced file aside first (`NAME.firesafe-YYYYMMDD-HHMMSS`).
    pub keep_replaced: bool,
    /// The destination is the live location (see [`in_place_roots`]); it need not be empty.
    pub in_place: bool,
    /// Continue an interrupted restore: the destination need not be empty, and complete files
    /// already there are kept.
    pub resume: bool,
    /// Work out and list what would be done ([`RestoreReport::steps`]); write nothing.
    pub dry_run: bool,
    /// The time that names kept-aside files.
    pub now: chrono::DateTime<chrono::Local>,
    /// Packs downloaded at once.
    pub downloads: usize,
    pub progress: bool,
}

impl RestoreOptions {
    pub fn new(to: impl Into<PathBuf>) -> RestoreOptions {
        RestoreOptions {
            to: to.into(),
            path: None,
            overwrite: false,
            keep_replaced: false,
            in_place: false,
            resume: false,
            dry_run: false,
            now: chrono::Local::now(),
            downloads: 2,
            progress: false,
        }
    }
}

/// How a restore went.
#[derive(Debug, Default)]
pub struct RestoreReport {
    pub files: u64,
    pub dirs: u64,
    pub links: u64,
    pub bytes: u64,
    /// Files that could not be restored, with the reason (damaged or missing data).
    pub failed: Vec<(PathBuf, String)>,
    /// Things restored only in part (an owner or xattr the filesystem would not take).
    pub warnings: Vec<String>,
    /// Files already there with the snapshot's content, left alone.
    pub unchanged: u64,
    /// Files already there that differ from the snapshot, left alone (no `overwrite`).
    pub skipped: Vec<PathBuf>,
    /// Replaced files renamed aside: (path, where the old file now is).
    pub kept: Vec<(PathBuf, PathBuf)>,
    /// Leftover temporary files of an interrupted restore that were removed.
    pub leftovers_removed: u64,
    /// With `dry_run`: everything that would be done, in order (absolute paths).
    pub steps: Vec<Step>,
    /// Which copies the packs came from.
    pub copies: blobs::CopiesUsed,
}

impl RestoreReport {
    /// Adds another part of the same restore (one root of an in-place restore).
    pub fn absorb(&mut self, other: RestoreReport) {
        self.files += other.files;
        self.dirs += other.dirs;
        self.links += other.links;
        self.bytes += other.bytes;
        self.failed.extend(other.failed);
        self.warnings.extend(other.warnings);
        self.unchanged += other.unchanged;
        self.skipped.extend(other.skipped);
        self.kept.extend(other.kept);
        self.leftovers_removed += other.leftovers_removed;
        self.steps.extend(other.steps);
        self.copies = other.copies;
    }
}

/// One thing a restore would do, as a dry run lists it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "action", rename_all = "kebab-case")]
pub enum Step {
    CreateDir {
        path: PathBuf,
    },
    Write {
        path: PathBuf,
        bytes: u64,
    },
    /// Replace a file that differs, keeping the old one at `kept` when set.
    Replace {
        path: PathBuf,
        bytes: u64,
        kept: Option<PathBuf>,
    },
    /// Leave a file that differs (no `overwrite`).
    Skip {
        path: PathBuf,
    },
    /// Leave a file that already holds the snapshot's content.
    Unchanged {
        path: PathBuf,
    },
    Link {
        path: PathBuf,
    },
    RemoveLeftover {
        path: PathBuf,
    },
}

impl Step {
    /// Whether the step changes anything.
    pub fn writes(&self) -> bool {
        !matches!(self, Step::Skip { .. } | Step::Unchanged { .. })
    }
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Step::CreateDir { path } => write!(f, "create directory {}", path.display()),
            Step::Write { path, bytes } => {
                write!(
                    f,
                    "write {} ({})",
                    path.display(),
                    bytesize::ByteSize(*bytes)
                )
            }
            Step::Replace {
                path,
                bytes,
                kept: Some(k),
            } => write!(
                f,
                "replace {} ({}), keeping the old file as {}",
                path.display(),
                bytesize::ByteSize(*bytes),
                k.display()
            ),
            Step::Replace {
                path,
                bytes,
                kept: None,
            } => write!(
                f,
                "replace {} ({}), discarding the old file",
                path.display(),
                bytesize::ByteSize(*bytes)
            ),
            Step::Skip { path } => write!(
                f,
                "skip {} (it differs from the snapshot; --overwrite replaces it)",
                path.display()
            ),
            Step::Unchanged { path } => {
                write!(f, "leave {} (already as in the snapshot)", path.display())
            }
            Step::Link { path } => write!(f, "link {}", path.display()),
            Step::RemoveLeftover { path } => {
                write!(f, "remove leftover {}", path.display())
            }
        }
    }
}

/// Plans and carries out a restore of `snapshot` (or `sub_path` inside it) from `copies`: to
/// `options.to`, or, with `options.in_place`, back where each entry came from.
pub async fn restore_snapshot(
    copies: &Copies<'_>,
    index: &Index,
    snapshot: &Listed,
    sub_path: Option<&str>,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    let roots: Vec<(Option<String>, PathBuf)> = if options.in_place {
        in_place_roots(snapshot, sub_path)?
            .into_iter()
            .map(|(p, d)| (Some(p), d))
            .collect()
    } else {
        vec![(sub_path.map(str::to_string), options.to.clone())]
    };
    let mut report = RestoreReport::default();
    for (path, to) in roots {
        let reader = BlobReader::with_copies(copies.clone(), index, 64 << 20);
        let plan = plan(&reader, snapshot, path.as_deref()).await?;
        // The trees are read; their packs need not stay cached during the restore.
        drop(reader);
        let mut opts = options.clone();
        opts.to = to;
        opts.path = path;
        report.absorb(restore_from(copies, index, plan, &opts).await?);
    }
    report.copies = copies.used();
    Ok(report)
}

/// Carries out a plan, reading from one repository.
pub async fn restore(
    repo: &Repository,
    index: &Index,
    plan: RestorePlan,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    restore_from(&Copies::one(repo), index, plan, options).await
}

/// Carries out a plan, reading each pack from the first of `copies` that holds it intact.
///
/// The phases, in order: the destination and its directories; what to do with each file, its
/// blobs grouped by pack (where a dry run stops, listing the links too); the files, pack by
/// pack; hard links; symlinks; special files; and the directories' metadata.
pub async fn restore_from(
    copies: &Copies<'_>,
    index: &Index,
    plan: RestorePlan,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    let ctx = Context {
        fresh: destination::prepare_destination(&options.to, options)?,
        to: &options.to,
        options,
        as_root: nix::unistd::geteuid().is_root(),
    };
    // Every write below the destination is resolved from this handle, never through a link.
    let _anchor = match options.dry_run {
        true => None,
        false => Some(
            write::anchor(&options.to)
                .map_err(|e| Error::local(&options.to, "cannot open the restore directory", e))?,
        ),
    };
    let mut report = RestoreReport::default();
    let repo_key = copies.first().shared_key();
    let marker = prepare_directories(&ctx, &plan.dirs, &mut report)?;
    let (pending, by_pack) = files::lay_out(&ctx, index, &repo_key, &plan.files, &mut report);
    if options.dry_run {
        links::plan_links(&ctx, &plan.hardlinks, &plan.symlinks, &mut report);
        return Ok(report);
    }

    let RestorePlan {
        dirs,
        files,
        hardlinks,
        symlinks,
        specials,
        ..
    } = plan;
    let writing = Arc::new(files::Writing::new(files, pending, ctx.as_root));
    writing
        .write_all(copies, index, by_pack, &ctx, &mut report)
        .await?;
    writing.account(&mut report);
    links::restore_hardlinks(&ctx, &hardlinks, &writing, &mut report);
    links::restore_symlinks(&ctx, &symlinks, &mut report);
    restore_specials(&ctx, &specials, &mut report);
    restore_directory_metadata(&ctx, &dirs, &mut report);
    warn_owners(&ctx, &writing, &dirs, &symlinks, &mut report);
    report.copies = copies.used();
    if let Some(m) = &marker
        && report.failed.is_empty()
    {
        let _ = write::remove_file(m);
    }
    Ok(report)
}

/// What every phase of one restore needs to know.
struct Context<'a> {
    /// The destination directory.
    to: &'a Path,
    options: &'a RestoreOptions,
    /// Owners can be restored only by root.
    as_root: bool,
    /// The destination was new or empty: nothing there needs comparing.
    fresh: bool,
}

/// Removes the leftovers of an interrupted restore, leaves the [`IN_PROGRESS`] marker (returned,
/// to be removed when the restore succeeds) and creates the directories, refusing to restore
/// through anything in their way that is not a directory (a symlink, say).
fn prepare_directories(
    ctx: &Context,
    dirs: &[PlanEntry],
    report: &mut RestoreReport,
) -> Result<Option<PathBuf>> {
    let dry_run = ctx.options.dry_run;
    if !ctx.fresh {
        destination::remove_leftovers(ctx.to, dry_run, report);
    }
    let marker = (!dry_run && !ctx.options.in_place).then(|| ctx.to.join(IN_PROGRESS));
    if let Some(m) = &marker {
        write::write_marker(m)
            .map_err(|e| Error::local(m, "cannot write to the restore directory", e))?;
    }
    for d in dirs {
        let path = ctx.to.join(&d.rel);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {
                if !ctx.fresh {
                    destination::remove_leftovers(&path, dry_run, report);
                }
            }
            Ok(_) => {
                return Err(Error::Usage(format!(
                    "{} exists and is not a directory; refusing to restore through it",
                    path.display()
                )));
            }
            Err(_) if dry_run => report.steps.push(Step::CreateDir { path }),
            Err(_) => write::create_dir(&path)
                .map_err(|e| Error::local(&path, "cannot create directory", e))?,
        }
        report.dirs += 1;
    }
    Ok(marker)
}

/// Named pipes are made again; device files and sockets are not (a warning says so).
fn restore_specials(ctx: &Context, specials: &[PlanEntry], report: &mut RestoreReport) {
    for s in specials {
        let dest = ctx.to.join(&s.rel);
        if s.node.kind == NodeKind::Fifo {
            match write::make_fifo(&dest, s.node.mode) {
                Ok(()) => write::apply_metadata(&dest, &s.node, ctx.as_root, &mut report.warnings),
                Err(e) => report
                    .warnings
                    .push(format!("{}: named pipe not created: {e}", dest.display())),
            }
        } else {
            report.warnings.push(format!(
                "{}: {:?} not restored (device files and sockets are recreated by the system, not restored)",
                dest.display(),
                s.node.kind
            ));
        }
    }
}

/// Directories last and deepest first, so that creating their contents does not change the
/// times restored on them.
fn restore_directory_metadata(ctx: &Context, dirs: &[PlanEntry], report: &mut RestoreReport) {
    for d in dirs.iter().rev() {
        write::apply_metadata(
            &ctx.to.join(&d.rel),
            &d.node,
            ctx.as_root,
            &mut report.warnings,
        );
    }
}

/// Owners can be set only by root; say so once rather than once per file.
fn warn_owners(
    ctx: &Context,
    writing: &files::Writing,
    dirs: &[PlanEntry],
    symlinks: &[PlanEntry],
    report: &mut RestoreReport,
) {
    if ctx.as_root {
        return;
    }
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let not_ours = |n: &Node| n.uid != uid || n.gid != gid;
    let count = writing
        .files
        .iter()
        .zip(writing.pending.iter())
        .filter(|(f, p)| !p.leave && not_ours(&f.node))
        .count()
        + dirs.iter().filter(|d| not_ours(&d.node)).count()
        + symlinks.iter().filter(|s| not_ours(&s.node)).count();
    if count > 0 {
        report.warnings.push(format!(
            "ownership not restored: run as root to restore owners ({count} files)"
        ));
    }
}
