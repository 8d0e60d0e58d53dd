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

use std::collections::{BTreeMap, HashMap};
use std::fs::OpenOptions;
use std::os::unix::fs::{FileExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use futures::StreamExt;

use crate::error::{Error, Result};
use crate::format::tree::{Node, NodeKind};
use crate::id::Id;
use crate::ops::progress::Ticker;
use crate::store::blobs::{self, BlobReader, Copies};
use crate::store::index::{BlobLocation, Index};
use crate::store::repo::{Repository, pack_key};
use crate::store::snapshot::Listed;

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

/// One planned entry: where it goes and what it is.
#[derive(Clone, Debug)]
pub struct PlanEntry {
    /// Path relative to the destination.
    pub rel: PathBuf,
    pub node: Node,
}

/// Everything a restore will create, computed before anything is written.
#[derive(Debug, Default)]
pub struct RestorePlan {
    pub dirs: Vec<PlanEntry>,
    pub files: Vec<PlanEntry>,
    /// (link path, path of the file it is a hard link to), both relative.
    pub hardlinks: Vec<(PlanEntry, PathBuf)>,
    pub symlinks: Vec<PlanEntry>,
    pub specials: Vec<PlanEntry>,
    pub total_bytes: u64,
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
            Step::Unchanged { path } => write!(f, "unchanged {}", path.display()),
            Step::Link { path } => write!(f, "link {}", path.display()),
            Step::RemoveLeftover { path } => {
                write!(f, "remove leftover {}", path.display())
            }
        }
    }
}

/// Where an in-place restore puts things: for each root entry to restore, the path inside the
/// snapshot to plan (`None`: the whole snapshot) and the directory it goes back into.
///
/// The snapshot's root tree has one entry per path it read, named by that path's last
/// component, so `curriculum/year7` of a snapshot of `/srv/shares/curriculum` goes back into
/// `/srv/shares/curriculum`. Refused when the recorded path is not absolute, or when the
/// directory it goes back into does not exist (an unmounted share).
pub fn in_place_roots(snapshot: &Listed, sub_path: Option<&str>) -> Result<Vec<(String, PathBuf)>> {
    let wanted: Vec<String> = match sub_path
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
    {
        Some(p) => vec![p.to_string()],
        None => snapshot
            .snapshot
            .paths
            .iter()
            .map(|p| {
                Path::new(p)
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_else(|| p.clone())
            })
            .collect(),
    };
    let mut out = Vec::new();
    for want in wanted {
        let mut parts = want.split('/').filter(|s| !s.is_empty() && *s != ".");
        let first = parts.next().unwrap_or_default();
        let rest: Vec<&str> = parts.collect();
        let original = snapshot
            .snapshot
            .paths
            .iter()
            .find(|p| {
                Path::new(p)
                    .file_name()
                    .is_some_and(|n| n.as_encoded_bytes() == first.as_bytes())
            })
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "{want} is not in snapshot {}; `firesafe ls {}` shows what it holds",
                    snapshot.id.short(),
                    snapshot.id.short()
                ))
            })?;
        let original = Path::new(original);
        if !original.is_absolute() {
            return Err(Error::Usage(format!(
                "cannot restore in place: snapshot {} recorded the path \"{}\", which is not absolute; restore with --to DIR instead",
                snapshot.id.short(),
                original.display()
            )));
        }
        // The entry itself goes into the directory that holds it.
        let mut full = original.to_path_buf();
        for r in &rest {
            full.push(r);
        }
        let dir = full
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("/"));
        if !dir.is_dir() {
            return Err(Error::NotFound(format!(
                "cannot restore in place: {} (where {} was) does not exist or is not a directory; check the share is mounted, restore the folder above it in place, or restore with --to DIR",
                dir.display(),
                full.display()
            )));
        }
        out.push((want, dir));
    }
    Ok(out)
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

/// Builds the plan for `snapshot` (optionally only `options.path` inside it).
pub async fn plan(
    reader: &BlobReader<'_>,
    snapshot: &Listed,
    sub_path: Option<&str>,
) -> Result<RestorePlan> {
    let root = reader.tree(&snapshot.snapshot.tree).await?;
    let mut plan = RestorePlan::default();
    let mut links: HashMap<(u64, u64), PathBuf> = HashMap::new();
    let mut todo: Vec<(PathBuf, Node)> = Vec::new();
    match sub_path
        .map(|p| p.trim_matches('/'))
        .filter(|p| !p.is_empty())
    {
        None => todo.extend(
            root.entries
                .into_iter()
                .map(|n| (PathBuf::from(n.name.as_os()), n)),
        ),
        Some(p) => {
            let node = find_node(reader, &root, p, snapshot).await?;
            todo.push((PathBuf::from(node.name.as_os()), node));
        }
    }
    todo.reverse();
    while let Some((rel, node)) = todo.pop() {
        match node.kind {
            NodeKind::Dir => {
                let tree = reader
                    .tree(&node.subtree.expect("checked by Tree::decode"))
                    .await?;
                for child in tree.entries.into_iter().rev() {
                    todo.push((rel.join(child.name.as_os()), child));
                }
                plan.dirs.push(PlanEntry { rel, node });
            }
            NodeKind::File => {
                if node.links > 1 {
                    if let Some(first) = links.get(&(node.device, node.inode)) {
                        plan.hardlinks
                            .push((PlanEntry { rel, node }, first.clone()));
                        continue;
                    }
                    links.insert((node.device, node.inode), rel.clone());
                }
                plan.total_bytes += node.size;
                plan.files.push(PlanEntry { rel, node });
            }
            NodeKind::Symlink => plan.symlinks.push(PlanEntry { rel, node }),
            _ => plan.specials.push(PlanEntry { rel, node }),
        }
    }
    Ok(plan)
}

/// Finds the node at `path` (components separated by `/`) in a snapshot.
pub async fn find_node(
    reader: &BlobReader<'_>,
    root: &crate::format::tree::Tree,
    path: &str,
    snapshot: &Listed,
) -> Result<Node> {
    let not_found = || {
        Error::NotFound(format!(
            "{path} is not in snapshot {}; `firesafe ls {}` shows what it holds",
            snapshot.id.short(),
            snapshot.id.short()
        ))
    };
    let mut tree = root.clone();
    let parts: Vec<&str> = path
        .split('/')
        .filter(|s| !s.is_empty() && *s != ".")
        .collect();
    for (i, part) in parts.iter().enumerate() {
        let node = tree.find(part.as_bytes()).cloned().ok_or_else(not_found)?;
        if i + 1 == parts.len() {
            return Ok(node);
        }
        match (node.kind, node.subtree) {
            (NodeKind::Dir, Some(sub)) => tree = reader.tree(&sub).await?,
            _ => return Err(not_found()),
        }
    }
    Err(not_found())
}

/// What to do with a link's destination: `None` to leave it (the same link is there, or a
/// differing entry that is not to be replaced), else the name to keep a replaced entry under.
fn link_decision(
    state: Existing,
    dest: &Path,
    options: &RestoreOptions,
    report: &mut RestoreReport,
) -> Option<Option<PathBuf>> {
    match state {
        Existing::Same => {
            report.unchanged += 1;
            None
        }
        Existing::Differs if !options.overwrite => {
            report.skipped.push(dest.to_path_buf());
            None
        }
        Existing::Differs if options.keep_replaced => Some(Some(kept_name(dest, &options.now))),
        _ => Some(None),
    }
}

/// Left in the destination while a restore runs there, and removed when it completes: a rerun
/// of an interrupted restore finds it and resumes without being asked.
pub const IN_PROGRESS: &str = ".firesafe-restore-in-progress";

/// Checks the destination: it must be new, or an empty directory unless `overwrite`, `resume`
/// or `in_place`. Creates it (not in a dry run). Returns whether it was new or empty, so that
/// nothing there needs comparing.
fn prepare_destination(to: &Path, options: &RestoreOptions) -> Result<bool> {
    match std::fs::symlink_metadata(to) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if !options.dry_run {
                std::fs::create_dir_all(to)
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
enum Existing {
    Absent,
    /// A regular file with the snapshot's content.
    Same,
    Differs,
}

/// Compares what is at `dest` with a file node: size, then each blob's keyed hash.
fn existing(
    dest: &Path,
    node: &Node,
    index: &Index,
    key: &crate::format::crypto::RepoKey,
) -> Existing {
    use std::io::Read;
    let m = match std::fs::symlink_metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Existing::Absent,
        Err(_) => return Existing::Differs,
        Ok(m) => m,
    };
    if !m.is_file() || m.len() != node.size {
        return Existing::Differs;
    }
    let Ok(mut f) = OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(dest)
    else {
        return Existing::Differs;
    };
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
fn kept_name(dest: &Path, now: &chrono::DateTime<chrono::Local>) -> PathBuf {
    let stamp = now.format("%Y%m%d-%H%M%S");
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".firesafe-{stamp}"));
    let first = dest.with_file_name(&name);
    let mut candidate = first.clone();
    let mut n = 2;
    while std::fs::symlink_metadata(&candidate).is_ok() {
        let mut other = name.clone();
        other.push(format!("-{n}"));
        candidate = dest.with_file_name(other);
        n += 1;
    }
    candidate
}

/// Whether a node's mode and modification time are those of `m`.
fn same_metadata(m: &std::fs::Metadata, node: &Node) -> bool {
    use std::os::unix::fs::MetadataExt;
    m.mode() & 0o7777 == node.mode
        && m.mtime() == node.mtime
        && m.mtime_nsec() == i64::from(node.mtime_nsec)
}

/// Removes (or, in a dry run, lists) the temporary files an interrupted restore left in `dir`.
fn remove_leftovers(dir: &Path, dry_run: bool, report: &mut RestoreReport) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        if e.file_name()
            .as_encoded_bytes()
            .starts_with(b".firesafe-partial-")
        {
            let path = e.path();
            if dry_run {
                report.steps.push(Step::RemoveLeftover { path });
            } else if std::fs::remove_file(&path).is_ok() {
                report.leftovers_removed += 1;
            }
        }
    }
}

/// One file being written: its temporary and final paths and the blobs still to come.
struct Pending {
    temp: PathBuf,
    dest: PathBuf,
    /// Set once the temporary file exists (created by the first blob to arrive).
    created: std::sync::OnceLock<Result<(), String>>,
    remaining: AtomicUsize,
    failed: Mutex<Option<String>>,
    /// Nothing to write: the file is already there (unchanged) or differs and stays (skipped).
    leave: bool,
    /// Replaces a file that differs; the old one is first renamed to `keep`, when set.
    replace: bool,
    keep: Option<PathBuf>,
}

/// Where one blob goes: file number and offset.
type Uses = Vec<(usize, u64)>;

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
pub async fn restore_from(
    copies: &Copies<'_>,
    index: &Index,
    plan: RestorePlan,
    options: &RestoreOptions,
) -> Result<RestoreReport> {
    let fresh = prepare_destination(&options.to, options)?;
    let to = &options.to;
    let dry_run = options.dry_run;
    let mut report = RestoreReport::default();
    let as_root = nix::unistd::geteuid().is_root();
    let repo_key = copies.first().shared_key();

    if !fresh {
        remove_leftovers(to, dry_run, &mut report);
    }
    let marker = (!dry_run && !options.in_place).then(|| to.join(IN_PROGRESS));
    if let Some(m) = &marker {
        std::fs::write(m, b"")
            .map_err(|e| Error::local(m, "cannot write to the restore directory", e))?;
    }
    for d in &plan.dirs {
        let path = to.join(&d.rel);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => {
                if !fresh {
                    remove_leftovers(&path, dry_run, &mut report);
                }
            }
            Ok(_) => {
                return Err(Error::Usage(format!(
                    "{} exists and is not a directory; refusing to restore through it",
                    path.display()
                )));
            }
            Err(_) if dry_run => report.steps.push(Step::CreateDir { path }),
            Err(_) => std::fs::create_dir(&path)
                .map_err(|e| Error::local(&path, "cannot create directory", e))?,
        }
        report.dirs += 1;
    }

    // Lay out every file's blobs and group them by pack.
    let mut pending: Vec<Pending> = Vec::with_capacity(plan.files.len());
    let mut by_pack: BTreeMap<u32, HashMap<Id, (BlobLocation, Uses)>> = BTreeMap::new();
    for (n, f) in plan.files.iter().enumerate() {
        let dest = to.join(&f.rel);
        let dir = dest.parent().expect("a file has a directory").to_path_buf();
        let temp = dir.join(format!(
            ".firesafe-partial-{n}-{:08x}",
            rand::random::<u32>()
        ));
        let state = if fresh {
            Existing::Absent
        } else {
            existing(&dest, &f.node, index, &repo_key)
        };
        let (leave, replace, keep) = match state {
            Existing::Absent => {
                report.steps.push(Step::Write {
                    path: dest.clone(),
                    bytes: f.node.size,
                });
                (false, false, None)
            }
            Existing::Same => {
                report.unchanged += 1;
                report.steps.push(Step::Unchanged { path: dest.clone() });
                if !dry_run
                    && !std::fs::symlink_metadata(&dest).is_ok_and(|m| same_metadata(&m, &f.node))
                {
                    apply_metadata(&dest, &f.node, as_root, &mut report.warnings);
                }
                (true, false, None)
            }
            Existing::Differs if !options.overwrite => {
                report.skipped.push(dest.clone());
                report.steps.push(Step::Skip { path: dest.clone() });
                (true, false, None)
            }
            Existing::Differs => {
                let keep = options
                    .keep_replaced
                    .then(|| kept_name(&dest, &options.now));
                report.steps.push(Step::Replace {
                    path: dest.clone(),
                    bytes: f.node.size,
                    kept: keep.clone(),
                });
                (false, true, keep)
            }
        };
        let mut missing = None;
        let mut offset = 0u64;
        let content: &[Id] = if leave || dry_run {
            &[]
        } else {
            &f.node.content
        };
        for id in content {
            match index.get(id) {
                Some((_, loc)) => {
                    by_pack
                        .entry(loc.pack)
                        .or_default()
                        .entry(*id)
                        .or_insert((loc, Vec::new()))
                        .1
                        .push((n, offset));
                    offset += loc.raw_length as u64;
                }
                None => {
                    missing = Some(format!("blob {} is in no index object", id.short()));
                    break;
                }
            }
        }
        if missing.is_none() && !leave && !dry_run && offset != f.node.size {
            missing = Some(format!(
                "its blobs hold {offset} bytes but the snapshot records {} (damaged tree)",
                f.node.size
            ));
        }
        pending.push(Pending {
            temp,
            dest,
            created: std::sync::OnceLock::new(),
            remaining: AtomicUsize::new(f.node.content.len()),
            failed: Mutex::new(missing),
            leave: leave || dry_run,
            replace,
            keep,
        });
    }
    if dry_run {
        for (link, first) in &plan.hardlinks {
            let dest = to.join(&link.rel);
            let state = link_state(&dest, None, Some(&to.join(first)));
            report.steps.push(link_step(dest, state, options));
        }
        for s in &plan.symlinks {
            let dest = to.join(&s.rel);
            let state = link_state(&dest, s.node.target.as_ref(), None);
            report.steps.push(link_step(dest, state, options));
        }
        return Ok(report);
    }

    let pending = Arc::new(pending);
    let files = Arc::new(plan.files);
    let written = Arc::new(AtomicU64::new(0));
    let files_done = Arc::new(AtomicU64::new(0));
    let to_write: u64 = pending.iter().filter(|p| !p.leave).count() as u64;
    let bytes_to_write: u64 = pending
        .iter()
        .zip(files.iter())
        .filter(|(p, _)| !p.leave)
        .map(|(_, f)| f.node.size)
        .sum();
    let ticker = options.progress.then(|| {
        let w = Arc::clone(&written);
        let d = Arc::clone(&files_done);
        Ticker::bar_with_message(
            bytes_to_write,
            move || w.load(Ordering::Relaxed),
            move || format!("{}/{to_write} files", d.load(Ordering::Relaxed)),
        )
    });

    // Empty files are finished at once. Other files are created by the pack job that brings
    // their first blob, so creating them is spread over every core; a file of one blob is
    // written whole when its blob arrives.
    for (n, p) in pending.iter().enumerate() {
        if !p.leave && files[n].node.content.is_empty() {
            if let Err(e) = create_temp(&p.temp) {
                fail(p, format!("cannot create {}: {e}", p.temp.display()));
                continue;
            }
            finish_file(p, &files[n].node, as_root, &mut report.warnings);
            files_done.fetch_add(1, Ordering::Relaxed);
        }
    }

    let warnings = Arc::new(Mutex::new(Vec::<String>::new()));
    let jobs: Vec<(Id, HashMap<Id, (BlobLocation, Uses)>)> = by_pack
        .into_iter()
        .map(|(pos, blobs)| (index.packs[pos as usize].id, blobs))
        .collect();
    // Each pack is downloaded, then decrypted and written out on a blocking thread; a few packs
    // are in flight at once, so downloading and writing overlap and every core does work.
    let mut stream = futures::stream::iter(jobs)
        .map(|(pack_id, blobs)| {
            let key = copies.first().shared_key();
            let pending = Arc::clone(&pending);
            let files = Arc::clone(&files);
            let written = Arc::clone(&written);
            let files_done = Arc::clone(&files_done);
            let warnings = Arc::clone(&warnings);
            async move {
                let plain = match copies.read_pack(&pack_id).await {
                    Ok(p) => Ok(p),
                    // Targets that stop answering end the restore.
                    Err(e @ Error::Target { .. }) => return Err(e),
                    Err(e) => Err(e.to_string()),
                };
                tokio::task::spawn_blocking(move || {
                    for (id, (loc, uses)) in blobs {
                        let data = match &plain {
                            Ok(p) => blobs::extract_blob(&key, p, &id, &loc).map_err(|why| {
                                format!("blob {} in {}: {why}", id.short(), pack_key(&pack_id))
                            }),
                            Err(e) => Err(e.clone()),
                        };
                        for (n, offset) in uses {
                            let p = &pending[n];
                            if files[n].node.content.len() == 1 {
                                match &data {
                                    Ok(d) => {
                                        let mut w = Vec::new();
                                        write_whole(p, &files[n].node, d, as_root, &mut w);
                                        written.fetch_add(d.len() as u64, Ordering::Relaxed);
                                        files_done.fetch_add(1, Ordering::Relaxed);
                                        if !w.is_empty() {
                                            warnings.lock().expect("warnings lock").extend(w);
                                        }
                                    }
                                    Err(why) => fail(p, why.clone()),
                                }
                                continue;
                            }
                            match &data {
                                Ok(d) => {
                                    let created = p.created.get_or_init(|| {
                                        create_temp(&p.temp).map_err(|e| {
                                            format!("cannot create {}: {e}", p.temp.display())
                                        })
                                    });
                                    if let Err(why) = created {
                                        fail(p, why.clone());
                                    } else if let Err(e) = write_at(&p.temp, d, offset) {
                                        fail(p, format!("cannot write {}: {e}", p.temp.display()));
                                    }
                                    written.fetch_add(d.len() as u64, Ordering::Relaxed);
                                }
                                Err(why) => fail(p, why.clone()),
                            }
                            if p.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
                                let mut w = Vec::new();
                                finish_file(p, &files[n].node, as_root, &mut w);
                                files_done.fetch_add(1, Ordering::Relaxed);
                                warnings.lock().expect("warnings lock").extend(w);
                            }
                        }
                    }
                })
                .await
                .expect("restoring a pack does not panic");
                Ok(())
            }
        })
        .buffer_unordered(options.downloads.max(1));
    while let Some(done) = stream.next().await {
        done?;
    }
    drop(stream);
    drop(ticker);
    report
        .warnings
        .extend(warnings.lock().expect("warnings lock").drain(..));

    for (n, p) in pending.iter().enumerate() {
        if p.leave {
            continue;
        }
        match p.failed.lock().expect("failure lock").clone() {
            Some(why) => {
                let _ = std::fs::remove_file(&p.temp);
                report.failed.push((files[n].rel.clone(), why));
            }
            None => {
                report.files += 1;
                report.bytes += files[n].node.size;
                if let Some(k) = &p.keep
                    && std::fs::symlink_metadata(k).is_ok()
                {
                    report.kept.push((p.dest.clone(), k.clone()));
                }
            }
        }
    }

    let failed: std::collections::HashSet<PathBuf> =
        report.failed.iter().map(|(p, _)| p.clone()).collect();
    // A file left alone because it differs is not the snapshot's: nothing is linked to it.
    let left_different: std::collections::HashSet<&PathBuf> = pending
        .iter()
        .enumerate()
        .filter(|(_, p)| p.leave && report.skipped.contains(&p.dest))
        .map(|(n, _)| &files[n].rel)
        .collect();
    for (link, first) in &plan.hardlinks {
        let dest = to.join(&link.rel);
        if left_different.contains(first) {
            report.skipped.push(dest);
            continue;
        }
        if failed.contains(first) {
            report.failed.push((
                link.rel.clone(),
                format!("it is a hard link to {}, which failed", first.display()),
            ));
            continue;
        }
        let state = link_state(&dest, None, Some(&to.join(first)));
        let Some(keep) = link_decision(state, &dest, options, &mut report) else {
            continue;
        };
        // Made under a temporary name and renamed into place, so that an existing file is
        // replaced only by a link that exists.
        let temp = dest.with_file_name(format!(
            ".firesafe-partial-link-{:08x}",
            rand::random::<u32>()
        ));
        let made = std::fs::hard_link(to.join(first), &temp).and_then(|_| {
            if state == Existing::Absent && std::fs::symlink_metadata(&dest).is_ok() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a file of that name appeared during the restore",
                ));
            }
            keep_aside(&dest, keep.as_deref())?;
            std::fs::rename(&temp, &dest)
        });
        match made {
            Ok(()) => {
                report.links += 1;
                if let Some(k) = keep {
                    report.kept.push((dest, k));
                }
            }
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                report
                    .failed
                    .push((link.rel.clone(), format!("hard link not created: {e}")));
            }
        }
    }

    for s in &plan.symlinks {
        let dest = to.join(&s.rel);
        let target = s.node.target.as_ref().expect("checked by Tree::decode");
        let state = link_state(&dest, Some(target), None);
        let Some(keep) = link_decision(state, &dest, options, &mut report) else {
            continue;
        };
        let temp = dest.with_file_name(format!(
            ".firesafe-partial-link-{:08x}",
            rand::random::<u32>()
        ));
        let made = std::os::unix::fs::symlink(target.as_os(), &temp).and_then(|_| {
            apply_owner(&temp, &s.node, as_root, &mut report.warnings);
            let mtime = filetime::FileTime::from_unix_time(s.node.mtime, s.node.mtime_nsec);
            let _ = filetime::set_symlink_file_times(&temp, mtime, mtime);
            match std::fs::symlink_metadata(&dest) {
                Ok(m) if m.is_dir() && keep.is_none() => Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "a directory of that name exists",
                )),
                Ok(_) if state == Existing::Absent => Err(std::io::Error::new(
                    std::io::ErrorKind::AlreadyExists,
                    "something of that name appeared during the restore",
                )),
                _ => {
                    keep_aside(&dest, keep.as_deref())?;
                    std::fs::rename(&temp, &dest)
                }
            }
        });
        match made {
            Ok(()) => {
                report.links += 1;
                if let Some(k) = keep {
                    report.kept.push((dest, k));
                }
            }
            Err(e) => {
                let _ = std::fs::remove_file(&temp);
                report
                    .failed
                    .push((s.rel.clone(), format!("symlink not created: {e}")));
            }
        }
    }

    for s in &plan.specials {
        let dest = to.join(&s.rel);
        if s.node.kind == NodeKind::Fifo {
            match nix::unistd::mkfifo(&dest, nix::sys::stat::Mode::from_bits_truncate(s.node.mode))
            {
                Ok(()) => apply_metadata(&dest, &s.node, as_root, &mut report.warnings),
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

    // Directories last and deepest first, so that creating their contents does not change the
    // times restored on them.
    for d in plan.dirs.iter().rev() {
        apply_metadata(&to.join(&d.rel), &d.node, as_root, &mut report.warnings);
    }

    // Owners can be set only by root; say so once rather than once per file.
    if !as_root {
        let (uid, gid) = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let not_ours = |n: &Node| n.uid != uid || n.gid != gid;
        let count = files
            .iter()
            .zip(pending.iter())
            .filter(|(f, p)| !p.leave && not_ours(&f.node))
            .count()
            + plan.dirs.iter().filter(|d| not_ours(&d.node)).count()
            + plan.symlinks.iter().filter(|s| not_ours(&s.node)).count();
        if count > 0 {
            report.warnings.push(format!(
                "ownership not restored: run as root to restore owners ({count} files)"
            ));
        }
    }
    report.copies = copies.used();
    if let Some(m) = &marker
        && report.failed.is_empty()
    {
        let _ = std::fs::remove_file(m);
    }
    Ok(report)
}

/// What is at the destination of a link: the same link (a symlink to `target`, or a hard link
/// to `first`), nothing, or something else.
fn link_state(
    dest: &Path,
    target: Option<&crate::format::tree::Name>,
    first: Option<&Path>,
) -> Existing {
    use std::os::unix::fs::MetadataExt;
    let m = match std::fs::symlink_metadata(dest) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Existing::Absent,
        Err(_) => return Existing::Differs,
        Ok(m) => m,
    };
    let same = match (target, first) {
        (Some(t), _) => {
            m.file_type().is_symlink()
                && std::fs::read_link(dest).is_ok_and(|l| l.as_os_str() == t.as_os())
        }
        (None, Some(first)) => {
            std::fs::symlink_metadata(first).is_ok_and(|f| f.dev() == m.dev() && f.ino() == m.ino())
        }
        (None, None) => false,
    };
    if same {
        Existing::Same
    } else {
        Existing::Differs
    }
}

/// The dry-run step for a link.
fn link_step(path: PathBuf, state: Existing, options: &RestoreOptions) -> Step {
    match state {
        Existing::Absent => Step::Link { path },
        Existing::Same => Step::Unchanged { path },
        Existing::Differs if !options.overwrite => Step::Skip { path },
        Existing::Differs => Step::Replace {
            kept: options
                .keep_replaced
                .then(|| kept_name(&path, &options.now)),
            path,
            bytes: 0,
        },
    }
}

/// Renames what is at `dest` to `keep` (when set) before it is replaced.
fn keep_aside(dest: &Path, keep: Option<&Path>) -> std::io::Result<()> {
    match keep {
        Some(k) => match std::fs::rename(dest, k) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
        None => Ok(()),
    }
}

fn create_temp(path: &Path) -> std::io::Result<()> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map(drop)
}

fn fail(p: &Pending, why: String) {
    let mut f = p.failed.lock().expect("failure lock");
    if f.is_none() {
        *f = Some(why);
    }
}

/// Writes one blob at `offset`, leaving a hole instead of writing zeros.
fn write_at(path: &Path, data: &[u8], offset: u64) -> std::io::Result<()> {
    if data.iter().all(|&b| b == 0) {
        return Ok(());
    }
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(nix::libc::O_NOFOLLOW)
        .open(path)?;
    f.write_all_at(data, offset)
}

/// Sizes, stamps and renames a complete file into place (unless it failed).
fn finish_file(p: &Pending, node: &Node, as_root: bool, warnings: &mut Vec<String>) {
    if p.failed.lock().expect("failure lock").is_some() {
        return;
    }
    let result = (|| -> std::io::Result<()> {
        let f = OpenOptions::new()
            .write(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&p.temp)?;
        f.set_len(node.size)?;
        drop(f);
        apply_metadata(&p.temp, node, as_root, warnings);
        move_into_place(p)
    })();
    if let Err(e) = result {
        fail(p, format!("cannot finish {}: {e}", p.dest.display()));
    }
}

/// Writes a file of one blob in one go: create, write, stamp and rename, all through one open
/// file (most files in a school share are this small).
fn write_whole(p: &Pending, node: &Node, data: &[u8], as_root: bool, warnings: &mut Vec<String>) {
    if p.failed.lock().expect("failure lock").is_some() {
        return;
    }
    let result = (|| -> std::io::Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(&p.temp)?;
        if data.iter().all(|&b| b == 0) {
            f.set_len(node.size)?;
        } else {
            std::io::Write::write_all(&mut f, data)?;
            if data.len() as u64 != node.size {
                f.set_len(node.size)?;
            }
        }
        if as_root && let Err(e) = std::os::unix::fs::fchown(&f, Some(node.uid), Some(node.gid)) {
            warnings.push(format!("{}: owner not set: {e}", p.dest.display()));
        }
        for x in &node.xattrs {
            let Ok(value) = hex::decode(&x.value) else {
                continue;
            };
            if let Err(e) = xattr::FileExt::set_xattr(&f, x.name.as_os(), &value) {
                warnings.push(format!(
                    "{}: extended attribute {} not restored: {e}",
                    p.dest.display(),
                    x.name.display()
                ));
            }
        }
        f.set_permissions(std::fs::Permissions::from_mode(node.mode))?;
        let mtime = filetime::FileTime::from_unix_time(node.mtime, node.mtime_nsec);
        filetime::set_file_handle_times(&f, Some(mtime), Some(mtime))?;
        drop(f);
        move_into_place(p)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&p.temp);
        fail(p, format!("cannot write {}: {e}", p.dest.display()));
    }
}

/// Renames a finished temporary file to its name: over the file it replaces (kept aside first,
/// when asked), and never over a file that appeared there during the restore.
fn move_into_place(p: &Pending) -> std::io::Result<()> {
    if p.replace {
        keep_aside(&p.dest, p.keep.as_deref())?;
    } else if std::fs::symlink_metadata(&p.dest).is_ok() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            "a file of that name appeared during the restore; not replaced",
        ));
    }
    std::fs::rename(&p.temp, &p.dest)
}

fn apply_owner(path: &Path, node: &Node, as_root: bool, warnings: &mut Vec<String>) {
    if as_root && let Err(e) = std::os::unix::fs::lchown(path, Some(node.uid), Some(node.gid)) {
        warnings.push(format!("{}: owner not set: {e}", path.display()));
    }
}

/// Owner, mode, extended attributes and modification time.
fn apply_metadata(path: &Path, node: &Node, as_root: bool, warnings: &mut Vec<String>) {
    apply_owner(path, node, as_root, warnings);
    for x in &node.xattrs {
        let Ok(value) = hex::decode(&x.value) else {
            continue;
        };
        if let Err(e) = xattr::set(path, x.name.as_os(), &value) {
            warnings.push(format!(
                "{}: extended attribute {} not restored: {e}",
                path.display(),
                x.name.display()
            ));
        }
    }
    if let Err(e) = std::fs::set_permissions(path, std::fs::Permissions::from_mode(node.mode)) {
        warnings.push(format!("{}: mode not set: {e}", path.display()));
    }
    // Path-based (utimensat): opening a named pipe to stamp it would block.
    let mtime = filetime::FileTime::from_unix_time(node.mtime, node.mtime_nsec);
    if let Err(e) = filetime::set_symlink_file_times(path, mtime, mtime) {
        warnings.push(format!(
            "{}: modification time not set: {e}",
            path.display()
        ));
    }
}
