//! Restore: rebuild files from a snapshot, byte for byte, with their metadata.
//!
//! The restore is planned ([`RestorePlan`]: every directory, file, link and special file with
//! its destination) and carried out a part at a time ([`PlanStream`], 20,000 files a part):
//! each part pack by pack, so that each pack is downloaded once per part however many files
//! share its blobs, and memory holds one part, not the whole snapshot's entries. Each file is written under a temporary name
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
//! The threat: firesafe runs as root, and restores into folders local users (pupils) can write
//! to, above all in an in-place restore. Such a user may swap any directory of the restore for
//! a symbolic link (to `/etc`, or to another pupil's folder) before the restore starts or at
//! any moment while it runs, or put a named pipe where a file is. So no path is handed to the
//! kernel whole: every change and every read below the destination goes through [`write`],
//! which resolves it from the restore directory's handle, opened once, one directory at a
//! time without following a link, and acts with the `*at` call on the last handle; an existing
//! file is opened only once it is seen to be a regular file, and without blocking. A directory
//! found to be a link (or anything but a directory), or that cannot be created, is refused with
//! everything below it: it and each entry planned under it are named as not restored, nothing
//! is written, chmodded or read through it, and the rest of the restore goes on (exit 1). A
//! directory swapped once the restore has made it fails the same way at the first write that
//! meets the link.
//!
//! Names come from trees, which [`crate::format::tree::Tree::decode`] has already checked: no entry can
//! be `..`, absolute, or contain `/`. Directories are created by the restore itself and symlinks
//! are created last, so no file is ever written through a symlink the snapshot holds.

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
pub use plan::{PlanEntry, PlanStream, RestorePlan, find_node, in_place_roots, plan};

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
    /// Packs downloaded at once; 0 for the first copy's [`Target::transfers`], at most 4.
    ///
    /// [`Target::transfers`]: crate::store::target::Target::transfers
    pub downloads: usize,
    pub progress: bool,
    /// Files planned and written at a time ([`PART_FILES`]).
    pub part_files: usize,
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
            downloads: 0,
            progress: false,
            part_files: PART_FILES,
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

/// Files planned and written at a time: a part of the plan (see [`PlanStream`]) is written
/// before the next is made, so a restore's memory does not grow with the snapshot's files.
pub const PART_FILES: usize = 20_000;

/// What every refusal of a directory says (a link, or anything but a directory, where the
/// restore needs one): by these words a failure is told from damaged data.
pub const REFUSED: &str = "is a symbolic link or not a directory";

/// Whole tree packs a walk of a snapshot's trees keeps (see [`blobs::tree_cache`]).
pub const TREE_PACKS: usize = 3;

/// Plans and carries out a restore of `snapshot` (or `sub_path` inside it) from `copies`: to
/// `options.to`, or, with `options.in_place`, back where each entry came from. The plan is made
/// and written a part at a time.
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
        let mut opts = options.clone();
        opts.to = to;
        opts.path = path.clone();
        // The trees are read through a cache of their own: the file packs are read by the pack
        // jobs, once each per part.
        let cache = blobs::tree_cache(copies.first(), TREE_PACKS);
        let reader = BlobReader::with_copies(copies.clone(), index, cache);
        let mut stream = PlanStream::new(&reader, snapshot, path.as_deref()).await?;
        let mut session = Session::start(&opts)?;
        // The whole snapshot's size is known from its stats; a part of it only as it is planned.
        if path.is_none() {
            session.expect(snapshot.snapshot.stats.files, snapshot.snapshot.stats.bytes);
        }
        while let Some(part) = stream.next(options.part_files.max(1)).await? {
            session.part(copies, index, part).await?;
        }
        report.absorb(session.finish(copies));
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

/// Carries out a whole plan, reading each pack from the first of `copies` that holds it intact.
pub async fn restore_from(
    copies: &Copies<'_>,
    index: &Index,
    plan: RestorePlan,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    let mut session = Session::start(options)?;
    session.part(copies, index, plan).await?;
    Ok(session.finish(copies))
}

/// One restore into one directory, carried out a part of the plan at a time.
///
/// The phases: the destination, its leftovers and the in-progress marker (at the start); then
/// for each part, its directories, what to do with each file and its blobs grouped by pack
/// (where a dry run stops, listing the links too), the files pack by pack, symlinks and
/// special files; at the end, hard links and the directories' metadata (deepest first, after
/// everything in them is written).
struct Session<'o> {
    options: &'o RestoreOptions,
    fresh: bool,
    as_root: bool,
    /// Every write and read below the destination is resolved from this handle, never through
    /// a link.
    _anchor: Option<write::Anchor>,
    /// Directories that are not restored into, and everything below them.
    refused: Refused,
    marker: Option<PathBuf>,
    report: RestoreReport,
    /// Every directory planned (for their metadata at the end) and every hard link.
    dirs: Vec<PlanEntry>,
    hardlinks: Vec<(PlanEntry, PathBuf)>,
    /// Multiply-linked files left as they were because they differ (their links are too).
    left_different: std::collections::HashSet<PathBuf>,
    /// Entries whose owner could not be restored (not root).
    not_ours: usize,
    progress: Option<files::Progress>,
}

impl<'o> Session<'o> {
    fn start(options: &'o RestoreOptions) -> Result<Session<'o>> {
        let fresh = destination::prepare_destination(&options.to, options)?;
        let anchor =
            match options.dry_run {
                // A dry run looks at what is there through the same handle (a new destination is
                // not there yet, and holds nothing to look at).
                true => write::anchor(&options.to).ok(),
                false => Some(write::anchor(&options.to).map_err(|e| {
                    Error::local(&options.to, "cannot open the restore directory", e)
                })?),
            };
        let mut report = RestoreReport::default();
        if !fresh {
            destination::remove_leftovers(&options.to, options.dry_run, &mut report);
        }
        let marker = (!options.dry_run && !options.in_place).then(|| options.to.join(IN_PROGRESS));
        if let Some(m) = &marker {
            write::write_marker(m)
                .map_err(|e| Error::local(m, "cannot write to the restore directory", e))?;
        }
        Ok(Session {
            options,
            fresh,
            as_root: nix::unistd::geteuid().is_root(),
            _anchor: anchor,
            refused: Refused::default(),
            marker,
            report,
            dirs: Vec::new(),
            hardlinks: Vec::new(),
            left_different: Default::default(),
            not_ours: 0,
            progress: None,
        })
    }

    fn ctx(&self) -> Context<'o> {
        Context {
            to: &self.options.to,
            options: self.options,
            as_root: self.as_root,
            fresh: self.fresh,
        }
    }

    /// The restore's size, for one progress bar over every part.
    fn expect(&mut self, files: u64, bytes: u64) {
        if self.options.progress && !self.options.dry_run {
            self.progress = Some(files::Progress::new(files, bytes));
        }
    }

    /// Carries out one part of the plan.
    async fn part(&mut self, copies: &Copies<'_>, index: &Index, plan: RestorePlan) -> Result<()> {
        let RestorePlan {
            dirs,
            files,
            hardlinks,
            symlinks,
            specials,
            ..
        } = plan;
        let mut report = std::mem::take(&mut self.report);
        let ctx = self.ctx();
        let dirs = create_directories(&ctx, dirs, &mut self.refused, &mut report);
        // Nothing below a refused directory is written: each entry there is named as failed.
        let refused = &self.refused;
        let files = refused.drop_below(files, |f| &f.rel, &mut report);
        let hardlinks = refused.drop_below(hardlinks, |(l, _)| &l.rel, &mut report);
        let symlinks = refused.drop_below(symlinks, |l| &l.rel, &mut report);
        let specials = refused.drop_below(specials, |s| &s.rel, &mut report);
        let repo_key = copies.first().shared_key();
        let (pending, by_pack) = files::lay_out(&ctx, index, &repo_key, &files, &mut report);
        if self.options.dry_run {
            links::plan_links(&ctx, &hardlinks, &symlinks, &mut report);
            self.report = report;
            return Ok(());
        }
        let writing = Arc::new(files::Writing::new(
            files,
            pending,
            ctx.as_root,
            self.progress.as_ref(),
        ));
        writing
            .write_all(copies, index, by_pack, &ctx, &mut report)
            .await?;
        writing.account(&mut report);
        let left = writing.left_different_links(&report);
        links::restore_symlinks(&ctx, &symlinks, &mut report);
        restore_specials(&ctx, &specials, &mut report);
        let not_ours = owners_not_restored(&ctx, &writing, &dirs, &symlinks);
        self.report = report;
        self.left_different.extend(left);
        self.not_ours += not_ours;
        self.dirs.extend(dirs);
        self.hardlinks.extend(hardlinks);
        Ok(())
    }

    /// Hard links, the directories' metadata, the owner warning; the marker is removed when
    /// nothing failed.
    fn finish(mut self, copies: &Copies<'_>) -> RestoreReport {
        let mut report = std::mem::take(&mut self.report);
        if !self.options.dry_run {
            let ctx = self.ctx();
            links::restore_hardlinks(&ctx, &self.hardlinks, &self.left_different, &mut report);
            restore_directory_metadata(&ctx, &self.dirs, &mut report);
            if self.not_ours > 0 {
                report.warnings.push(format!(
                    "ownership not restored: run as root to restore owners ({} files)",
                    self.not_ours
                ));
            }
        }
        report.copies = copies.used();
        if let Some(m) = &self.marker
            && report.failed.is_empty()
        {
            let _ = write::remove_file(m);
        }
        report
    }
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

/// The directories a restore will not write into, with why: one that is a symbolic link (or
/// anything but a directory) when the restore comes to it, or that could not be created.
/// Everything planned below one is listed as failed, with the same reason, and the rest of the
/// restore goes on.
#[derive(Default)]
struct Refused(std::collections::HashMap<PathBuf, String>);

impl Refused {
    /// Why `rel` (a path relative to the destination) is not restored, if it is at or below a
    /// refused directory: one look-up per folder above it, however many were refused.
    fn why(&self, rel: &Path) -> Option<&str> {
        if self.0.is_empty() {
            return None;
        }
        rel.ancestors()
            .find_map(|dir| self.0.get(dir))
            .map(String::as_str)
    }

    /// Refuses the directory `rel` and everything below it, naming it as failed.
    fn refuse(&mut self, rel: &Path, why: String, report: &mut RestoreReport) {
        report.failed.push((rel.to_path_buf(), why.clone()));
        self.0.insert(rel.to_path_buf(), why);
    }

    /// The entries not below a refused directory; the others are listed as failed.
    fn drop_below<T>(
        &self,
        entries: Vec<T>,
        rel: impl Fn(&T) -> &Path,
        report: &mut RestoreReport,
    ) -> Vec<T> {
        if self.0.is_empty() {
            return entries;
        }
        entries
            .into_iter()
            .filter(|e| match self.why(rel(e)) {
                Some(why) => {
                    report.failed.push((rel(e).to_path_buf(), why.to_string()));
                    false
                }
                None => true,
            })
            .collect()
    }
}

/// Creates a part's directories, removing the leftovers of an interrupted restore in those that
/// are there. A directory whose place holds anything else (a symlink a user planted, say), or
/// that cannot be created, is refused with everything below it (see [`Refused`]). Returns the
/// directories restored into.
fn create_directories(
    ctx: &Context,
    dirs: Vec<PlanEntry>,
    refused: &mut Refused,
    report: &mut RestoreReport,
) -> Vec<PlanEntry> {
    let dry_run = ctx.options.dry_run;
    let not_a_dir = |path: &Path| {
        format!(
            "{} {REFUSED}: nothing is written through it",
            path.display()
        )
    };
    let mut made = Vec::with_capacity(dirs.len());
    for d in dirs {
        if let Some(why) = refused.why(&d.rel) {
            report.failed.push((d.rel.clone(), why.to_string()));
            continue;
        }
        let path = ctx.to.join(&d.rel);
        // A new destination (not there yet in a dry run) holds nothing to look at.
        let there = match ctx.fresh && dry_run {
            true => Err(std::io::ErrorKind::NotFound.into()),
            false => write::stat_at(&path),
        };
        match there {
            Ok(m) if m.is_dir() => {
                if !ctx.fresh {
                    destination::remove_leftovers(&path, dry_run, report);
                }
            }
            Ok(_) => {
                refused.refuse(&d.rel, not_a_dir(&path), report);
                continue;
            }
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                refused.refuse(&d.rel, e.to_string(), report);
                continue;
            }
            Err(_) if dry_run => report.steps.push(Step::CreateDir { path: path.clone() }),
            Err(_) => match write::create_dir(&path) {
                Ok(()) => {}
                // Made by someone else since it was looked at: kept only if it is a directory.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    if !write::stat_at(&path).is_ok_and(|m| m.is_dir()) {
                        refused.refuse(&d.rel, not_a_dir(&path), report);
                        continue;
                    }
                }
                Err(e) => {
                    let why = format!("cannot create directory {}: {e}", path.display());
                    refused.refuse(&d.rel, why, report);
                    continue;
                }
            },
        }
        report.dirs += 1;
        made.push(d);
    }
    made
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

/// How many of a part's entries are owned by someone else: only root can restore owners, and
/// the restore says so once rather than once per file.
fn owners_not_restored(
    ctx: &Context,
    writing: &files::Writing,
    dirs: &[PlanEntry],
    symlinks: &[PlanEntry],
) -> usize {
    if ctx.as_root {
        return 0;
    }
    let (uid, gid) = (
        nix::unistd::geteuid().as_raw(),
        nix::unistd::getegid().as_raw(),
    );
    let not_ours = |n: &Node| n.uid != uid || n.gid != gid;
    writing
        .files
        .iter()
        .zip(writing.pending.iter())
        .filter(|(f, p)| !p.leave && not_ours(&f.node))
        .count()
        + dirs.iter().filter(|d| not_ours(&d.node)).count()
        + symlinks.iter().filter(|s| not_ours(&s.node)).count()
}
